/**
 * What the miner says on its own console (stderr, plain words) about being paid: at start when it
 * has no payout address, and whenever the node tells it a cycle closed with earnings held for it.
 */

/** Shown at start by a miner with no `--payout-address`. */
export function noPayoutAddressWarning(): string {
  return [
    'cgn miner: WARNING: no --payout-address. What this miner earns is held in the ledger, not paid,',
    '  until it gives an address: restart with --payout-address 0xYOURADDRESS, or --payout-address new',
    '  to make a wallet now (its key is written next to the miner key). Held earnings are paid in the',
    '  first billing cycle after the address is known.',
  ].join('\n');
}

/** A node's notice, as the console shows it. */
export function noticeLine(n: { kind: string; message: string }): string {
  return `cgn miner: ${n.kind === 'earnings_held' ? 'WARNING: ' : ''}${n.message.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ')}`;
}
