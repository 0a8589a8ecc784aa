// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Staking} from "./Staking.sol";

/// @title CGN validator election: per epoch, a validator set drawn from registered candidates with
///        probability proportional to stake x service level (the DCCN "proof of service level and
///        stake" election).
/// @notice
///  * A candidate registers itself; its stake is its active stake in `Staking` (at least
///    `minCandidateStake`, not banned). Banned or under-staked candidates are skipped at election.
///  * ORACLE_ROLE sets each candidate's service level in basis points (0..10000), fed from the
///    ledger's reputation. A candidate with service level 0 has weight 0 and is never elected.
///  * ELECTOR_ROLE calls `electEpoch(epoch, seed)` once per epoch. The draw is weighted sampling
///    without replacement, each draw using keccak256(seed, epoch, draw): deterministic given the
///    seed and the state. Where the seed comes from (a beacon, a commit-reveal among validators)
///    is the caller's business; the set is public, so anyone can recompute it.
///  * `validatorsOf(epoch)` is the set a chain that takes its validator set from a contract reads;
///    `proposerOf(epoch, round)` picks the round's proposer uniformly among them.
contract ValidatorElection is AccessControl {
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    bytes32 public constant ELECTOR_ROLE = keccak256("ELECTOR_ROLE");
    uint16 public constant MAX_SERVICE_LEVEL = 10_000;
    uint256 public constant MAX_CANDIDATES = 256;

    Staking public immutable staking;
    uint256 public minCandidateStake;
    uint16 public validatorCount;

    address[] private _candidates;
    mapping(address => bool) public isCandidate;
    mapping(address => uint16) public serviceLevelOf;
    mapping(uint64 => address[]) private _validators;
    mapping(uint64 => bytes32) public seedOf;
    mapping(uint64 => bool) public elected;
    uint64 public lastEpoch;

    event CandidateRegistered(address indexed candidate, uint256 stake);
    event CandidateLeft(address indexed candidate);
    event ServiceLevelSet(address indexed candidate, uint16 bps);
    event ValidatorCountSet(uint16 count);
    event MinCandidateStakeSet(uint256 amount);
    event EpochElected(uint64 indexed epoch, bytes32 seed, address[] validators);

    error AlreadyCandidate(address candidate);
    error NotCandidate(address candidate);
    error InsufficientStake(uint256 stake, uint256 minimum);
    error Banned(address candidate);
    error TooManyCandidates();
    error InvalidServiceLevel(uint16 bps);
    error AlreadyElected(uint64 epoch);
    error NoEligibleCandidates();
    error NotElected(uint64 epoch);
    error InvalidCount();

    constructor(Staking staking_, address admin, uint16 validatorCount_, uint256 minCandidateStake_) {
        if (validatorCount_ == 0) revert InvalidCount();
        staking = staking_;
        validatorCount = validatorCount_;
        minCandidateStake = minCandidateStake_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ORACLE_ROLE, admin);
        _grantRole(ELECTOR_ROLE, admin);
        emit ValidatorCountSet(validatorCount_);
        emit MinCandidateStakeSet(minCandidateStake_);
    }

    function register() external {
        if (isCandidate[msg.sender]) revert AlreadyCandidate(msg.sender);
        if (_candidates.length >= MAX_CANDIDATES) revert TooManyCandidates();
        if (staking.bannedOf(msg.sender)) revert Banned(msg.sender);
        uint256 s = staking.stakeOf(msg.sender);
        if (s < minCandidateStake || s == 0) revert InsufficientStake(s, minCandidateStake);
        isCandidate[msg.sender] = true;
        _candidates.push(msg.sender);
        emit CandidateRegistered(msg.sender, s);
    }

    function leave() external {
        if (!isCandidate[msg.sender]) revert NotCandidate(msg.sender);
        isCandidate[msg.sender] = false;
        uint256 n = _candidates.length;
        for (uint256 i = 0; i < n; ++i) {
            if (_candidates[i] == msg.sender) {
                _candidates[i] = _candidates[n - 1];
                _candidates.pop();
                break;
            }
        }
        emit CandidateLeft(msg.sender);
    }

    function candidates() external view returns (address[] memory) {
        return _candidates;
    }

    function setServiceLevel(address candidate, uint16 bps) external onlyRole(ORACLE_ROLE) {
        if (bps > MAX_SERVICE_LEVEL) revert InvalidServiceLevel(bps);
        serviceLevelOf[candidate] = bps;
        emit ServiceLevelSet(candidate, bps);
    }

    function setValidatorCount(uint16 count) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (count == 0) revert InvalidCount();
        validatorCount = count;
        emit ValidatorCountSet(count);
    }

    function setMinCandidateStake(uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        minCandidateStake = amount;
        emit MinCandidateStakeSet(amount);
    }

    /// A candidate's election weight now: active stake x service level (0 if banned or under-staked).
    function weightOf(address candidate) public view returns (uint256) {
        if (!isCandidate[candidate] || staking.bannedOf(candidate)) return 0;
        uint256 s = staking.stakeOf(candidate);
        if (s < minCandidateStake) return 0;
        return s * serviceLevelOf[candidate];
    }

    /// Draws the validator set of `epoch` (once): up to `validatorCount` distinct candidates,
    /// each draw weighted by stake x service level among those not yet drawn.
    function electEpoch(uint64 epoch, bytes32 seed) external onlyRole(ELECTOR_ROLE) returns (address[] memory set) {
        if (elected[epoch]) revert AlreadyElected(epoch);
        uint256 n = _candidates.length;
        address[] memory pool = new address[](n);
        uint256[] memory weights = new uint256[](n);
        uint256 total;
        uint256 m;
        for (uint256 i = 0; i < n; ++i) {
            address c = _candidates[i];
            uint256 w = weightOf(c);
            if (w == 0) continue;
            pool[m] = c;
            weights[m] = w;
            total += w;
            ++m;
        }
        if (m == 0) revert NoEligibleCandidates();
        uint256 k = validatorCount < m ? validatorCount : m;
        set = new address[](k);
        for (uint256 d = 0; d < k; ++d) {
            uint256 r = uint256(keccak256(abi.encode(seed, epoch, d))) % total;
            uint256 acc;
            for (uint256 i = 0; i < m; ++i) {
                uint256 w = weights[i];
                if (w == 0) continue;
                acc += w;
                if (r < acc) {
                    set[d] = pool[i];
                    total -= w;
                    weights[i] = 0;
                    break;
                }
            }
        }
        _validators[epoch] = set;
        seedOf[epoch] = seed;
        elected[epoch] = true;
        if (epoch > lastEpoch) lastEpoch = epoch;
        emit EpochElected(epoch, seed, set);
    }

    function validatorsOf(uint64 epoch) external view returns (address[] memory) {
        return _validators[epoch];
    }

    function proposerOf(uint64 epoch, uint256 round) external view returns (address) {
        address[] storage set = _validators[epoch];
        if (!elected[epoch] || set.length == 0) revert NotElected(epoch);
        return set[uint256(keccak256(abi.encode(seedOf[epoch], epoch, round, "proposer"))) % set.length];
    }
}
