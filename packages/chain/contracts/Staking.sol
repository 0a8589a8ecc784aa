// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title CGN staking: miners stake to join the `open` tier; stake unbonds over a delay; proven
///        wrong work is slashed with its evidence hash and bans the miner from the tier.
/// @notice
///  * `stake` adds to the active stake. `requestUnbond(amount)` moves active stake into the single
///    unbonding entry and (re)starts its delay; `withdrawUnbonded` pays it out once the delay has
///    passed. Unbonding stake is still at risk: a slash takes active and unbonding stake alike
///    (the miner is left with a zeroed at-stake balance, as the CGN design says).
///  * SLASHER_ROLE slashes with the hash of the evidence (the mismatched redundant results and the
///    third miner's confirmation, stored off chain); one slash per evidence hash. The slashed tokens
///    go to the `treasury`. The miner is banned from the open tier until an admin lifts the ban.
contract Staking is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    IERC20 public immutable token;
    uint64 public unbondingDelay;
    /// Minimum active stake for the open tier.
    uint256 public minOpenTierStake;
    address public treasury;

    mapping(address => uint256) public stakeOf;
    mapping(address => uint256) public unbondingOf;
    mapping(address => uint64) public unbondingReleaseAt;
    mapping(address => bool) public bannedOf;
    mapping(bytes32 => bool) public evidenceUsed;
    uint256 public totalStaked;

    event Staked(address indexed staker, uint256 amount, uint256 stake);
    event UnbondRequested(address indexed staker, uint256 amount, uint256 unbonding, uint64 releaseAt);
    event Unbonded(address indexed staker, uint256 amount);
    event Slashed(address indexed staker, uint256 amount, bytes32 indexed evidenceHash, address indexed slasher);
    event Banned(address indexed staker, bytes32 evidenceHash);
    event Unbanned(address indexed staker);
    event UnbondingDelaySet(uint64 delay);
    event MinOpenTierStakeSet(uint256 amount);
    event TreasurySet(address treasury);

    error ZeroAmount();
    error InsufficientStake(uint256 amount, uint256 stake);
    error StillUnbonding(uint64 releaseAt);
    error NothingUnbonding();
    error EvidenceUsed(bytes32 evidenceHash);
    error NothingToSlash(address staker);
    error BannedStaker(address staker);

    constructor(IERC20 token_, address admin, address treasury_, uint64 unbondingDelay_, uint256 minOpenTierStake_) {
        token = token_;
        treasury = treasury_;
        unbondingDelay = unbondingDelay_;
        minOpenTierStake = minOpenTierStake_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit TreasurySet(treasury_);
        emit UnbondingDelaySet(unbondingDelay_);
        emit MinOpenTierStakeSet(minOpenTierStake_);
    }

    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (bannedOf[msg.sender]) revert BannedStaker(msg.sender);
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 s = stakeOf[msg.sender] + amount;
        stakeOf[msg.sender] = s;
        totalStaked += amount;
        emit Staked(msg.sender, amount, s);
    }

    function requestUnbond(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 s = stakeOf[msg.sender];
        if (amount > s) revert InsufficientStake(amount, s);
        stakeOf[msg.sender] = s - amount;
        uint256 u = unbondingOf[msg.sender] + amount;
        unbondingOf[msg.sender] = u;
        uint64 releaseAt = uint64(block.timestamp) + unbondingDelay;
        unbondingReleaseAt[msg.sender] = releaseAt;
        emit UnbondRequested(msg.sender, amount, u, releaseAt);
    }

    function withdrawUnbonded() external nonReentrant {
        uint256 u = unbondingOf[msg.sender];
        if (u == 0) revert NothingUnbonding();
        uint64 releaseAt = unbondingReleaseAt[msg.sender];
        if (block.timestamp < releaseAt) revert StillUnbonding(releaseAt);
        unbondingOf[msg.sender] = 0;
        unbondingReleaseAt[msg.sender] = 0;
        totalStaked -= u;
        token.safeTransfer(msg.sender, u);
        emit Unbonded(msg.sender, u);
    }

    /// Seizes the whole at-stake balance (active and unbonding) and bans the staker from the open tier.
    function slash(address staker, bytes32 evidenceHash) external onlyRole(SLASHER_ROLE) nonReentrant {
        if (evidenceUsed[evidenceHash]) revert EvidenceUsed(evidenceHash);
        uint256 amount = stakeOf[staker] + unbondingOf[staker];
        if (amount == 0 && bannedOf[staker]) revert NothingToSlash(staker);
        evidenceUsed[evidenceHash] = true;
        stakeOf[staker] = 0;
        unbondingOf[staker] = 0;
        unbondingReleaseAt[staker] = 0;
        totalStaked -= amount;
        if (amount > 0) token.safeTransfer(treasury, amount);
        emit Slashed(staker, amount, evidenceHash, msg.sender);
        if (!bannedOf[staker]) {
            bannedOf[staker] = true;
            emit Banned(staker, evidenceHash);
        }
    }

    function unban(address staker) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bannedOf[staker] = false;
        emit Unbanned(staker);
    }

    /// Whether the staker may take `open` tier work: not banned and enough active stake.
    function isOpenTierEligible(address staker) external view returns (bool) {
        return !bannedOf[staker] && stakeOf[staker] >= minOpenTierStake && stakeOf[staker] > 0;
    }

    function setUnbondingDelay(uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        unbondingDelay = delay;
        emit UnbondingDelaySet(delay);
    }

    function setMinOpenTierStake(uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        minOpenTierStake = amount;
        emit MinOpenTierStakeSet(amount);
    }

    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }
}
