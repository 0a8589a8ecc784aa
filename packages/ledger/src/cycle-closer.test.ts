import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { closeRequested, closerGone, closerLive, mayHold, processAlive, type CycleCloser } from './cycle-closer.js';

const lease = (over: Partial<CycleCloser> = {}): CycleCloser => ({ holder: 'cgn settle', pid: 4242, host: 'h', everyMs: 120_000, heartbeatAt: 1000, ttlMs: 30_000, closeRequestedAt: null, ...over });

describe('the cycle-closer lease', () => {
  it('is live until ttl after its last renewal; its holder may renew it, others only take it once it lapsed', () => {
    expect(closerLive(lease(), 30_999)).toBe(true);
    expect(closerLive(lease(), 31_000)).toBe(false);
    const me = { holder: 'cgn settle', pid: 4242, host: 'h', everyMs: null, ttlMs: 30_000 };
    expect(mayHold(lease(), me, 2000)).toBe(true);
    expect(mayHold(lease(), { ...me, pid: 1 }, 2000)).toBe(false);
    expect(mayHold(lease(), { ...me, pid: 1 }, 40_000)).toBe(true);
    expect(mayHold(null, me, 0)).toBe(true);
  });

  it('a close request counts for the cycle open when it was made', () => {
    expect(closeRequested(lease({ closeRequestedAt: 5000 }), 4000)).toBe(true);
    expect(closeRequested(lease({ closeRequestedAt: 5000 }), 6000)).toBe(false); // that cycle closed; a new one opened
    expect(closeRequested(lease(), 0)).toBe(false);
  });

  it('a holder of this host whose process is gone holds nothing; another host is never judged', () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(closerGone(lease({ host: hostname(), pid: 2 ** 22 + 7 }), hostname(), processAlive)).toBe(true);
    expect(closerGone(lease({ host: hostname(), pid: process.ppid }), hostname(), processAlive)).toBe(false);
    expect(closerGone(lease({ host: hostname(), pid: process.pid }), hostname(), () => false)).toBe(false); // ourselves
    expect(closerGone(lease({ host: 'elsewhere', pid: 2 ** 22 + 7 }), hostname(), processAlive)).toBe(false);
  });
});
