/**
 * Chain failures as sentences a user can act on. `explainChainError(err, ctx)` turns whatever a
 * transaction or a read threw (a contract's custom error, from any CGN contract or the token it
 * calls; no ETH for gas; the endpoint unreachable; no contract at the address) into a
 * `ChainActionError` whose message says what happened and what to do next, and whose `code`
 * names the kind. Pure: the caller supplies the facts it knows (signer, chain id, its ETH).
 */
import { BaseError, ContractFunctionRevertedError, ContractFunctionZeroDataError, decodeErrorResult, formatEther, formatUnits, HttpRequestError, InsufficientFundsError, keccak256, toHex, type Abi, type Hex } from 'viem';
import { ANVIL_CHAIN_ID } from './anvil.js';
import { cgnTokenAbi, settlementAbi, stakingAbi, validatorElectionAbi } from './generated/index.js';

export type ChainErrorCode =
  /** The signer cannot pay for gas. */
  | 'no-gas'
  /** An address holds fewer CGN than the transaction moves. */
  | 'not-enough-tokens'
  /** A contract refused the transaction (its custom error is `reason`). */
  | 'refused'
  | 'unreachable'
  | 'no-contract'
  | 'failed';

export class ChainActionError extends Error {
  constructor(
    readonly code: ChainErrorCode,
    message: string,
    /** The contract's error name, for `refused` and `not-enough-tokens`. */
    readonly reason?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ChainActionError';
  }
}

export interface ChainErrorContext {
  /** The address that signed (pays the gas). */
  signer?: string;
  /** Chain id of the endpoint, when known: the faucet is suggested only on the local chain. */
  chainId?: number;
  rpcUrl?: string;
  /** The signer's ETH, when looked up after a gas failure. */
  ethBalance?: bigint;
  /** The command that failed (`claim`, `deposit`…), to tailor the advice. */
  command?: string;
}

/** Every custom error any CGN contract can surface, including the token's raised under a deposit or stake. */
const ERRORS_ABI = [...cgnTokenAbi, ...settlementAbi, ...stakingAbi, ...validatorElectionAbi].filter((x) => x.type === 'error') as Abi;

export interface DecodedRevert {
  name: string;
  args: readonly unknown[];
}

/** The contract error behind `err`, decoded against every CGN contract's errors (not only the called one's). */
export function decodeRevert(err: unknown): DecodedRevert | undefined {
  if (!(err instanceof BaseError)) return undefined;
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (!(reverted instanceof ContractFunctionRevertedError)) return undefined;
  if (reverted.data?.errorName) return { name: reverted.data.errorName, args: reverted.data.args ?? [] };
  const raw = reverted.raw ?? (reverted.signature as Hex | undefined);
  if (raw !== undefined && raw.length >= 10) {
    try {
      const d = decodeErrorResult({ abi: ERRORS_ABI, data: raw });
      return { name: d.errorName, args: d.args ?? [] };
    } catch {
      // an error of no CGN contract: fall through to the selector
    }
    return { name: `unknown error ${raw.slice(0, 10)}`, args: [] };
  }
  return reverted.reason ? { name: reverted.reason, args: [] } : undefined;
}

const cgn = (n: unknown) => `${formatUnits(BigInt(n as bigint), 18)} CGN`;
const isLocal = (ctx: ChainErrorContext) => ctx.chainId === ANVIL_CHAIN_ID;
/** Role ids (keccak256 of the name, as the contracts define them) back to their names. */
const ROLES: Record<string, string> = Object.fromEntries([
  [`0x${'0'.repeat(64)}`, 'DEFAULT_ADMIN_ROLE'],
  ...['ANCHOR_ROLE', 'MINTER_ROLE', 'SLASHER_ROLE', 'ORACLE_ROLE', 'ELECTOR_ROLE'].map((r) => [keccak256(toHex(r)), r]),
]);

/** How `who` gets `amount` more CGN: the faucet on the local chain, a transfer from a holder elsewhere. */
function fundTokens(who: string, amount: bigint, ctx: ChainErrorContext): string {
  const n = formatUnits(amount, 18);
  return isLocal(ctx)
    ? `run cgn wallet faucet --address ${who} --amount ${n}`
    : `have a holder send them (cgn wallet transfer --to ${who} --amount ${n} --key <holder's key>)`;
}

function fundGas(who: string, ctx: ChainErrorContext): string {
  const fix = isLocal(ctx) ? `run cgn wallet faucet --address ${who} --eth 1` : `send it ETH${ctx.chainId !== undefined ? ` on chain ${ctx.chainId}` : ''}`;
  const relay = ctx.command === 'claim' ? `; or let anyone claim for it without its gas: cgn wallet claim --for ${who} (cgn settle does so by default)` : '';
  return `${fix}${relay}`;
}

