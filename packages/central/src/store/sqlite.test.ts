import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteCentralStore } from './sqlite.js';
import { describeCentralStore } from '../test-fixtures/store-suite.js';

describeCentralStore('SqliteCentralStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cgn-central-store-'));
  const path = join(dir, 'central.sqlite');
  let store = new SqliteCentralStore({ path });
  return {
    get store() {
      return store;
    },
    reopen: async () => {
      store.close();
      store = new SqliteCentralStore({ path });
      return store;
    },
    cleanup: async () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteCentralStore specifics', () => {
  it('uses WAL, refuses audit edits, and refuses a newer schema', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-central-store-'));
    const path = join(dir, 'c.sqlite');
    const s = new SqliteCentralStore({ path });
    s.appendAudit({ at: 1, type: 't', actor: 'a', accountId: null, subject: null, ip: null, outcome: 'ok', details: {} });
    s.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(() => db.prepare('UPDATE audit SET actor = ?').run('x')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    db.prepare('INSERT INTO central_migrations (version, applied_at) VALUES (99, 0)').run();
    db.close();
    expect(() => new SqliteCentralStore({ path })).toThrow(/newer/);
    rmSync(dir, { recursive: true, force: true });
  });
});
