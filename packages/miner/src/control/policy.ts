/**
 * Whether the miner should take work now: the owner's pause wins, then the time windows, then
 * "only while idle". Pure: the caller supplies the time and the idle detector's verdict.
 */
import { inAnyWindow } from './schedule.js';
import { windowsOf, type ControlSettings } from './settings.js';

export interface PolicyInput {
  /** The owner paused it from the control app. */
  pausedByOwner: boolean;
  settings: ControlSettings;
  now: Date;
  /** The idle detector says the owner is using the machine. */
  ownerBusy: boolean;
  /** The owner's last measured CPU share, 0..1 (for the reason text). */
  ownerShare: number | null;
}

export type Hold = 'owner' | 'schedule' | 'busy';

export interface PolicyDecision {
  work: boolean;
  /** Why not (null when it works). */
  hold: Hold | null;
  reason: string;
}

export function decide(i: PolicyInput): PolicyDecision {
  if (i.pausedByOwner) return { work: false, hold: 'owner', reason: 'paused by the owner' };
  if (!inAnyWindow(windowsOf(i.settings), i.now)) {
    return { work: false, hold: 'schedule', reason: `outside its time windows (${i.settings.windows.join(', ')})` };
  }
  if (i.settings.onlyWhenIdle && i.ownerBusy) {
    const share = i.ownerShare === null ? '' : ` (${Math.round(i.ownerShare * 100)}% CPU)`;
    return { work: false, hold: 'busy', reason: `the owner is using the machine${share}; it works again once idle` };
  }
  return { work: true, hold: null, reason: 'working' };
}
