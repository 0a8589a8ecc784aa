/**
 * When the miner may work, as its owner set it in the control app: a CPU ceiling, "only while
 * idle", time windows. Kept in `<key file>.control.json`; validated whole, with an error naming
 * the field and saying what it must be.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseWindow, type TimeWindow } from './schedule.js';

export interface ControlSettings {
  /** Percent of this machine's CPUs the miner may use, 1..100. Default 100. */
  cpuCeilingPct: number;
  /** Work only while the owner leaves the machine idle. Default false. */
  onlyWhenIdle: boolean;
  /** With `onlyWhenIdle`: the owner is busy above this share of the CPU, percent 1..100. Default 25. */
  idleThresholdPct: number;
  /** "HH:MM-HH:MM" local-time windows the miner may work in; empty: any time. Default []. */
  windows: string[];
}

export const DEFAULT_SETTINGS: ControlSettings = { cpuCeilingPct: 100, onlyWhenIdle: false, idleThresholdPct: 25, windows: [] };

export const MAX_WINDOWS = 16;

export class SettingsError extends Error {
  readonly code = 'bad_settings';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'SettingsError';
  }
}

function pct(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 100) throw new SettingsError(field, `must be a whole percentage from 1 to 100, not ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

/**
 * Validates settings: a full object, or a partial one merged over `base`. Unknown fields are
 * refused (a typo should not be silently ignored).
 */
export function parseSettings(input: unknown, base: ControlSettings = DEFAULT_SETTINGS): ControlSettings {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new SettingsError('(settings)', 'must be a JSON object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_SETTINGS)) throw new SettingsError(k.slice(0, 40), `is not a setting (settings are ${Object.keys(DEFAULT_SETTINGS).join(', ')})`);
  }
  const out: ControlSettings = { ...base, windows: [...base.windows] };
  if (o['cpuCeilingPct'] !== undefined) out.cpuCeilingPct = pct(o['cpuCeilingPct'], 'cpuCeilingPct');
  if (o['idleThresholdPct'] !== undefined) out.idleThresholdPct = pct(o['idleThresholdPct'], 'idleThresholdPct');
  if (o['onlyWhenIdle'] !== undefined) {
    if (typeof o['onlyWhenIdle'] !== 'boolean') throw new SettingsError('onlyWhenIdle', 'must be true or false');
    out.onlyWhenIdle = o['onlyWhenIdle'];
  }
  if (o['windows'] !== undefined) {
    const w = o['windows'];
    if (!Array.isArray(w)) throw new SettingsError('windows', 'must be a list of "HH:MM-HH:MM" strings');
    if (w.length > MAX_WINDOWS) throw new SettingsError('windows', `at most ${MAX_WINDOWS} windows`);
    out.windows = w.map((text, i) => {
      const p = parseWindow(text as string);
      if ('error' in p) throw new SettingsError(`windows[${i}]`, p.error);
      return p.text;
    });
  }
  return out;
}

/** The parsed windows of valid settings. */
export function windowsOf(s: ControlSettings): TimeWindow[] {
  return s.windows.map((t) => parseWindow(t) as TimeWindow);
}

/** The settings file of a miner: `<key file>.control.json`. */
export function settingsFileFor(keyFile: string): string {
  return `${keyFile}.control.json`;
}

/** Reads the settings file; defaults when it is missing. A broken file is an error naming it. */
export function loadSettings(file: string): ControlSettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...DEFAULT_SETTINGS };
    throw new SettingsError(file, `cannot read it: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SettingsError(file, `is not JSON (${(err as Error).message}); fix or delete it`);
  }
  try {
    return parseSettings(json);
  } catch (err) {
    throw new SettingsError(file, `${(err as Error).message}; fix or delete it`);
  }
}

/** Writes the settings (0600), atomically: a crash leaves the old or the new file, never half. */
export function saveSettings(file: string, s: ControlSettings): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}
