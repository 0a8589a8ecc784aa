import { describe, expect, it } from 'vitest';
import { GroupCommitWriter } from './group-commit.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import { makeRecord } from './test-fixtures/records.js';

describe('GroupCommitWriter onCommit (metrics)', () => {
  it('is told each transaction\'s size and duration once, and a throwing hook does not undo the commit', async () => {
    const seen: [number, number][] = [];
    const store = new SqliteLedgerStore({ path: ':memory:' });
    const w = new GroupCommitWriter(store, { onCommit: (n, us) => seen.push([n, us]) });
    w.start();
    await Promise.all(Array.from({ length: 5 }, (_, i) => w.record(makeRecord(i))));
    await w.record(makeRecord(5));
    expect(seen.map(([n]) => n).reduce((a, b) => a + b, 0)).toBe(6);
    expect(seen).toHaveLength(w.counters.batches);
    expect(seen.every(([, us]) => us >= 0)).toBe(true);
    const throwing = new GroupCommitWriter(store, { onCommit: () => { throw new Error('hook'); } });
    throwing.start();
    await expect(throwing.record(makeRecord(6))).resolves.toBeUndefined();
    await w.stop();
    await throwing.stop();
  });
});
