/**
 * The miner's logging: every module logs through a `Log`, which writes to a pino logger and
 * also hands each entry to a hook while the hook is active (someone listens), so an embedding
 * program can watch the miner without parsing pino's output.
 */

/**
 * What the miner needs of a logger: the shape of a pino logger. Any pino logger fits, whatever
 * its level type (`pino({ level: process.env.X ?? 'info' })` included).
 */
export interface MinerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  fatal(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): MinerLogger;
  isLevelEnabled(level: string): boolean;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogEntry {
  level: LogLevel;
  msg: string;
  /** Structured fields, including the bindings of child logs (e.g. `dservice`). */
  fields: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  time: number;
}

export type LogHook = (entry: LogEntry) => void;

export interface Log {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
  /** A log that adds these fields to every entry. */
  child(bindings: Record<string, unknown>): Log;
}

class PinoLog implements Log {
  constructor(
    private readonly logger: MinerLogger,
    private readonly hook: LogHook | null,
    private readonly bindings: Record<string, unknown>,
    /** Whether the hook wants entries now; checked per entry so listeners may come and go. */
    private readonly hookActive: () => boolean,
  ) {}

  private write(level: LogLevel, fields: Record<string, unknown>, msg: string): void {
    this.logger[level](fields, msg);
    if (this.hook === null || !this.hookActive()) return;
    this.hook({ level, msg, fields: { ...this.bindings, ...fields }, time: Date.now() });
  }

  debug(fields: Record<string, unknown>, msg: string): void {
    if (this.logger.isLevelEnabled('debug') || (this.hook !== null && this.hookActive())) this.write('debug', fields, msg);
  }

  info(fields: Record<string, unknown>, msg: string): void {
    this.write('info', fields, msg);
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    this.write('warn', fields, msg);
  }

  error(fields: Record<string, unknown>, msg: string): void {
    this.write('error', fields, msg);
  }

  child(bindings: Record<string, unknown>): Log {
    return new PinoLog(this.logger.child(bindings), this.hook, { ...this.bindings, ...bindings }, this.hookActive);
  }
}

export function createLog(logger: MinerLogger, hook: LogHook | null = null, hookActive: () => boolean = () => true): Log {
  return new PinoLog(logger, hook, {}, hookActive);
}

/** A short text for an unknown thrown value. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
