import { describe, expect, it } from 'vitest';
import { Outbox } from './outbox.js';
import { decodeMessage, frame } from './codec.js';
import type { OutgoingFrame } from './frames.js';
import type { Body, ChunkedBody } from './body.js';

/** A borrowed body that counts its holds. */
function borrowed(n: number, fill: number): ChunkedBody & { holds: () => number } {
  let holds = 0;
  const chunk = Buffer.alloc(n, fill);
  return {
    chunks: [chunk.subarray(0, n >> 1), chunk.subarray(n >> 1)],
    length: n,
    hold: () => {
      holds++;
      let held = true;
      return () => {
        if (held) holds--;
        held = false;
      };
    },
    holds: () => holds,
  };
}

const work = (id: string, body: Body): OutgoingFrame =>
  frame({ t: 'work', id, dservice: 'echo', method: 'POST', path: '/', headers: [], body, timeoutMs: 1000 });

/** Runs the setImmediate flush. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Outbox with borrowed bodies', () => {
  it('holds a body from push until the sink says its message was written', async () => {
    const sent: { parts: Buffer[]; written?: () => void }[] = [];
    const out = new Outbox((parts, written) => sent.push({ parts, ...(written ? { written } : {}) }), 1 << 20);
    const body = borrowed(100_000, 7);
    out.push(work('w1', body));
    expect(body.holds()).toBe(1);
    await turn();
    expect(sent).toHaveLength(1);
    expect(body.holds()).toBe(1); // sent, not yet written
    const [f] = decodeMessage(Buffer.concat(sent[0]!.parts));
    expect(f).toMatchObject({ t: 'work', id: 'w1' });
    sent[0]!.written!();
    sent[0]!.written!();
    expect(body.holds()).toBe(0);
  });

  it('releases after the last message when a batch is split, and only then', async () => {
    const sent: { written?: () => void }[] = [];
    const out = new Outbox((_parts, written) => sent.push(written ? { written } : {}), 150_000);
    const a = borrowed(100_000, 1);
    const b = borrowed(100_000, 2);
    out.push(work('a', a));
    out.push(work('b', b));
    await turn();
    expect(sent).toHaveLength(2);
    expect(sent[0]!.written).toBeUndefined();
    expect(a.holds() + b.holds()).toBe(2);
    sent[1]!.written!();
    expect(a.holds() + b.holds()).toBe(0);
  });

  it('lets go of the bodies of frames cleared before they were sent', async () => {
    const sent: unknown[] = [];
    const out = new Outbox((parts) => sent.push(parts), 1 << 20);
    const body = borrowed(70_000, 3);
    out.push(work('w', body));
    out.clear();
    expect(body.holds()).toBe(0);
    await turn();
    expect(sent).toHaveLength(0);
  });

  it('gives no written callback when nothing is borrowed', async () => {
    const calls: (undefined | (() => void))[] = [];
    const out = new Outbox((_parts, written) => calls.push(written), 1 << 20);
    out.push(work('w', Buffer.alloc(10)));
    out.push(frame({ t: 'ack', id: 'x' }));
    await turn();
    expect(calls).toEqual([undefined]);
  });
});

describe('Outbox at light load', () => {
  it('with sendAtOnceWhenQuietMs, sends a frame at once when nothing went out for that long; frames close together batch', async () => {
    let clock = 0;
    const messages: number[] = [];
    const out = new Outbox((parts) => messages.push(decodeMessage(Buffer.concat(parts)).length), 1 << 20, { sendAtOnceWhenQuietMs: 1, now: () => clock });
    out.push(frame({ t: 'ack', id: 'a' }));
    expect(messages).toEqual([1]); // sent inside push
    out.push(frame({ t: 'ack', id: 'b' }));
    out.push(frame({ t: 'ack', id: 'c' }));
    expect(messages).toEqual([1]);
    await turn();
    expect(messages).toEqual([1, 2]);
    clock += 0.5;
    out.push(frame({ t: 'ack', id: 'd' }));
    expect(messages).toEqual([1, 2]);
    await turn();
    clock += 2;
    out.push(frame({ t: 'ack', id: 'e' }));
    expect(messages).toEqual([1, 2, 1, 1]);
  });

  it('without the option, always waits for the turn', async () => {
    const messages: number[] = [];
    const out = new Outbox((parts) => messages.push(decodeMessage(Buffer.concat(parts)).length), 1 << 20);
    out.push(frame({ t: 'ack', id: 'a' }));
    expect(messages).toEqual([]);
    await turn();
    expect(messages).toEqual([1]);
  });
});
