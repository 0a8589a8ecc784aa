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
///    calldata), the cycle total and who pays it: the escrow accounts debited and by how much.
///    The debits must add up to the total, and each is at most what that account holds and has
///    not been promised back as a withdrawal: a cycle is paid by the accounts that spent, never
///    out of another account's escrow. One transaction per cycle, whatever its number of records.
///  * Each beneficiary claims its leaf amount with its proof, for one cycle (`claim`) or several
///    (`claimMany`), only once, and only the exact amount in the tree. Anyone may also submit the
///    claim on a beneficiary's behalf (`claimFor`, `claimManyFor`): a relayer pays the gas for an
///    address that holds no ETH. The leaf is always built from the beneficiary's address and the
///    tokens always go to the beneficiary, except an optional relayer fee of at most
///    MAX_RELAYER_FEE_BPS (1%) of the claim that only the settlement operator (ANCHOR_ROLE, the
///    documented relayer) may take: anyone else relays for free (`FeeNotAllowed`), so nobody can
///    skim a beneficiary's claim by submitting it first.
///  * Withdrawal rule: the ledger alone knows how much of a deposit was spent, so after a cycle is
///    anchored the operator (ANCHOR_ROLE) posts each account's unused balance with
///    `setWithdrawable(account, cycleId, amount)` (sets the allowance) or, as the settler does,
///    `grantWithdrawable(account, cycleId, amount)` (adds to it, once per account and cycle); the
///    account may then `withdraw` up to it. The
///    contract enforces (a) the cycle is anchored (withdrawal only after a cycle closes), (b) the
///    allowance never exceeds the account's escrow, and an anchor never debits escrow promised
///    back, (c) solvency: the contract always holds every account's escrow plus every
///    anchored-but-unclaimed payout (anchoring moves tokens from the first to the second).
contract Settlement is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");
    /// The most a relayer may take from a claim it submits, in basis points (100 = 1%).
    uint16 public constant MAX_RELAYER_FEE_BPS = 100;

    struct Cycle {
        bytes32 payoutRoot;
        bytes32 batchRootsHash;
        uint256 total;
        uint256 claimed;
        uint64 anchoredAt;
        uint32 batchCount;
    }

    IERC20 public immutable token;

    /// Tokens an account holds in escrow: deposits minus withdrawals minus the debits of anchored cycles.
    mapping(address => uint256) public escrowOf;
    /// Unused balance the account may withdraw now (posted by the operator after a cycle closes).
    mapping(address => uint256) public withdrawableOf;
    /// The last cycle the account's withdrawable amount was posted for.
    mapping(address => uint64) public withdrawableCycleOf;
    mapping(uint64 => Cycle) private _cycles;
    mapping(uint64 => mapping(address => bool)) private _claimed;

    /// Sum over anchored cycles of (total - claimed).
    uint256 public outstandingPayouts;
    /// Sum of open withdrawal allowances (part of the accounts' escrow).
    uint256 public outstandingWithdrawable;
    uint256 public totalEscrow;
    uint64 public lastAnchoredCycle;
    uint64 public anchoredCycles;

    event Deposited(address indexed account, address indexed from, uint256 amount, uint256 escrow);
    event EscrowDebited(uint64 indexed cycleId, address indexed account, uint256 amount, uint256 escrow);
    event CycleAnchored(uint64 indexed cycleId, bytes32 payoutRoot, bytes32 batchRootsHash, uint256 total, uint32 batchCount);
    event Claimed(uint64 indexed cycleId, address indexed account, uint256 amount);
    /// A claim submitted on `account`'s behalf: `fee` of its amount went to `relayer`, the rest to `account`.
    event ClaimRelayed(address indexed account, address indexed relayer, uint256 amount, uint256 fee);
    event WithdrawableSet(address indexed account, uint64 indexed cycleId, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount, uint256 escrow);

    error ZeroAmount();
    error AlreadyAnchored(uint64 cycleId);
    error NotAnchored(uint64 cycleId);
    error InvalidRoot();
    error DebitsMismatch(uint256 total, uint256 debited);
    error Overdrawn(address account, uint256 debit, uint256 available);
    error PayersNotSorted();
    error AlreadyClaimed(uint64 cycleId, address account);
    error InvalidProof(uint64 cycleId, address account, uint256 amount);
    error CycleOverclaimed(uint64 cycleId);
    error LengthMismatch();
    error StaleCycle(uint64 cycleId, uint64 last);
    error ExceedsEscrow(uint256 amount, uint256 escrow);
    error ExceedsWithdrawable(uint256 amount, uint256 withdrawable);
    error FeeTooHigh(uint16 feeBps, uint16 maxBps);
    error FeeNotAllowed(address relayer);
    error ZeroAddress();

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

    /// Tokens the contract holds beyond what it owes (escrow and anchored payouts): tokens sent to it
    /// without a deposit. Never owed to anyone, never paid out.
    function unallocated() public view returns (uint256) {
        uint256 bal = token.balanceOf(address(this));
        uint256 owed = outstandingPayouts + totalEscrow;
        return bal > owed ? bal - owed : 0;
    }

    function setWithdrawable(address account, uint64 cycleId, uint256 amount) external onlyRole(ANCHOR_ROLE) {
        if (_cycles[cycleId].anchoredAt == 0) revert NotAnchored(cycleId);
        uint64 last = withdrawableCycleOf[account];
        if (cycleId < last) revert StaleCycle(cycleId, last);
        uint256 escrow = escrowOf[account];
        if (amount > escrow) revert ExceedsEscrow(amount, escrow);
        uint256 previous = withdrawableOf[account];
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
        uint256 escrow = escrowOf[msg.sender] - amount; // allowance <= escrow: anchors debit only what is not promised back
        escrowOf[msg.sender] = escrow;
        totalEscrow -= amount;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount, escrow);
    }

    // ---------------------------------------------------------------- anchoring

    /// Anchors a closed billing cycle, once. `payoutRoot` is zero iff nothing is owed (`total` 0).
    /// `payers` (strictly ascending) pay `debits` out of their escrow; the debits add up to `total`.
    function anchorCycle(
        uint64 cycleId,
        bytes32 payoutRoot,
        bytes32[] calldata batchRoots,
        uint256 total,
        address[] calldata payers,
        uint256[] calldata debits
    ) external onlyRole(ANCHOR_ROLE) {
        if (_cycles[cycleId].anchoredAt != 0) revert AlreadyAnchored(cycleId);
        if ((payoutRoot == bytes32(0)) != (total == 0)) revert InvalidRoot();
        if (payers.length != debits.length) revert LengthMismatch();
        uint256 debited = _debitEscrow(cycleId, payers, debits);
        if (debited != total) revert DebitsMismatch(total, debited);
        totalEscrow -= total;
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

    /// Takes each payer's debit out of its escrow (never out of what is promised back); returns the sum.
    function _debitEscrow(uint64 cycleId, address[] calldata payers, uint256[] calldata debits) private returns (uint256 debited) {
        address previous;
        for (uint256 i = 0; i < payers.length; ++i) {
            address payer = payers[i];
            if (i > 0 && payer <= previous) revert PayersNotSorted();
            previous = payer;
            uint256 escrow = escrowOf[payer];
            uint256 free = escrow - withdrawableOf[payer];
            if (debits[i] > free) revert Overdrawn(payer, debits[i], free);
            escrow -= debits[i];
            escrowOf[payer] = escrow;
            debited += debits[i];
            emit EscrowDebited(cycleId, payer, debits[i], escrow);
        }
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
        _claim(msg.sender, cycleId, amount, proof);
        token.safeTransfer(msg.sender, amount);
    }

    function claimMany(uint64[] calldata cycleIds, uint256[] calldata amounts, bytes32[][] calldata proofs)
        external
        nonReentrant
    {
        token.safeTransfer(msg.sender, _claimAll(msg.sender, cycleIds, amounts, proofs));
    }

    /// Submits `beneficiary`'s claim of one cycle; pays it `amount` minus a fee of `feeBps` basis
    /// points (at most MAX_RELAYER_FEE_BPS, and only for the operator), which goes to the sender.
    function claimFor(address beneficiary, uint64 cycleId, uint256 amount, bytes32[] calldata proof, uint16 feeBps)
        external
        nonReentrant
    {
        _claim(beneficiary, cycleId, amount, proof);
        _payRelayed(beneficiary, amount, feeBps);
    }

    /// `claimFor` over several cycles of one beneficiary, in one transaction.
    function claimManyFor(
        address beneficiary,
        uint64[] calldata cycleIds,
        uint256[] calldata amounts,
        bytes32[][] calldata proofs,
        uint16 feeBps
    ) external nonReentrant {
        _payRelayed(beneficiary, _claimAll(beneficiary, cycleIds, amounts, proofs), feeBps);
    }

    function _claimAll(address account, uint64[] calldata cycleIds, uint256[] calldata amounts, bytes32[][] calldata proofs)
        private
        returns (uint256 sum)
    {
        uint256 n = cycleIds.length;
        if (n == 0 || amounts.length != n || proofs.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            _claim(account, cycleIds[i], amounts[i], proofs[i]);
            sum += amounts[i];
        }
    }

    function _payRelayed(address beneficiary, uint256 amount, uint16 feeBps) private {
        if (feeBps > MAX_RELAYER_FEE_BPS) revert FeeTooHigh(feeBps, MAX_RELAYER_FEE_BPS);
        if (feeBps > 0 && !hasRole(ANCHOR_ROLE, msg.sender)) revert FeeNotAllowed(msg.sender);
        uint256 fee = (amount * feeBps) / 10_000;
        token.safeTransfer(beneficiary, amount - fee);
        if (fee > 0) token.safeTransfer(msg.sender, fee);
        emit ClaimRelayed(beneficiary, msg.sender, amount, fee);
    }

    function _claim(address account, uint64 cycleId, uint256 amount, bytes32[] calldata proof) private {
        if (account == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        Cycle storage c = _cycles[cycleId];
        if (c.anchoredAt == 0) revert NotAnchored(cycleId);
        if (_claimed[cycleId][account]) revert AlreadyClaimed(cycleId, account);
        if (!MerkleProof.verifyCalldata(proof, c.payoutRoot, leafOf(account, amount))) {
            revert InvalidProof(cycleId, account, amount);
        }
        uint256 claimed = c.claimed + amount;
        if (claimed > c.total) revert CycleOverclaimed(cycleId);
        c.claimed = claimed;
        _claimed[cycleId][account] = true;
        outstandingPayouts -= amount;
        emit Claimed(cycleId, account, amount);
    }
}
