import { ContractFunctionExecutionError, ContractFunctionRevertedError, ContractFunctionZeroDataError, encodeErrorResult, HttpRequestError, InsufficientFundsError, TransactionExecutionError } from 'viem';
import { describe, expect, it } from 'vitest';
import { decodeRevert, explainChainError } from './chain-errors.js';
import { cgnTokenAbi, settlementAbi, stakingAbi } from './generated/index.js';

const A = '0x1111111111111111111111111111111111111111';
const T = 10n ** 18n;

/** A revert of `functionName` on the settlement contract carrying `data`, as viem wraps it. */
function revert(data: `0x${string}`, functionName = 'deposit') {
  const inner = new ContractFunctionRevertedError({ abi: settlementAbi, data, functionName });
  return new ContractFunctionExecutionError(inner, { abi: settlementAbi, functionName, args: [] });
}

describe('explainChainError', () => {
  it("names a token shortfall raised inside a deposit (the token's error, not the settlement's) and the faucet that fixes it", () => {
    const data = encodeErrorResult({ abi: cgnTokenAbi, errorName: 'ERC20InsufficientBalance', args: [A, 0n, T] });
    const err = revert(data);
    // viem alone cannot decode it against the called contract's ABI: the text is cut off
    expect(err.message).toMatch(/reverted with the following signature/);
    expect(decodeRevert(err)).toMatchObject({ name: 'ERC20InsufficientBalance' });
    const e = explainChainError(err, { chainId: 31337, command: 'deposit' });
    expect(e.code).toBe('not-enough-tokens');
    expect(e.message).toBe(`${A} holds 0 CGN, needs 1 CGN: run cgn wallet faucet --address ${A} --amount 1 (contract error ERC20InsufficientBalance)`);
    // elsewhere than the local chain, a transfer from a holder
    expect(explainChainError(err, { chainId: 1 }).message).toMatch(/holds 0 CGN, needs 1 CGN: have a holder send them \(cgn wallet transfer --to 0x1111/);
  });

  it('says which address has no ETH for gas and how to get it, and for a claim that it can be relayed', () => {
    const err = new TransactionExecutionError(new InsufficientFundsError(), { account: { address: A, type: 'json-rpc' } });
    const e = explainChainError(err, { signer: A, chainId: 31337, ethBalance: 0n, command: 'claim' });
    expect(e.code).toBe('no-gas');
    expect(e.message).toBe(`${A} has no ETH for gas: run cgn wallet faucet --address ${A} --eth 1; or let anyone claim for it without its gas: cgn wallet claim --for ${A} (cgn settle does so by default)`);
    expect(e.message).not.toMatch(/total cost/);
    expect(explainChainError(err, { signer: A, chainId: 5, ethBalance: 10n ** 12n }).message).toBe(`${A} holds 0.000001 ETH, not enough for gas: send it ETH on chain 5`);
    // the node's own words, when viem did not classify them
    expect(explainChainError(new Error('insufficient funds for gas * price + value'), { signer: A }).code).toBe('no-gas');
  });

  it('turns each settlement and staking refusal into what to do', () => {
    const cases: [typeof settlementAbi | typeof stakingAbi, string, readonly unknown[], RegExp][] = [
      [settlementAbi, 'NotAnchored', [7n], /^cycle 7 is not anchored on chain yet: cgn settle anchors/],
      [settlementAbi, 'AlreadyClaimed', [7n, A], /^cycle 7 was already claimed for 0x1111.* \(contract error AlreadyClaimed\)$/],
      [settlementAbi, 'InvalidProof', [7n, A, 5n], /no leaf of 5 base units.*cgn wallet claim --ledger/],
      [settlementAbi, 'ExceedsWithdrawable', [2n * T, T], /at most 1 CGN now, not 2 CGN: .*cgn ledger withdraw/],
      [settlementAbi, 'FeeTooHigh', [500, 100], /give --fee-bps 100 or less/],
      [settlementAbi, 'AccessControlUnauthorizedAccount', [A, '0xc4e5e5a8d0d1ceb0b2a0f5b0f1a5f6c3b6cfb0c5f7f0b1b3f0b0b3b3b3b3b3b3'], /lacks the contract role/],
      [stakingAbi, 'StillUnbonding', [1_700_000_000n], /released at 2023-11-14T22:13:20.000Z: run cgn wallet unbond --withdraw/],
      [stakingAbi, 'NothingUnbonding', [], /request it first with cgn wallet unbond --amount N/],
    ];
    for (const [abi, errorName, args, re] of cases) {
      const data = encodeErrorResult({ abi, errorName, args } as Parameters<typeof encodeErrorResult>[0]);
      const e = explainChainError(revert(data, 'claim'), { chainId: 31337 });
      expect(e.code, errorName).toBe('refused');
      expect(e.reason).toBe(errorName);
      expect(e.message, errorName).toMatch(re);
    }
  });

  it('names the role of an access refusal', () => {
    const role = '0x' + 'b'.repeat(64);
    const anchor = '0x' + Buffer.from(new Uint8Array(32)).toString('hex');
    expect(explainChainError(revert(encodeErrorResult({ abi: settlementAbi, errorName: 'AccessControlUnauthorizedAccount', args: [A, anchor as `0x${string}`] }))).message).toMatch(/\(DEFAULT_ADMIN_ROLE\): sign with the operator's key/);
    expect(explainChainError(revert(encodeErrorResult({ abi: settlementAbi, errorName: 'AccessControlUnauthorizedAccount', args: [A, role as `0x${string}`] }))).message).toContain(role);
  });

  it('says an unknown selector plainly instead of a cut-off sentence', () => {
    const e = explainChainError(revert('0xdeadbeef'));
    expect(e.message).toBe('the contract refused it: unknown error 0xdeadbeef');
  });

  it('an unreachable endpoint and a missing contract', () => {
    const down = new HttpRequestError({ url: 'http://127.0.0.1:1', details: 'fetch failed' });
    expect(explainChainError(down, { rpcUrl: 'http://127.0.0.1:1' })).toMatchObject({ code: 'unreachable', message: expect.stringMatching(/^cannot reach the chain at http:\/\/127.0.0.1:1: is the network running \(npm start\)/) as unknown });
    const gone = new ContractFunctionExecutionError(new ContractFunctionZeroDataError({ functionName: 'balanceOf' }), { abi: cgnTokenAbi, functionName: 'balanceOf', args: [] });
    expect(explainChainError(gone).code).toBe('no-contract');
  });

  it('keeps the first line of anything else', () => {
    expect(explainChainError(new Error('something odd\nwith details'))).toMatchObject({ code: 'failed', message: 'something odd' });
  });
});
