/** Instance settings, read once from the environment at start-up. */

export interface MediaGenConfig {
  /**
   * Largest number of pixels of the input, of any intermediate and of the output image
   * (`MEDIAGEN_MAX_PIXELS`, default 100 megapixels).
   */
  maxPixels: number;
  /** libvips time limit per processing step (`MEDIAGEN_TIMEOUT_SECONDS`, default 25, below the 30 s request deadline). */
  timeoutSeconds: number;
}

export const DEFAULT_CONFIG: MediaGenConfig = {
  maxPixels: 100_000_000,
  timeoutSeconds: 25,
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function positiveInt(env: Record<string, string | undefined>, name: string, dflt: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^[1-9][0-9]*$/.test(raw) || Number(raw) > max) {
    throw new ConfigError(`${name} must be an integer from 1 to ${max} (got ${JSON.stringify(raw)})`);
  }
  return Number(raw);
}

export function loadConfig(env: Record<string, string | undefined> = process.env): MediaGenConfig {
  return {
    maxPixels: positiveInt(env, 'MEDIAGEN_MAX_PIXELS', DEFAULT_CONFIG.maxPixels, 10_000_000_000),
    timeoutSeconds: positiveInt(env, 'MEDIAGEN_TIMEOUT_SECONDS', DEFAULT_CONFIG.timeoutSeconds, 3600),
  };
}
