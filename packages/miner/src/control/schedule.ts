/**
 * Time windows in which the miner may work, such as "22:00-07:00" (local time). A window whose
 * end is before its start runs over midnight; "00:00-24:00" is the whole day.
 */

export interface TimeWindow {
  /** Minutes after local midnight, inclusive. */
  start: number;
  /** Minutes after local midnight, exclusive; may be below `start` (over midnight). */
  end: number;
  text: string;
}

const WINDOW_RE = /^([01]?\d|2[0-4]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)$/;

/** Parses "HH:MM-HH:MM"; returns the reason when it is not one. */
export function parseWindow(text: string): TimeWindow | { error: string } {
  if (typeof text !== 'string') return { error: 'must be a string like "22:00-07:00"' };
  const m = WINDOW_RE.exec(text.trim());
  if (m === null) return { error: `"${text.slice(0, 40)}" is not a time window like "22:00-07:00" (HH:MM-HH:MM, 24-hour local time)` };
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (start > 1440 || end > 1440) return { error: `"${text}": a time is past 24:00` };
  if (start === 1440) return { error: `"${text}": a window cannot start at 24:00 (use 00:00)` };
  if (start === end) return { error: `"${text}" is empty (start equals end); use "00:00-24:00" for all day` };
  return { start, end, text: text.trim() };
}

/** Whether local time `date` falls in `w`. */
export function inWindow(w: TimeWindow, date: Date): boolean {
  const minute = date.getHours() * 60 + date.getMinutes();
  return w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end;
}

/** Whether `date` falls in any of the windows; no windows means any time. */
export function inAnyWindow(windows: readonly TimeWindow[], date: Date): boolean {
  return windows.length === 0 || windows.some((w) => inWindow(w, date));
}
