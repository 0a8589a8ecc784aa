import { describe, expect, it } from 'vitest';
import { IdempotencyGate, idempotencyKeyProblem, requestFingerprint } from './idempotency.js';
import { SqliteLedgerStore } from './sqlite-store.js';

const req = { method: 'POST', path: '/v1/echo', dservice: 'echo', tier: 'open', endUser: null, body: Buffer.from('hi') };
const response = { status: 200, headers: [['content-type', 'text/plain']] as [string, string][], body: Buffer.from('hi back') };

describe('IdempotencyGate', () => {
  it('fingerprints requests and checks keys', () => {
    expect(requestFingerprint(req)).toBe(requestFingerprint({ ...req, body: Buffer.from('hi') }));
    expect(requestFingerprint(req)).not.toBe(requestFingerprint({ ...req, body: Buffer.from('ho') }));
    expect(requestFingerprint(req)).not.toBe(requestFingerprint({ ...req, path: '/v1/echo2' }));
    expect(idempotencyKeyProblem('abc-123')).toBeNull();
    expect(idempotencyKeyProblem('')).toMatch(/1 to 255/);
    expect(idempotencyKeyProblem('a b')).toMatch(/printable/);
  });

  it('a concurrent duplicate in this process waits for the first and gets its response; a different request is refused', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    const gate = new IdempotencyGate(store);
    const fp = requestFingerprint(req);
    const first = await gate.begin({ account: 'acme', key: 'k', fingerprint: fp, workId: 'w_1' });
    expect(first.kind).toBe('proceed');
    const second = gate.begin({ account: 'acme', key: 'k', fingerprint: fp, workId: 'w_2' });
    const other = await gate.begin({ account: 'acme', key: 'k', fingerprint: 'different', workId: 'w_3' });
    expect(other).toMatchObject({ kind: 'conflict', reason: 'fingerprint_mismatch', httpStatus: 422 });
    if (first.kind !== 'proceed') throw new Error('unreachable');
    await gate.complete(first.ticket, response);
    expect(await second).toEqual({ kind: 'replay', workId: 'w_1', response });
    store.close();
  });

  it('after an abandon the waiting duplicate runs; another process\'s pending key answers in_progress', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    const gate = new IdempotencyGate(store);
    const first = await gate.begin({ account: 'acme', key: 'k', fingerprint: 'f', workId: 'w_1' });
    const second = gate.begin({ account: 'acme', key: 'k', fingerprint: 'f', workId: 'w_2' });
    if (first.kind !== 'proceed') throw new Error('unreachable');
    await gate.abandon(first.ticket);
    expect(await second).toMatchObject({ kind: 'proceed', ticket: { workId: 'w_2' } });
    const otherProcess = new IdempotencyGate(store);
    expect(await otherProcess.begin({ account: 'acme', key: 'k', fingerprint: 'f', workId: 'w_3' })).toMatchObject({ kind: 'conflict', reason: 'in_progress', httpStatus: 409 });
    store.close();
  });

  it('a duplicate stops waiting after waitMs and answers in_progress', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    const gate = new IdempotencyGate(store, { waitMs: 20 });
    await gate.begin({ account: 'a', key: 'k', fingerprint: 'f', workId: 'w_1' });
    expect(await gate.begin({ account: 'a', key: 'k', fingerprint: 'f', workId: 'w_2' })).toMatchObject({ kind: 'conflict', reason: 'in_progress' });
    store.close();
  });
});
