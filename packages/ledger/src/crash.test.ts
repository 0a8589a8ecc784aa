/**
 * Durability over a real process: a child appends through the built ledger and prints each work
 * id only after record() resolved; we SIGKILL it mid-run and check that every acknowledged record
 * is in the reopened ledger, exactly once, and that the hash chains still verify.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteLedgerStore } from './sqlite-store.js';
import { GroupCommitWriter } from './group-commit.js';
import type { Durability } from './store.js';
import { makeRecord } from './test-fixtures/records.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./test-fixtures/crash-writer.mjs', import.meta.url));

const WATCHDOG_MS = 25_000;

interface Run {
  acked: string[];
  signal: NodeJS.Signals | null;
}

/** Starts the child, kills it with SIGKILL once `killAfter` records are acknowledged, returns what it acknowledged. */
function runAndKill(path: string, durability: Durability, killAfter: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path, durability], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    let partial = '';
    let stderr = '';
    let killed = false;
    // Watchdog, not synchronisation: a child that stops acknowledging must not outlive the test.
    const watchdog = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash-writer acknowledged only ${acked.length} of ${killAfter} records in ${WATCHDOG_MS} ms:\n${stderr}`));
    }, WATCHDOG_MS);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? ''; // a line without its newline was never completely printed
      for (const line of lines) if (line !== 'ready') acked.push(line);
      if (!killed && acked.length >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    // 'close' comes after stdout is drained: everything the child printed before dying is in `acked`.
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      if (!killed) reject(new Error(`crash-writer exited on its own (code ${code}, signal ${signal}) after ${acked.length} records:\n${stderr}`));
      else resolve({ acked, signal });
    });
    child.on('error', reject);
  });
}

describe.each(['normal', 'full'] as const)('a writer process killed with SIGKILL (durability %s)', (durability) => {
  beforeAll(() => {
    // The child runs the built package.
    execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-b', 'packages/ledger'], { cwd: ROOT, stdio: 'pipe' });
  });

  it('loses no acknowledged record, duplicates none, and leaves verifiable chains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-ledger-crash-'));
    try {
      const path = join(dir, 'ledger.sqlite');
      const killAfter = durability === 'full' ? 1500 : 5000;
      const first = await runAndKill(path, durability, killAfter);
      expect(first.signal).toBe('SIGKILL');
      expect(first.acked.length).toBeGreaterThanOrEqual(killAfter);

      // A second life on the same file, killed again: the chain heads must carry over.
      const second = await runAndKill(path, durability, killAfter);
      const acked = [...first.acked, ...second.acked];
      expect(new Set(acked).size).toBe(acked.length);

      const store = new SqliteLedgerStore({ path, durability });
      try {
        for (const id of acked) {
          if (store.get(id) === undefined) throw new Error(`acknowledged work ${id} is missing from the ledger`);
        }
        const db = new Database(path, { readonly: true });
        const twice = db.prepare('SELECT work_id, COUNT(*) AS n FROM microtransactions GROUP BY work_id HAVING n > 1').all();
        const retried = db.prepare('SELECT COUNT(*) AS n FROM microtransactions WHERE status = 599').get() as { n: number };
        db.close();
        expect(twice).toEqual([]);
        expect(retried.n).toBe(0); // re-recorded work never replaced or joined the first record
        const rows = store.count();
        expect(rows).toBeGreaterThanOrEqual(acked.length); // committed-but-not-yet-printed rows may be there too
        expect(store.verifyChain()).toEqual({ ok: true, rows });

        // The billing columns survived with the rows: every record is priced, each account's
        // spent balance is exactly the sum of its records' tokens (nothing charged twice), and
        // closing the cycle balances debits against credits to the unit.
        const raw = new Database(path, { readonly: true });
        const unpriced = raw.prepare('SELECT COUNT(*) AS n FROM microtransactions WHERE tokens IS NULL OR parts IS NULL').get() as { n: number };
        const perAccount = new Map<string, bigint>();
        for (const r of raw.prepare('SELECT account, tokens FROM microtransactions').iterate() as IterableIterator<{ account: string; tokens: string }>) {
          perAccount.set(r.account, (perAccount.get(r.account) ?? 0n) + BigInt(r.tokens));
        }
        raw.close();
        expect(unpriced.n).toBe(0);
        expect(new Map(store.balances().map((b) => [b.account, b.spent]))).toEqual(perAccount);
        const total = [...perAccount.values()].reduce((a, b) => a + b, 0n);
        const closed = store.closeCycle();
        expect(closed).toMatchObject({ records: rows, pricedRecords: rows, tokens: total });
        expect(store.debits(closed.id).reduce((a, d) => a + d.tokens, 0n)).toBe(total);
        expect(store.credits(closed.id).reduce((a, c) => a + c.tokens, 0n)).toBe(total);

        // And the ledger carries on after the crash.
        const writer = new GroupCommitWriter(store);
        writer.start();
        await Promise.all(Array.from({ length: 10 }, (_, i) => writer.record(makeRecord(i, { node: i % 2 ? 'node-a' : 'node-b' }))));
        await writer.stop();
        expect(store.verifyChain()).toEqual({ ok: true, rows: rows + 10 });
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
