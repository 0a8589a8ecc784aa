/** Human-readable forms of the wallet view and the validator set, as `cgn wallet` prints them. */
import { formatUnits } from 'viem';
import type { ValidatorSet } from './validator-set.js';
import type { WalletView } from './wallet-view.js';

const DECIMALS = 18;
export const fmtTokens = (n: bigint): string => `${formatUnits(n, DECIMALS)} CGN`;
const pct = (bps: number) => `${(bps / 100).toFixed(2)}%`;

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

export function formatWalletView(v: WalletView): string {
  const b = v.balances;
  const t = v.totals;
  const lines = [
    `address     ${v.address}   (chain ${v.chainId}, as of block ${v.asOf})`,
    `tokens      ${fmtTokens(b.tokens)}`,
    `escrow      ${fmtTokens(b.escrow)} (withdrawable ${fmtTokens(b.withdrawable)})`,
    `stake       ${fmtTokens(b.stake)}${b.openTierEligible ? ' (open tier)' : ''}${b.unbonding > 0n ? `, unbonding ${fmtTokens(b.unbonding)} from ${new Date(Number(b.unbondingReleaseAt) * 1000).toISOString()}` : ''}`,
    ...(b.banned ? ['banned      yes (slashed)'] : []),
    `validator   ${v.validator.candidate ? `candidate, service level ${pct(v.validator.serviceLevel)}, weight ${v.validator.weight}` : 'not a candidate'}${v.validator.electedEpochs.length > 0 ? `; elected in epoch ${v.validator.electedEpochs.join(', ')}` : ''}`,
    `totals      deposited ${fmtTokens(t.deposited)}, withdrawn ${fmtTokens(t.withdrawn)}, claimed ${fmtTokens(t.claimed)}, staked ${fmtTokens(t.staked)}, slashed ${fmtTokens(t.slashed)}`,
    '',
  ];
  if (v.history.length === 0) return [...lines, 'no history'].join('\n');
  const rows = [['block', 'kind', 'amount', 'detail', 'tx']];
  for (const e of v.history) {
    const detail =
      e.kind === 'service-level' ? pct(e.bps ?? 0)
      : e.cycleId !== undefined ? `cycle ${e.cycleId}`
      : e.evidenceHash !== undefined ? `evidence ${e.evidenceHash.slice(0, 18)}…`
      : e.counterparty !== undefined ? `${e.kind === 'deposit' ? 'from' : 'for'} ${e.counterparty}`
      : '';
    rows.push([String(e.blockNumber), e.kind, e.amount === 0n && e.kind !== 'claim' ? '' : fmtTokens(e.amount), detail, e.txHash]);
  }
  return [...lines, ...table(rows)].join('\n');
}

export function formatValidatorSet(s: ValidatorSet, round: bigint): string {
  if (!s.elected) return `epoch ${s.epoch}: not elected${s.epoch === 0n ? ' (no epoch has been elected yet)' : ''}`;
  return [
    `epoch       ${s.epoch}`,
    `seed        ${s.seed}`,
    `proposer    ${s.proposer(round)} (round ${round})`,
    'validators',
    ...s.validators.map((a, i) => `  ${i + 1}. ${a}`),
  ].join('\n');
}
