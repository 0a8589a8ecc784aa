/**
 * `cgn dev`'s progress lines: one per part of the network as it comes up, with how long it took
 * ("  ✓ central     0.6 s  https://127.0.0.1:7700"), or a ✗ for the part that failed. Quiet mode
 * prints nothing (only the ready JSON line).
 */

export interface Progress {
  /** Runs one part's start-up and reports it; `detail` describes the result (URL, count, …). */
  step<T>(name: string, run: () => Promise<T>, detail?: (result: T) => string): Promise<T>;
  /** Reports a part that came up inside another step (the chain before its contracts). */
  report(name: string, startedAt: number, detail: string): void;
}

const NAME_WIDTH = 10;

/** Colouring of the marks: identity when the output is not a terminal (see coloursFor). */
export interface MarkColours {
  green(s: string): string;
  red(s: string): string;
}

const PLAIN: MarkColours = { green: (s) => s, red: (s) => s };

export function progressLine(ok: boolean, name: string, ms: number, detail: string, c: MarkColours = PLAIN): string {
  const secs = `${(ms / 1000).toFixed(1)} s`.padStart(6);
  return `  ${ok ? c.green('✓') : c.red('✗')} ${name.padEnd(NAME_WIDTH)} ${secs}${detail === '' ? '' : `  ${detail}`}\n`;
}

export function makeProgress(write: ((s: string) => void) | null, now: () => number = Date.now, c: MarkColours = PLAIN): Progress {
  return {
    async step(name, run, detail) {
      const t0 = now();
      try {
        const r = await run();
        write?.(progressLine(true, name, now() - t0, detail?.(r) ?? '', c));
        return r;
      } catch (err) {
        write?.(progressLine(false, name, now() - t0, '', c));
        throw err;
      }
    },
    report(name, startedAt, detail) {
      write?.(progressLine(true, name, now() - startedAt, detail, c));
    },
  };
}
