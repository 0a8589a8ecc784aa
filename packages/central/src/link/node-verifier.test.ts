/** The node-side caching verifier against a fake link: TTLs, bounds, races, expiry. */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { CentralKeyVerifier, linkStatusFromSnapshot, parseApprovedDescriptors, type KeyLink } from '../../../node/src/central/index.js';
import { decodeLinkFrame } from '@cgn/protocol';

const key = (i: number) => `cgn_${String(i).padStart(32, 'A')}`;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

class FakeLink extends EventEmitter {
  answers = new Map<string, unknown>();
  calls = 0;
  down = false;
  gate: Promise<void> | null = null;
  async request(_op: string, args: Record<string, unknown>): Promise<unknown> {
    this.calls++;
    if (this.gate) await this.gate;
    if (this.down) throw new Error('central is not connected');
    return { principal: this.answers.get(args['hash'] as string) ?? null };
  }
}

const principal = (keyId: string, expiresAt: number | null = null) => ({ account: 'acc', keyId, scopes: ['work'], endUser: null, expiresAt });

describe('CentralKeyVerifier (node side)', () => {
  it('caches known keys for ttlMs and unknown ones for negativeTtlMs', async () => {
    const link = new FakeLink();
    const clock = new ManualClock();
    const v = new CentralKeyVerifier(link as unknown as KeyLink, { clock, ttlMs: 1000, negativeTtlMs: 100 });
    link.answers.set(sha(key(1)), principal('k1'));
    expect(await v.verifyAsync(key(1))).toMatchObject({ keyId: 'k1' });
    expect(await v.verifyAsync(key(2))).toBeNull();
    expect(link.calls).toBe(2);
    link.answers.set(sha(key(2)), principal('k2')); // created after the first refusal
    await v.verifyAsync(key(1));
    await v.verifyAsync(key(2));
    expect(link.calls).toBe(2); // both cached
    clock.advance(100);
    expect(await v.verifyAsync(key(2))).toMatchObject({ keyId: 'k2' }); // negative entry expired
    clock.advance(900);
    expect(v.verify(key(1))).toBeNull(); // positive entry expired
  });

  it('never trusts a key past its own expiry', async () => {
    const link = new FakeLink();
    const clock = new ManualClock();
    const v = new CentralKeyVerifier(link as unknown as KeyLink, { clock, ttlMs: 30_000 });
    link.answers.set(sha(key(1)), principal('k1', clock.now() + 500));
    await v.verifyAsync(key(1));
    clock.advance(499);
    expect(v.verify(key(1))).not.toBeNull();
    clock.advance(1);
    expect(v.verify(key(1))).toBeNull();
  });

  it('an answer in flight across a revocation push is not cached', async () => {
    const link = new FakeLink();
    const v = new CentralKeyVerifier(link as unknown as KeyLink, { clock: new ManualClock() });
    link.answers.set(sha(key(1)), principal('k1'));
    let open!: () => void;
    link.gate = new Promise((r) => (open = r));
    const pending = v.verifyAsync(key(1));
    link.emit('push', { t: 'push', v: 1, kind: 'keys_revoked', hashes: [sha(key(1))] });
    open();
    expect(await pending).not.toBeNull(); // central answered before the revocation
    expect(v.verify(key(1))).toBeNull(); // ...but that answer was not kept
  });

  it('bounds the cache; refuses malformed keys without asking', async () => {
    const link = new FakeLink();
    const v = new CentralKeyVerifier(link as unknown as KeyLink, { clock: new ManualClock(), maxEntries: 10, maxNegativeEntries: 5 });
    for (let i = 0; i < 50; i++) {
      link.answers.set(sha(key(i)), principal(`k${i}`));
      await v.verifyAsync(key(i));
      await v.verifyAsync(key(1000 + i));
    }
    expect(v.size).toEqual({ known: 10, unknown: 5 });
    const calls = link.calls;
    for (const bad of ['', 'cgn_short', 'Bearer x', 'cgn_' + '!'.repeat(32), 'x'.repeat(10_000)]) expect(await v.lookup(bad)).toEqual({ principal: null, from: 'invalid' });
    expect(link.calls).toBe(calls);
  });

  it('says "unavailable" when central cannot be asked', async () => {
    const link = new FakeLink();
    link.down = true;
    const v = new CentralKeyVerifier(link as unknown as KeyLink, { clock: new ManualClock() });
    expect(await v.lookup(key(1))).toEqual({ principal: null, from: 'unavailable' });
    link.down = false;
    link.answers.set(sha(key(1)), principal('k1'));
    expect(await v.lookup(key(1))).toMatchObject({ from: 'central' }); // an outage is not cached as "unknown"
  });
});

describe('node-side helpers', () => {
  it('capacity from the broker snapshot', () => {
    const s = linkStatusFromSnapshot(
      {
        miners: [
          { dservices: ['echo', 'mediagen'], slots: 4, inUse: 2, draining: false },
          { dservices: ['mediagen'], slots: 2, inUse: 2, draining: false },
          { dservices: ['mediagen'], slots: 8, inUse: 0, draining: true },
        ],
        queues: [{ dservice: 'mediagen', depth: 3 }, { dservice: 'other', depth: 9 }],
      },
      ['echo', 'mediagen', 'txt'],
    );
    expect(s).toEqual({
      health: 'up', draining: false,
      capacity: { echo: { slots: 4, busy: 2, queued: 0 }, mediagen: { slots: 6, busy: 4, queued: 3 }, txt: { slots: 0, busy: 0, queued: 0 } },
    });
  });

  it('descriptors from central are checked', () => {
    const ok = { name: 'echo', version: '1', digest: 'a'.repeat(64), entry: 'dist/server.js', developer: 'acc', deterministic: true,
      resources: { cpus: 1, memoryMb: 64, diskMb: 0, gpus: 0 }, maxBodyBytes: 10, concurrency: 1, timeouts: { requestMs: 1000 },
      price: { perRequestMicros: 1, perCpuSecondMicros: 0, perMbMicros: 0 } };
    expect(parseApprovedDescriptors({ dservices: [ok] })[0]).toMatchObject({ name: 'echo', digest: 'a'.repeat(64), deterministic: true });
    expect(() => parseApprovedDescriptors({ dservices: [{ ...ok, digest: 'nope' }] })).toThrow(/digest/);
    expect(() => parseApprovedDescriptors({ dservices: [{ ...ok, name: 'Bad Name' }] })).toThrow(/name/);
    expect(() => parseApprovedDescriptors({})).toThrow();
  });

  it('link frames are validated field by field', () => {
    expect(decodeLinkFrame('{"t":"req","v":1,"id":1,"op":"verify_key","args":{"hash":"' + 'a'.repeat(64) + '"}}')).toMatchObject({ op: 'verify_key' });
    for (const bad of [
      'nope', '[]', '{"t":"req","v":2,"id":1,"op":"jwks"}', '{"t":"req","v":1,"id":-1,"op":"jwks"}', '{"t":"req","v":1,"id":1,"op":"drop_tables"}',
      '{"t":"req","v":1,"id":1,"op":"verify_key","args":{"hash":"xyz"}}', '{"t":"res","v":1,"id":1,"ok":false}', '{"t":"push","v":1,"kind":"keys_revoked","hashes":["x"]}',
      '{"t":"hello","v":1,"from":"miner","id":"x"}', '{"t":"what","v":1}',
    ]) expect(() => decodeLinkFrame(bad), bad).toThrow(/bad link frame/);
  });
});
