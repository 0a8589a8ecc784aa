import { describe, expect, it } from 'vitest';
import { decide } from './policy.js';
import { DEFAULT_SETTINGS } from './settings.js';

const base = { pausedByOwner: false, settings: DEFAULT_SETTINGS, now: new Date(2026, 11, 7, 12, 0), ownerBusy: false, ownerShare: 0.05 };

describe('when the miner may work', () => {
  it('works by default', () => {
    expect(decide(base)).toEqual({ work: true, hold: null, reason: 'working' });
  });

  it("the owner's pause wins over everything", () => {
    expect(decide({ ...base, pausedByOwner: true, settings: { ...DEFAULT_SETTINGS, windows: ['00:00-24:00'] } })).toMatchObject({ work: false, hold: 'owner' });
  });

  it('outside its windows it holds, inside it works', () => {
    const settings = { ...DEFAULT_SETTINGS, windows: ['22:00-07:00'] };
    expect(decide({ ...base, settings })).toMatchObject({ work: false, hold: 'schedule', reason: 'outside its time windows (22:00-07:00)' });
    expect(decide({ ...base, settings, now: new Date(2026, 11, 7, 23, 30) })).toMatchObject({ work: true });
  });

  it('only while idle: holds while the owner is busy, saying how busy', () => {
    const settings = { ...DEFAULT_SETTINGS, onlyWhenIdle: true };
    expect(decide({ ...base, settings, ownerBusy: true, ownerShare: 0.634 })).toMatchObject({ work: false, hold: 'busy', reason: expect.stringMatching(/using the machine \(63% CPU\)/) });
    expect(decide({ ...base, settings, ownerBusy: false })).toMatchObject({ work: true });
    // Without the setting a busy owner does not matter.
    expect(decide({ ...base, ownerBusy: true })).toMatchObject({ work: true });
  });
});
