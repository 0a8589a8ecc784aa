import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeMessage, frame, type Frame } from '@cgn/protocol';
import { DEFAULT_KEY_FILE, MinerOptionError, resolveMinerOptions, type MinerOptions } from './options.js';
import { Outbox } from '@cgn/protocol';
import { needsMasking } from './tunnel.js';
import { ECHO, tempDir, writeDService } from '../test/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const base: MinerOptions = { nodeUrl: 'ws://127.0.0.1:8081/', dservices: [ECHO] };

function optionError(o: unknown): MinerOptionError {
  try {
    resolveMinerOptions(o as MinerOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(MinerOptionError);
    return err as MinerOptionError;
  }
  throw new Error('expected an option error');
}

describe('resolveMinerOptions', () => {
  it('fills the defaults', () => {
    const o = resolveMinerOptions(base);
    expect(o).toMatchObject({
      nodeUrl: base.nodeUrl, keyFile: DEFAULT_KEY_FILE, slots: 64, tier: 'open', sandbox: 'auto', limits: 'auto', runDir: null,
      reconnectBaseMs: 200, reconnectCapMs: 10_000, expectedDigests: {},
    });
    expect(o.location).toBeUndefined();
    expect(o.packages).toHaveLength(1);
    expect(o.packages[0]!.descriptor).toMatchObject({ name: 'echo', concurrency: 64, maxBodyBytes: 1048576 });
  });

  it('slots default to the sum of the concurrency, or the CPU count without DServices', () => {
    const other = writeDService(tmp.path, 'other', `return { status: 200 };`, { concurrency: 3 });
    expect(resolveMinerOptions({ ...base, dservices: [ECHO, other] }).slots).toBe(67);
    expect(resolveMinerOptions({ ...base, dservices: [] }).slots).toBe(availableParallelism());
    expect(resolveMinerOptions({ ...base, slots: 5 }).slots).toBe(5);
  });

  it('names the wrong option', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ nodeUrl: undefined }, 'nodeUrl', /required/],
      [{ nodeUrl: 'http://x/' }, 'nodeUrl', /ws:\/\//],
      [{ nodeUrl: 'not a url' }, 'nodeUrl', /not a URL/],
      [{ dservices: 'x' }, 'dservices', /list/],
      [{ dservices: [join(tmp.path, 'missing')] }, 'dservices[0]', /not a directory/],
      [{ dservices: [tmp.path] }, 'dservices[0]', /dservice\.json is missing/],
      [{ dservices: [ECHO, ECHO] }, 'dservices[1]', /listed twice/],
      [{ slots: 0 }, 'slots', /integer from 1/],
      [{ slots: 1.5 }, 'slots', /integer/],
      [{ tier: 'gold' }, 'tier', /open, attested, dedicated/],
      [{ tier: 'attested' }, 'tpm', /the attested tier needs a TPM/],
      [{ tier: 'attested', tpm: 'floppy:/dev/fd0' }, 'tpm', /tpm2-tools TCTI/],
      [{ sandbox: 'docker' }, 'sandbox', /auto, bwrap, none/],
      [{ limits: 'rlimit' }, 'limits', /auto, cgroup, none/],
      [{ location: 7 }, 'location', /string/],
      [{ region: 'EU West' }, 'region', /lower-case letters, digits and dashes/],
      [{ priceFloor: -1 }, 'priceFloor', /whole number/],
      [{ priceFloor: Number.NaN }, 'priceFloor', /whole number/],
      [{ payoutAddress: '0x1234' }, 'payoutAddress', /EVM address/],
      [{ logger: {} }, 'logger', /pino/],
      [{ keyFile: '' }, 'keyFile', /path/],
      [{ runDir: '/' + 'x'.repeat(120) }, 'runDir', /too long/],
      [{ healthIntervalMs: -1 }, 'healthIntervalMs', /positive integer/],
      [{ reconnectBaseMs: 500, reconnectCapMs: 100 }, 'reconnectCapMs', /reconnectBaseMs/],
      [{ payoutAddress: '0xabc' }, 'payoutAddress', /40 hex/],
      [{ payoutAddress: `0x${'a'.repeat(40)}`, stakeProof: '0x12' }, 'stakeProof', /65-byte signature/],
      [{ stakeProof: `0x${'a'.repeat(130)}` }, 'stakeProof', /goes with payoutAddress/],
    ];
    for (const [over, option, msg] of cases) {
      const err = optionError({ ...base, ...over });
      expect(err.option).toBe(option);
      expect(err.message).toMatch(msg);
      expect(err.message).toContain(option);
    }
  });

  it('advertises the payout address and the stake proof as bytes', () => {
    const o = resolveMinerOptions({ ...base, payoutAddress: `0x${'b'.repeat(40)}`, stakeProof: `0x${'0f'.repeat(65)}` });
    expect(o.payoutAddress).toBe(`0x${'b'.repeat(40)}`);
    expect(o.stakeProof).toEqual(new Uint8Array(65).fill(0x0f));
    expect(resolveMinerOptions(base)).toMatchObject({ payoutAddress: undefined, stakeProof: undefined });
  });

  it('reports a broken dservice.json with its field', () => {
    const bad = writeDService(tmp.path, 'bad', `return { status: 200 };`, { concurrency: -1 });
    const err = optionError({ ...base, dservices: [bad] });
    expect(err.option).toBe('dservices[0]');
    expect(err.message).toMatch(/concurrency/);
  });
});

describe('Outbox', () => {
  const ping = (ts: number): Frame => frame({ t: 'ping', ts }) as Frame;

  it('sends the frames of one event-loop turn as one message', async () => {
    const sent: Buffer[] = [];
    const out = new Outbox((parts) => sent.push(Buffer.concat(parts)), 1024 * 1024);
    for (let i = 0; i < 100; i++) out.push(ping(i));
    expect(sent).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1);
    expect(decodeMessage(sent[0]!).map((f) => (f.t === 'ping' ? f.ts : -1))).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('splits a turn whose frames would make a too-large message, keeping the order', () => {
    const sent: Buffer[] = [];
    const out = new Outbox((parts) => sent.push(Buffer.concat(parts)), 10_000);
    const big = (id: string): Frame =>
      frame({ t: 'result', id, status: 200, headers: [], body: new Uint8Array(6000), metering: { execUs: 1, cpuUs: 0 }, resultHash: new Uint8Array(32) }) as Frame;
    out.push(big('a'));
    out.push(ping(1));
    out.push(big('b'));
    out.push(big('c'));
    out.flush();
    const frames = sent.map((m) => decodeMessage(m));
    expect(frames.map((fs) => fs.map((f) => (f.t === 'result' ? f.id : f.t)))).toEqual([['a', 'ping'], ['b'], ['c']]);
    for (const m of sent.slice(1)) expect(m.length).toBeLessThan(10_000);
  });
});

describe('needsMasking', () => {
  it('masks client frames only where a proxy could read them: plain ws to a non-loopback host', () => {
    expect(needsMasking('ws://node.example:8081/')).toBe(true);
    expect(needsMasking('ws://10.0.0.5:8081/')).toBe(true);
    expect(needsMasking('wss://node.example/')).toBe(false);
    expect(needsMasking('ws://127.0.0.1:8081/')).toBe(false);
    expect(needsMasking('ws://localhost:8081/')).toBe(false);
    expect(needsMasking('ws://[::1]:8081/')).toBe(false);
  });
});