/** One sentence per contract error: what it means and what to do. */
function refusal(d: DecodedRevert, ctx: ChainErrorContext): { code: ChainErrorCode; text: string } {
  const a = d.args;
  const s = (i: number) => String(a[i]);
  switch (d.name) {
    case 'ERC20InsufficientBalance': {
      const [who, has, needs] = [s(0), BigInt(a[1] as bigint), BigInt(a[2] as bigint)];
      return { code: 'not-enough-tokens', text: `${who} holds ${cgn(has)}, needs ${cgn(needs)}: ${fundTokens(who, needs - has, ctx)}` };
    }
    case 'ERC20InsufficientAllowance':
      return { code: 'refused', text: `${s(0)} may spend only ${cgn(a[1])} of the signer's CGN, needs ${cgn(a[2])}: the deposit and stake commands approve it first; run the command again` };
    case 'ERC20InvalidReceiver':
    case 'ZeroAddress':
      return { code: 'refused', text: 'the receiving address is the zero address: give a real address' };
    case 'ZeroAmount':
      return { code: 'refused', text: 'the amount is 0: give an amount above 0' };
    case 'NotAnchored':
      return { code: 'refused', text: `cycle ${s(0)} is not anchored on chain yet: cgn settle anchors each closed cycle (see its log, .cgn/logs/settle.log); try again once it has` };
    case 'AlreadyClaimed':
      return { code: 'refused', text: `cycle ${s(0)} was already claimed for ${s(1)} (by it or by a relayer): nothing is left to claim there; cgn wallet history ${s(1)} lists the claims` };
    case 'InvalidProof':
      return { code: 'refused', text: `cycle ${s(0)} owes ${s(1)} no leaf of ${s(2)} base units: the amount or proof is wrong, or the cycle pays another address; let the ledger find the right ones: cgn wallet claim --ledger PATH` };
    case 'CycleOverclaimed':
      return { code: 'refused', text: `cycle ${s(0)} is paid out in full: nothing is left to claim` };
    case 'FeeTooHigh':
      return { code: 'refused', text: `a relayer fee of ${s(0)} basis points is above the contract's cap of ${s(1)}: give --fee-bps ${s(1)} or less` };
    case 'ExceedsWithdrawable':
      return { code: 'refused', text: `you may withdraw at most ${cgn(a[1])} now, not ${cgn(a[0])}: ask the ledger for the unused balance first (cgn ledger withdraw); cgn settle posts it after the next anchored cycle` };
    case 'LengthMismatch':
      return { code: 'refused', text: 'the claim list is empty or its cycles, amounts and proofs differ in length' };
    case 'InsufficientStake':
      return { code: 'refused', text: `${cgn(a[1])} is staked, less than the ${cgn(a[0])} asked: give a smaller --amount (cgn wallet balance shows the stake)` };
    case 'StillUnbonding':
      return { code: 'refused', text: `the unbonding stake is released at ${new Date(Number(a[0]) * 1000).toISOString()}: run cgn wallet unbond --withdraw after that` };
    case 'NothingUnbonding':
      return { code: 'refused', text: 'nothing is unbonding: request it first with cgn wallet unbond --amount N, then withdraw after the delay' };
    case 'BannedStaker':
    case 'Banned':
      return { code: 'refused', text: `${s(0)} was slashed and is banned from staking` };
    case 'AccessControlUnauthorizedAccount':
      return { code: 'refused', text: `${s(0)} lacks the contract role this needs (${ROLES[s(1)] ?? s(1)}): sign with the operator's key` };
    default: {
      const args = a.length === 0 ? '' : `(${a.map((x) => String(x)).join(', ')})`;
      return { code: 'refused', text: `the contract refused it: ${d.name}${args}` };
    }
  }
}

function firstLine(err: unknown): string {
  const m = err instanceof BaseError ? err.shortMessage : (err as Error)?.message ?? String(err);
  return m.split('\n')[0]!;
}

/** `err` as a `ChainActionError` that says what to do (an error that already is one is returned as is). */
export function explainChainError(err: unknown, ctx: ChainErrorContext = {}): ChainActionError {
  if (err instanceof ChainActionError) return err;
  const d = decodeRevert(err);
  if (d !== undefined) {
    const r = refusal(d, ctx);
    return new ChainActionError(r.code, /^\w+$/.test(d.name) ? `${r.text} (contract error ${d.name})` : r.text, d.name, { cause: err });
  }
  const text = err instanceof BaseError ? `${err.message}` : String((err as Error)?.message ?? err);
  const noGas = (err instanceof BaseError && err.walk((e) => e instanceof InsufficientFundsError) instanceof InsufficientFundsError) || /insufficient funds|exceeds the balance of the account/i.test(text);
  if (noGas) {
    const who = ctx.signer ?? 'the signing address';
    const has = ctx.ethBalance === undefined ? 'has not enough ETH for gas' : ctx.ethBalance === 0n ? 'has no ETH for gas' : `holds ${formatEther(ctx.ethBalance)} ETH, not enough for gas`;
    return new ChainActionError('no-gas', `${who} ${has}: ${fundGas(who, ctx)}`, undefined, { cause: err });
  }
  if (err instanceof BaseError && err.walk((e) => e instanceof ContractFunctionZeroDataError) instanceof ContractFunctionZeroDataError) {
    return new ChainActionError('no-contract', 'no CGN contract answers at the address in the contracts file: the file belongs to another deployment (a chain restarted without its state?); use the one the deployment wrote (.cgn/chain-contracts.json for npm start)', undefined, { cause: err });
  }
  const unreachable = (err instanceof BaseError && err.walk((e) => e instanceof HttpRequestError) instanceof HttpRequestError) || /ECONNREFUSED|fetch failed|ENOTFOUND|socket hang up/i.test(text);
  if (unreachable) {
    const at = ctx.rpcUrl ? ` at ${ctx.rpcUrl}` : '';
    return new ChainActionError('unreachable', `cannot reach the chain${at}: is the network running (npm start)? Otherwise check --rpc (or CGN_CHAIN_RPC)`, undefined, { cause: err });
  }
  return new ChainActionError('failed', firstLine(err), undefined, { cause: err });
}
