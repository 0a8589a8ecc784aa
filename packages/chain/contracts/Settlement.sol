// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title CGN settlement: escrow deposits, billing-cycle anchoring and Merkle payout claims.
/// @notice
///  * Accounts deposit tokens into escrow (`deposit`, or `depositFor` on behalf of another account).
///    The off-chain ledger credits the account once the deposit is final and meters work against it.
///  * When a billing cycle closes, an ANCHOR_ROLE holder anchors it once: the payout root (an
///    OpenZeppelin StandardMerkleTree over (address, uint256) leaves), the cycle's batch roots
///    (committed as keccak256(abi.encodePacked(batchRoots)) and readable from the transaction's
///    calldata) and the cycle total. One transaction per cycle, whatever its number of records.
///  * Each beneficiary claims its leaf amount with its proof, for one cycle (`claim`) or several
///    (`claimMany`). Only the leaf's address can claim it (the leaf is built from msg.sender),
///    only once, and only the exact amount in the tree.
///  * Withdrawal rule: the ledger alone knows how much of a deposit was spent, so after a cycle is
///    anchored the operator (ANCHOR_ROLE) posts each account's unused balance with
///    `setWithdrawable(account, cycleId, amount)` (sets the allowance) or, as the settler does,
///    `grantWithdrawable(account, cycleId, amount)` (adds to it, once per account and cycle); the
///    account may then `withdraw` up to it. The
///    contract enforces (a) the cycle is anchored (withdrawal only after a cycle closes), (b) the
///    allowance never exceeds the account's net on-chain deposits, (c) solvency: the contract
///    always holds every anchored-but-unclaimed payout plus every open withdrawal allowance.
contract Settlement is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    struct Cycle {
        bytes32 payoutRoot;
        bytes32 batchRootsHash;
        uint256 total;
        uint256 claimed;
        uint64 anchoredAt;
        uint32 batchCount;
    }

    IERC20 public immutable token;

    /// Net deposits per account (deposits minus withdrawals).
    mapping(address => uint256) public escrowOf;
    /// Unused balance the account may withdraw now (posted by the operator after a cycle closes).
    mapping(address => uint256) public withdrawableOf;
    /// The last cycle the account's withdrawable amount was posted for.
    mapping(address => uint64) public withdrawableCycleOf;
    mapping(uint64 => Cycle) private _cycles;
    mapping(uint64 => mapping(address => bool)) private _claimed;

    /// Sum over anchored cycles of (total - claimed).
    uint256 public outstandingPayouts;
    /// Sum of open withdrawal allowances.
    uint256 public outstandingWithdrawable;
    uint256 public totalEscrow;
    uint64 public lastAnchoredCycle;
    uint64 public anchoredCycles;

    event Deposited(address indexed account, address indexed from, uint256 amount, uint256 escrow);
    event CycleAnchored(uint64 indexed cycleId, bytes32 payoutRoot, bytes32 batchRootsHash, uint256 total, uint32 batchCount);
    event Claimed(uint64 indexed cycleId, address indexed account, uint256 amount);
    event WithdrawableSet(address indexed account, uint64 indexed cycleId, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount, uint256 escrow);

    error ZeroAmount();
    error AlreadyAnchored(uint64 cycleId);
    error NotAnchored(uint64 cycleId);
    error InvalidRoot();
    error Insolvent(uint256 needed, uint256 available);
    error AlreadyClaimed(uint64 cycleId, address account);
    error InvalidProof(uint64 cycleId, address account, uint256 amount);
    error CycleOverclaimed(uint64 cycleId);
    error LengthMismatch();
    error StaleCycle(uint64 cycleId, uint64 last);
    error ExceedsEscrow(uint256 amount, uint256 escrow);
    error ExceedsWithdrawable(uint256 amount, uint256 withdrawable);

    constructor(IERC20 token_, address admin) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHOR_ROLE, admin);
    }

    // ---------------------------------------------------------------- deposits and withdrawals

    function deposit(uint256 amount) external {
        depositFor(msg.sender, amount);
    }

    function depositFor(address account, uint256 amount) public nonReentrant {
        if (amount == 0) revert ZeroAmount();
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 escrow = escrowOf[account] + amount;
        escrowOf[account] = escrow;
        totalEscrow += amount;
        emit Deposited(account, msg.sender, amount, escrow);
    }

    /// Tokens the contract holds beyond what it owes (anchored payouts and withdrawal allowances).
    function unallocated() public view returns (uint256) {
        uint256 bal = token.balanceOf(address(this));
        uint256 owed = outstandingPayouts + outstandingWithdrawable;
        return bal > owed ? bal - owed : 0;
    }

    function setWithdrawable(address account, uint64 cycleId, uint256 amount) external onlyRole(ANCHOR_ROLE) {
        if (_cycles[cycleId].anchoredAt == 0) revert NotAnchored(cycleId);
        uint64 last = withdrawableCycleOf[account];
        if (cycleId < last) revert StaleCycle(cycleId, last);
        uint256 escrow = escrowOf[account];
        if (amount > escrow) revert ExceedsEscrow(amount, escrow);
        uint256 previous = withdrawableOf[account];
        if (amount > previous) {
            uint256 avail = unallocated();
            if (amount - previous > avail) revert Insolvent(amount - previous, avail);
        }
        outstandingWithdrawable = outstandingWithdrawable - previous + amount;
        withdrawableOf[account] = amount;
        withdrawableCycleOf[account] = cycleId;
        emit WithdrawableSet(account, cycleId, amount);
    }

    /// Adds `amount` to the account's withdrawal allowance, at most once per (account, cycle):
    /// `cycleId` must be anchored and later than the account's last posting. The ledger debits the
    /// amount before posting, so a retried or replayed grant for the same cycle is refused
    /// (`StaleCycle`) instead of paying twice, and a withdrawal racing the grant cannot be undone.
    function grantWithdrawable(address account, uint64 cycleId, uint256 amount) external onlyRole(ANCHOR_ROLE) {
        if (amount == 0) revert ZeroAmount();
        if (_cycles[cycleId].anchoredAt == 0) revert NotAnchored(cycleId);
        uint64 last = withdrawableCycleOf[account];
        if (cycleId <= last) revert StaleCycle(cycleId, last);
        uint256 allowed = withdrawableOf[account] + amount;
        uint256 escrow = escrowOf[account];
        if (allowed > escrow) revert ExceedsEscrow(allowed, escrow);
        uint256 avail = unallocated();
        if (amount > avail) revert Insolvent(amount, avail);
        outstandingWithdrawable += amount;
        withdrawableOf[account] = allowed;
        withdrawableCycleOf[account] = cycleId;
        emit WithdrawableSet(account, cycleId, allowed);
    }

    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 allowed = withdrawableOf[msg.sender];
        if (amount > allowed) revert ExceedsWithdrawable(amount, allowed);
        withdrawableOf[msg.sender] = allowed - amount;
        outstandingWithdrawable -= amount;
        uint256 escrow = escrowOf[msg.sender] - amount; // allowance <= escrow at posting; escrow only grows since
        escrowOf[msg.sender] = escrow;
        totalEscrow -= amount;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount, escrow);
    }

    // ---------------------------------------------------------------- anchoring

    /// Anchors a closed billing cycle, once. `payoutRoot` is zero iff nothing is owed (`total` 0).
    function anchorCycle(uint64 cycleId, bytes32 payoutRoot, bytes32[] calldata batchRoots, uint256 total)
        external
        onlyRole(ANCHOR_ROLE)
    {
        if (_cycles[cycleId].anchoredAt != 0) revert AlreadyAnchored(cycleId);
        if ((payoutRoot == bytes32(0)) != (total == 0)) revert InvalidRoot();
        uint256 avail = unallocated();
        if (total > avail) revert Insolvent(total, avail);
        bytes32 batchRootsHash = keccak256(abi.encodePacked(batchRoots));
        _cycles[cycleId] = Cycle({
            payoutRoot: payoutRoot,
            batchRootsHash: batchRootsHash,
            total: total,
            claimed: 0,
            anchoredAt: uint64(block.timestamp),
            batchCount: uint32(batchRoots.length)
        });
        outstandingPayouts += total;
        if (cycleId > lastAnchoredCycle) lastAnchoredCycle = cycleId;
        anchoredCycles += 1;
        emit CycleAnchored(cycleId, payoutRoot, batchRootsHash, total, uint32(batchRoots.length));
    }

    function cycleOf(uint64 cycleId) external view returns (Cycle memory) {
        return _cycles[cycleId];
    }

    function isAnchored(uint64 cycleId) external view returns (bool) {
        return _cycles[cycleId].anchoredAt != 0;
    }

    // ---------------------------------------------------------------- claims

    function isClaimed(uint64 cycleId, address account) external view returns (bool) {
        return _claimed[cycleId][account];
    }

    /// The StandardMerkleTree leaf for (account, amount).
    function leafOf(address account, uint256 amount) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
    }

    function claim(uint64 cycleId, uint256 amount, bytes32[] calldata proof) external nonReentrant {
        _claim(cycleId, amount, proof);
        token.safeTransfer(msg.sender, amount);
    }

    function claimMany(uint64[] calldata cycleIds, uint256[] calldata amounts, bytes32[][] calldata proofs)
        external
        nonReentrant
    {
        uint256 n = cycleIds.length;
        if (n == 0 || amounts.length != n || proofs.length != n) revert LengthMismatch();
        uint256 sum;
        for (uint256 i = 0; i < n; ++i) {
            _claim(cycleIds[i], amounts[i], proofs[i]);
            sum += amounts[i];
        }
        token.safeTransfer(msg.sender, sum);
    }

    function _claim(uint64 cycleId, uint256 amount, bytes32[] calldata proof) private {
        if (amount == 0) revert ZeroAmount();
        Cycle storage c = _cycles[cycleId];
        if (c.anchoredAt == 0) revert NotAnchored(cycleId);
        if (_claimed[cycleId][msg.sender]) revert AlreadyClaimed(cycleId, msg.sender);
        if (!MerkleProof.verifyCalldata(proof, c.payoutRoot, leafOf(msg.sender, amount))) {
            revert InvalidProof(cycleId, msg.sender, amount);
        }
        uint256 claimed = c.claimed + amount;
        if (claimed > c.total) revert CycleOverclaimed(cycleId);
        c.claimed = claimed;
        _claimed[cycleId][msg.sender] = true;
        outstandingPayouts -= amount;
        emit Claimed(cycleId, msg.sender, amount);
    }
}
