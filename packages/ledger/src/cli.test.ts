import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLedgerFromArgs } from './cli.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import { makePricedRecord, makeRecord } from './test-fixtures/records.js';
import Database from 'better-sqlite3';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runLedgerFromArgs(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function runWith(deps: Parameters<typeof runLedgerFromArgs>[2], ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runLedgerFromArgs(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, deps);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('cgn ledger (runLedgerFromArgs)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const ledger = (): { dir: string; path: string } => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-ledger-cli-'));
    dirs.push(dir);
    const path = join(dir, 'ledger.sqlite');
    const store = new SqliteLedgerStore({ path });
    store.appendBatch([
      makePricedRecord(1, { dservice: 'echo', receivedAt: Date.UTC(2030, 0, 1) }),
      makePricedRecord(8, { dservice: 'mediagen', receivedAt: Date.UTC(2030, 0, 2) }),
      makeRecord(15),
      makePricedRecord(2),
    ]);
    store.close();
    return { dir, path };
  };

  it('prints help, and exits 2 on bad usage with a clear message', async () => {
    expect((await run('--help')).out).toMatch(/Usage: cgn ledger <command>/);
    expect(await run('usage', '--help')).toMatchObject({ code: 0, out: expect.stringMatching(/--by dservice/) });
    expect(await run()).toMatchObject({ code: 2, err: expect.stringMatching(/a command is required/) });
    expect(await run('frobnicate')).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command "frobnicate"/) });
    expect(await run('usage', '--bogus')).toMatchObject({ code: 2, err: expect.stringMatching(/bogus/) });
    const { path } = ledger();
    expect(await run('usage', '--ledger', path, '--by', 'week')).toMatchObject({ code: 2, err: expect.stringMatching(/--by must be one of/) });
    expect(await run('invoice', '--ledger', path)).toMatchObject({ code: 2, err: expect.stringMatching(/--account is required/) });
    expect(await run('credit', '--ledger', path, '--account', 'a', '--amount', '1.5')).toMatchObject({ code: 2 });
    expect(await run('close-cycle', '--ledger', path, '--rate', '1/0')).toMatchObject({ code: 2 });
    expect(await run('verify')).toMatchObject({ code: 2, err: expect.stringMatching(/FILE is required/) });
    expect(await run('audit', '--ledger', join(path, 'nope'))).toMatchObject({ code: 1, err: expect.stringMatching(/no ledger at/) });
  });

  it('one account id, one miner id: ids by name or unambiguous prefix; unknown or ambiguous ones name what exists', async () => {
    const { path } = ledger();
    const miner = 'ab'.repeat(32);
    // The ledger's accounts are acct_0..acct_6 (records); "demo" is none of them.
    expect(await run('invoice', '--ledger', path, '--account', 'demo')).toMatchObject({ code: 1, err: expect.stringMatching(/no account "demo" in this ledger; accounts: acct_/) });
    expect(await run('usage', '--ledger', path, '--account', 'acct')).toMatchObject({ code: 1, err: expect.stringMatching(/several account ids/) });
    // With central's accounts, names work.
    const centralAccounts = async () => [{ id: 'acc_AAAAAAAAAAAAAAAA', name: 'acme' }, { id: 'acct_1', name: 'one' }];
    const usage = await runWith({ centralAccounts }, 'usage', '--ledger', path, '--account', 'one', '--json');
    expect(JSON.parse(usage.out).filter).toMatchObject({ account: 'acct_1' });
    // link-address: a name that is no account is refused (it used to make a phantom account) ...
    const A = '0x' + '1a'.repeat(20);
    expect(await run('link-address', '--ledger', path, '--account', 'acme', '--address', A)).toMatchObject({ code: 1, err: expect.stringMatching(/does not look like an account id.*--new-account/) });
    expect(await runWith({ centralAccounts }, 'link-address', '--ledger', path, '--account', 'nobody', '--address', A)).toMatchObject({ code: 1, err: expect.stringMatching(/no account "nobody" at central; accounts: acc_AAAAAAAAAAAAAAAA \(acme\)/) });
    // ... and a name central knows is linked under its id.
    expect(await runWith({ centralAccounts }, 'link-address', '--ledger', path, '--account', 'acme', '--address', A)).toMatchObject({ code: 0, out: expect.stringContaining('linked to acc_AAAAAAAAAAAAAAAA') });
    // Without central: an id shaped like central's is taken (a new account funding itself).
    expect((await run('link-address', '--ledger', path, '--account', 'acc_BBBBBBBBBBBBBBBB', '--address', '0x' + '2b'.repeat(20))).code).toBe(0);
    // unlink-address undoes a link; its account by name or id.
    expect(await runWith({ centralAccounts }, 'unlink-address', '--ledger', path, '--account', 'acme', '--address', A)).toMatchObject({ code: 0, out: expect.stringContaining('no longer linked') });
    expect(await run('unlink-address', '--ledger', path, '--account', 'acc_BBBBBBBBBBBBBBBB', '--address', A)).toMatchObject({ code: 1, err: expect.stringMatching(/not linked to any account/) });
    // Miners: the 16-hex id the miner logs, or any unambiguous start; unknown ones are errors.
    expect((await run('close-cycle', '--ledger', path)).code).toBe(0);
    const short = JSON.parse((await run('earnings', '--ledger', path, '--beneficiary', miner.slice(0, 16), '--json')).out);
    expect(short.credits[0]).toMatchObject({ role: 'miner', beneficiary: miner });
    expect(await run('earnings', '--ledger', path, '--beneficiary', 'cafe')).toMatchObject({ code: 1, err: expect.stringMatching(new RegExp(`no miner "cafe" in this ledger; miners: ${miner.slice(0, 16)}`)) });
    // What is held, and for whom: the miner had no address when cycle 1 closed.
    const heldNow = await run('held', '--ledger', path, '--role', 'miner');
    expect(heldNow).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`miner\\s+${miner}\\s+[\\d.]+\\s+1\\s+no address yet`)) });
    expect((await run('register-address', '--ledger', path, '--role', 'miner', '--id', miner.slice(0, 16), '--address', A)).out).toContain(`miner ${miner} is paid to`);
    expect((await run('held', '--ledger', path, '--beneficiary', miner.slice(0, 16))).out).toMatch(/paid to 0x(1a){20} next cycle/);
    expect((await run('close-cycle', '--ledger', path)).out).toMatch(/Closed billing cycle 2: 0 records/); // it pays what was held
    expect((await run('held', '--ledger', path, '--role', 'miner')).out).toContain('Nothing is held');
    expect((await run('held', '--ledger', path, '--role', 'miner', '--all')).out).toMatch(/paid in 2/);
  });

  it('close-cycle shows its progress reading the records on the progress stream, apart from --json on stdout', async () => {
    const { path } = ledger();
    const progress: string[] = [];
    const out: string[] = [];
    const code = await runLedgerFromArgs(['close-cycle', '--ledger', path, '--json'], { out: (l) => out.push(l), err: () => {}, progress: { write: (s: string) => progress.push(s), isTTY: false } });
    expect(code).toBe(0);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ id: 1, records: 4 });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatch(/^reading the cycle \[#+\] 100% {2}4\/4 records\n$/);
  });

  it('a manual close-cycle while a schedule holds the ledger asks the schedule to close, and waits for it', async () => {
    const { path } = ledger();
    const other = { holder: 'cgn settle', pid: 999_999, host: 'elsewhere', everyMs: 120_000, ttlMs: 30_000 };
    const store = new SqliteLedgerStore({ path });
    try {
      expect((await store.holdCycleCloser(other)).held).toBe(true);
      // The "schedule": closes when asked (what cgn settle does at its next pass).
      let asked = false;
      const schedule = setInterval(() => {
        const c = store.cycleCloser();
        if (c?.closeRequestedAt != null && !asked) {
          asked = true;
          store.closeCycle();
        }
      }, 50);
      const r = await run('close-cycle', '--ledger', path, '--wait', '5s');
      clearInterval(schedule);
      expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/asked cgn settle \(pid 999999 on elsewhere, every 120 s; last seen \d+ s ago\) to close billing cycle 1[\s\S]*Closed billing cycle 1: 4 records/) });
      expect(asked).toBe(true);
      // A second schedule is refused; --force closes here anyway.
      expect(await run('close-cycle', '--ledger', path, '--every', '1h')).toMatchObject({ code: 1, err: expect.stringMatching(/already closes this ledger's cycles; one schedule per ledger/) });
      store.appendBatch([makePricedRecord(40)]);
      expect(await run('close-cycle', '--ledger', path, '--force')).toMatchObject({ code: 0, out: expect.stringMatching(/Closed billing cycle 2: 1 records/) });
      // Nobody answering in time: an error that says what to do.
      store.appendBatch([makePricedRecord(41)]);
      expect(await run('close-cycle', '--ledger', path, '--wait', '1s')).toMatchObject({ code: 1, err: expect.stringMatching(/did not close cycle 3 within 1 s.*--force/) });
      // Once the lease lapses, a manual close closes here.
      store.releaseCycleCloser(other);
      expect((await run('close-cycle', '--ledger', path)).out).toMatch(/Closed billing cycle 3/);
    } finally {
      store.close();
    }
  });

  it('close-cycle --rate-file reads the next cycle rate from a rate source; its invoice names the source and time', async () => {
    const { dir, path } = ledger();
    const rateFile = join(dir, 'rate.json');
    writeFileSync(rateFile, JSON.stringify({ cgnBaseUnitsPerMicroUsd: '5/2' }));
    expect(await run('close-cycle', '--ledger', path, '--rate-file', rateFile, '--rate-url', 'https://x')).toMatchObject({ code: 2, err: expect.stringMatching(/one rate source/) });
    expect(await run('close-cycle', '--ledger', path, '--rate-file', join(dir, 'nope.json'))).toMatchObject({ code: 1, err: expect.stringMatching(/cannot read the rate file/) });
    expect((await run('close-cycle', '--ledger', path, '--rate-file', rateFile)).code).toBe(0);
    const store = new SqliteLedgerStore({ path });
    try {
      expect(store.currentCycle()).toMatchObject({ id: 2, rate: { num: 5n, den: 2n }, rateSource: `file:${rateFile}`, rateFetchedAt: expect.any(Number) });
      store.appendBatch([makePricedRecord(30)]);
    } finally {
      store.close();
    }
    expect((await run('close-cycle', '--ledger', path, '--rate', '1/1')).code).toBe(0);
    const inv = await run('invoice', '--ledger', path, '--account', 'acct_1', '--cycle', '2');
    expect(inv.out).toMatch(new RegExp(`Rate: 5/2 CGN base units per .* \\(from file:${rateFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, read \\d{4}-`));
    // A typed --rate is recorded as manual.
    const after = new SqliteLedgerStore({ path, readonly: true });
    try {
      expect(after.currentCycle()).toMatchObject({ id: 3, rate: { num: 1n, den: 1n }, rateSource: 'manual' });
    } finally {
      after.close();
    }
  });

  it('usage, credit, close-cycle, invoice, earnings, proof, verify, audit', async () => {
    const { dir, path } = ledger();
    const usage = await run('usage', '--ledger', path, '--account', 'acct_1');
    expect(usage.code).toBe(0);
    expect(usage.out).toMatch(/echo\s+2/);
    expect(usage.out).toMatch(/TOTAL\s+3/);
    expect((await run('usage', '--ledger', path, '--account', 'acct_1', '--by', 'day', '--from', '2030-01-02')).out).toMatch(/2030-01-02\s+1/);
    expect(JSON.parse((await run('usage', '--ledger', path, '--by', 'end-user', '--json')).out).lines.length).toBeGreaterThan(0);
    expect((await run('credit', '--ledger', path, '--account', 'acct_1', '--amount', '5000')).out).toMatch(/available/);
    expect((await run('balance', '--ledger', path, '--account', 'acct_1', '--json')).out).toMatch(/"deposited": "5000"/);
    expect((await run('register-address', '--ledger', path, '--role', 'charity', '--id', 'charity_1', '--address', '0x' + '11'.repeat(20))).code).toBe(0);
    expect(await run('invoice', '--ledger', path, '--account', 'acct_1')).toMatchObject({ code: 1, err: expect.stringMatching(/no billing cycle has been closed/) });
    const closed = await run('close-cycle', '--ledger', path, '--rate', '3/1', '--batch-size', '2');
    expect(closed).toMatchObject({ code: 0, out: expect.stringMatching(/Closed billing cycle 1: 4 records \(3 priced\) in 2 batches/) });
    const inv = JSON.parse((await run('invoice', '--ledger', path, '--account', 'acct_1', '--json')).out);
    expect(inv).toMatchObject({ cycle: 1, account: 'acct_1', records: 2 });
    // One currency on screen: prices named in µUSD with their USD value, tokens in CGN beside base units.
    expect((await run('invoice', '--ledger', path, '--account', 'acct_1')).out).toMatch(/Amount due: \d+ µUSD \(\d+\.\d{6} USD\) = [\d.]+ CGN \(\d+ base units\)/);
    const earn = JSON.parse((await run('earnings', '--ledger', path, '--role', 'charity', '--json')).out);
    expect(earn.credits[0]).toMatchObject({ role: 'charity', beneficiary: 'charity_1', address: '0x' + '11'.repeat(20) });
    expect(earn.payouts[0].proof).toBeInstanceOf(Array);
    const file = join(dir, 'proof.json');
    expect((await run('proof', '--ledger', path, '--work-id', makePricedRecord(8).workId, '--out', file)).code).toBe(0);
    // An empty open cycle is not closed unless asked; then invoices and earnings still default to the last one with records.
    expect(await run('close-cycle', '--ledger', path)).toMatchObject({ code: 1, err: expect.stringMatching(/billing cycle 2 has no records: nothing to close \(--allow-empty/) });
    const summary = JSON.parse((await run('close-cycle', '--ledger', path, '--json', '--allow-empty')).out); // cycle 2 (empty)
    expect(summary.id).toBe(2);
    expect(JSON.parse((await run('invoice', '--ledger', path, '--account', 'acct_1', '--json')).out)).toMatchObject({ cycle: 1 });
    expect(JSON.parse((await run('earnings', '--ledger', path, '--json')).out)).toMatchObject({ cycle: 1 });
    const proof = JSON.parse(readFileSync(file, 'utf8'));
    expect(await run('verify', file, '--root', proof.recordsRoot)).toMatchObject({ code: 0, out: expect.stringMatching(/^OK: work w_test_8/) });
    writeFileSync(file, JSON.stringify({ ...proof, record: { ...proof.record, bytesOut: 1 } }));
    expect(await run('verify', file)).toMatchObject({ code: 1, err: expect.stringMatching(/FAILED: .*altered/) });
    expect(await run('audit', '--ledger', path)).toMatchObject({ code: 0, out: expect.stringMatching(/OK: 4 records/) });
    const db = new Database(path);
    db.exec('DROP TRIGGER microtransactions_no_update');
    db.prepare("UPDATE microtransactions SET tokens = '999999' WHERE work_id = ?").run(makePricedRecord(2).workId);
    db.close();
    expect(await run('audit', '--ledger', path)).toMatchObject({ code: 1, out: expect.stringMatching(/FAILED .*work w_test_2\) was changed/) });
  });
});
