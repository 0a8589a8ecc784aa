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

export function progressLine(ok: boolean, name: string, ms: number, detail: string): string {
  const secs = `${(ms / 1000).toFixed(1)} s`.padStart(6);
  return `  ${ok ? '✓' : '✗'} ${name.padEnd(NAME_WIDTH)} ${secs}${detail === '' ? '' : `  ${detail}`}\n`;
}

export function makeProgress(write: ((s: string) => void) | null, now: () => number = Date.now): Progress {
  return {
    async step(name, run, detail) {
      const t0 = now();
      try {
        const r = await run();
        write?.(progressLine(true, name, now() - t0, detail?.(r) ?? ''));
        return r;
      } catch (err) {
        write?.(progressLine(false, name, now() - t0, ''));
        throw err;
      }
    },
    report(name, startedAt, detail) {
      write?.(progressLine(true, name, now() - startedAt, detail));
    },
  };
}
