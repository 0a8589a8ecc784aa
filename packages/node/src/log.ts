import { pino } from 'pino';

export type Logger = pino.Logger;

/** Logs as JSON lines to stderr; `CGN_LOG_LEVEL` sets the level (default info). */
export function createLogger(name: string, level = process.env['CGN_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
