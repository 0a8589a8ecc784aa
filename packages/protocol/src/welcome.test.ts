import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeFrame, frame } from './codec.js';
import { RESULT_FRAME_ROOM_BYTES, resultFits, type Frame, type WelcomeFrame } from './frames.js';
import { LIMITS, validateFrame } from './validate.js';

describe('welcome: the frame limit the node announces', () => {
  it('travels through the codec, and a welcome without it (an older node) is still valid', () => {
    const w = frame({ t: 'welcome', minerId: 'm'.repeat(64), heartbeatMs: 5000, maxFrameBytes: 11 * 1024 * 1024 });
    expect(decodeMessage(encodeFrame(w as Frame))).toEqual([w]);
    const old = frame({ t: 'welcome', minerId: 'm'.repeat(64), heartbeatMs: 5000 });
    const [back] = decodeMessage(encodeFrame(old as Frame)) as WelcomeFrame[];
    expect(back!.maxFrameBytes).toBeUndefined();
  });

  it('is a whole number of bytes no smaller than a result needs beyond its body', () => {
    const w = (maxFrameBytes: unknown) => ({ t: 'welcome', v: 1, minerId: 'm', heartbeatMs: 5000, maxFrameBytes });
    expect(() => validateFrame(w(LIMITS.minAnnouncedFrameBytes))).not.toThrow();
    for (const bad of [LIMITS.minAnnouncedFrameBytes - 1, 0, -1, 1.5, '1048576', null, 2 ** 33]) expect(() => validateFrame(w(bad)), String(bad)).toThrow(/maxFrameBytes/);
    expect(LIMITS.minAnnouncedFrameBytes).toBeGreaterThan(RESULT_FRAME_ROOM_BYTES);
  });

  it('a result fits when its body leaves the room for the rest of the frame', () => {
    expect(resultFits(1000 - RESULT_FRAME_ROOM_BYTES, 1000)).toBe(true);
    expect(resultFits(1001 - RESULT_FRAME_ROOM_BYTES, 1000)).toBe(false);
  });

  it('asks a miner that said it beats for beats (beatMs); hello and welcome without them (older sides) stay valid', () => {
    const hello = (beats: unknown) => ({ t: 'hello', v: 1, publicKey: new Uint8Array(32), agent: 'a', beats });
    expect(() => validateFrame(hello(true))).not.toThrow();
    expect(() => validateFrame(hello(undefined))).not.toThrow();
    for (const bad of [1, 'yes', null]) expect(() => validateFrame(hello(bad)), String(bad)).toThrow(/beats/);
    const w = (beatMs: unknown) => ({ t: 'welcome', v: 1, minerId: 'm', heartbeatMs: 40_000, beatMs });
    expect(() => validateFrame(w(5000))).not.toThrow();
    expect(() => validateFrame(w(undefined))).not.toThrow();
    for (const bad of [0, -1, 1.5, '5000', null]) expect(() => validateFrame(w(bad)), String(bad)).toThrow(/beatMs/);
    const beat = frame({ t: 'beat' });
    expect(decodeMessage(encodeFrame(beat as Frame))).toEqual([beat]);
  });
});
