/** A bounded ring of the miner's recent log lines, newest last, for the control app. */
import type { LogEntry, MinerLogger } from '../log.js';

export interface LogLine {
  seq: number;
  time: number;
  level: string;
  msg: string;
  /** The entry's fields, as short text (bounded). */
  fields: string;
}

const FIELDS_MAX = 400;

export class LogRing {
  private readonly lines: LogLine[] = [];
  private seq = 0;

  constructor(private readonly capacity = 200) {}

  push(e: LogEntry): void {
    let fields = '';
    try {
      fields = JSON.stringify(e.fields, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v));
    } catch {
      fields = '{}';
    }
    if (fields === '{}') fields = '';
    if (fields.length > FIELDS_MAX) fields = `${fields.slice(0, FIELDS_MAX - 1)}…`;
    this.lines.push({ seq: ++this.seq, time: e.time, level: e.level, msg: e.msg.slice(0, 500), fields });
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  /** The lines after `afterSeq` (all when 0), oldest first. */
  since(afterSeq = 0): LogLine[] {
    return this.lines.filter((l) => l.seq > afterSeq);
  }
}

/**
 * A logger that writes to `logger` and keeps what it writes (at the levels `logger` has enabled)
 * in `ring`: the control app shows the miner's log from its very first line, across restarts.
 */
export function teeLogger(logger: MinerLogger, ring: LogRing, bindings: Record<string, unknown> = {}): MinerLogger {
  const level = (l: 'debug' | 'info' | 'warn' | 'error' | 'fatal') => (obj: object, msg: string): void => {
    logger[l](obj, msg);
    if (logger.isLevelEnabled(l)) ring.push({ level: l === 'fatal' ? 'error' : l, msg, fields: { ...bindings, ...(obj as Record<string, unknown>) }, time: Date.now() });
  };
  return {
    debug: level('debug'),
    info: level('info'),
    warn: level('warn'),
    error: level('error'),
    fatal: level('fatal'),
    child: (b) => teeLogger(logger.child(b), ring, { ...bindings, ...b }),
    isLevelEnabled: (l) => logger.isLevelEnabled(l),
  };
}
