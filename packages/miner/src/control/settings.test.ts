import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, loadSettings, parseSettings, saveSettings, SettingsError } from './settings.js';

function refusal(input: unknown): SettingsError {
  try {
    parseSettings(input);
  } catch (err) {
    if (err instanceof SettingsError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('control settings', () => {
  it('a partial update merges over the current settings', () => {
    const s = parseSettings({ cpuCeilingPct: 50, windows: ['22:00-07:00', ' 12:00 - 13:00 '] });
    expect(s).toEqual({ ...DEFAULT_SETTINGS, cpuCeilingPct: 50, windows: ['22:00-07:00', '12:00 - 13:00'] });
    expect(parseSettings({ onlyWhenIdle: true }, s)).toEqual({ ...s, onlyWhenIdle: true });
  });

  it('refuses wrong settings naming the field and what it must be', () => {
    const cases: [unknown, string, RegExp][] = [
      [null, '(settings)', /JSON object/],
      [[], '(settings)', /JSON object/],
      [{ cpuCeilingPct: 0 }, 'cpuCeilingPct', /1 to 100/],
      [{ cpuCeilingPct: 101 }, 'cpuCeilingPct', /1 to 100/],
      [{ cpuCeilingPct: 50.5 }, 'cpuCeilingPct', /whole percentage/],
      [{ cpuCeilingPct: '50' }, 'cpuCeilingPct', /whole percentage/],
      [{ idleThresholdPct: -1 }, 'idleThresholdPct', /1 to 100/],
      [{ onlyWhenIdle: 'yes' }, 'onlyWhenIdle', /true or false/],
      [{ windows: '22:00-07:00' }, 'windows', /list/],
      [{ windows: ['22:00-07:00', 'tonight'] }, 'windows[1]', /HH:MM-HH:MM/],
      [{ windows: Array(17).fill('01:00-02:00') }, 'windows', /at most 16/],
      [{ cpuCeiling: 50 }, 'cpuCeiling', /not a setting/],
    ];
    for (const [input, field, why] of cases) {
      const e = refusal(input);
      expect(e.field, JSON.stringify(input)).toBe(field);
      expect(e.message).toMatch(why);
      expect(e.code).toBe('bad_settings');
    }
  });

  it('persist in a 0600 file; a missing file gives the defaults, a broken one an error naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-settings-'));
    try {
      const file = join(dir, 'k.pem.control.json');
      expect(loadSettings(file)).toEqual(DEFAULT_SETTINGS);
      const s = parseSettings({ cpuCeilingPct: 40, onlyWhenIdle: true, windows: ['22:00-07:00'] });
      saveSettings(file, s);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(loadSettings(file)).toEqual(s);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(s);
      writeFileSync(file, '{ not json');
      expect(() => loadSettings(file)).toThrow(/k\.pem\.control\.json: is not JSON.*fix or delete it/);
      writeFileSync(file, JSON.stringify({ cpuCeilingPct: 500 }));
      expect(() => loadSettings(file)).toThrow(/cpuCeilingPct: must be a whole percentage/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
