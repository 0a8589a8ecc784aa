/**
 * What the command-line tools print for people: colour only when the stream is a terminal (and
 * `NO_COLOR` is unset, `TERM` is not `dumb`; `FORCE_COLOR` forces it), and progress on long work —
 * a bar redrawn in place on a terminal, a plain line every tenth of the way otherwise (logs and
 * pipes get a readable record, not a wall of carriage returns).
 */
import picocolors from 'picocolors';

type Colours = ReturnType<typeof picocolors.createColors>;

export interface TerminalStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

/** Whether to colour what goes to `stream`. */
export function colourWanted(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return stream.isTTY === true && env['TERM'] !== 'dumb';
}

/** picocolors' functions, switched on or off for `stream`. */
export function coloursFor(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): Colours {
  return picocolors.createColors(colourWanted(stream, env));
}

/** `[#####.....]  50%  5,000/10,000 records` */
export function progressBar(done: number, total: number, unit: string, width = 24): string {
  const frac = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const filled = Math.round(frac * width);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}  ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${unit}`;
}

export interface ProgressReporter {
  /** `done` of `total` now (call as often as you like; output is throttled). */
  update(done: number, total: number): void;
  /** The last update, then a newline on a terminal. */
  finish(note?: string): void;
}

/**
 * Progress of one long task on `stream` (stderr, so `--json` output on stdout stays clean).
 * On a terminal the bar is redrawn at most every `minIntervalMs`; elsewhere one line is written
 * per tenth of the way.
 */
export function progressReporter(
  stream: TerminalStream,
  label: string,
  unit: string,
  opts: { now?: () => number; minIntervalMs?: number } = {},
): ProgressReporter {
  const now = opts.now ?? Date.now;
  const minInterval = opts.minIntervalMs ?? 100;
  const tty = stream.isTTY === true;
  let lastDraw = -Infinity;
  let lastTenth = -1;
  let last = { done: 0, total: 0 };
  const line = (): string => `${label} ${progressBar(last.done, last.total, unit)}`;
  return {
    update(done, total) {
      last = { done, total };
      if (tty) {
        const t = now();
        if (t - lastDraw < minInterval && done < total) return;
        lastDraw = t;
        stream.write(`\r${line()}`);
      } else {
        const tenth = total <= 0 ? 10 : Math.floor((Math.min(done, total) / total) * 10);
        if (tenth === lastTenth) return;
        lastTenth = tenth;
        stream.write(`${line()}\n`);
      }
    },
    finish(note) {
      const suffix = note === undefined ? '' : `  ${note}`;
      if (tty) stream.write(`\r${line()}${suffix}\n`);
      else if (lastTenth !== 10 || note !== undefined) stream.write(`${line()}${suffix}\n`);
    },
  };
}
