import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { payoutKeyFileFor, resolvePayoutNew } from './miner-payout.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('cgn miner --payout-address new', () => {
  it('makes a wallet next to the miner key (0600), prints its address, and reuses it next time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-payout-'));
    dirs.push(dir);
    const key = join(dir, 'rig.pem');
    const said: string[] = [];
    const argv = resolvePayoutNew(['--node', 'wss://n', '--key', key, '--payout-address', 'new'], '/nowhere.pem', (l) => said.push(l));
    const address = argv[argv.indexOf('--payout-address') + 1]!;
    expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(said[0]).toContain(`made a payout wallet ${address}`);
    const file = payoutKeyFileFor(key);
    expect(file).toBe(join(dir, 'rig.payout.key'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^0x[0-9a-f]{64}\n$/);
    const again = resolvePayoutNew(['--key', key, '--payout-address=new'], '/nowhere.pem', (l) => said.push(l));
    expect(again).toEqual(['--key', key, `--payout-address=${address}`]);
    expect(said[1]).toContain('made before');
  });

  it('leaves a real address and other arguments alone', () => {
    const argv = ['--payout-address', '0x' + '11'.repeat(20), '--slots', '2'];
    expect(resolvePayoutNew(argv, '/x.pem', () => { throw new Error('said something'); })).toEqual(argv);
  });
});
