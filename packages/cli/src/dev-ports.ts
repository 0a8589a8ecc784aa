/**
 * The fixed ports `cgn dev` will listen on, checked before anything starts, and the message that
 * names a busy one with its fix. Children listen on loopback, so that is where a port is probed.
 */
import { createServer } from 'node:net';

export interface PlannedPort {
  /** Who listens on it, as the user knows it: "central", "node work endpoint", … */
  role: string;
  port: number;
  /** The `cgn dev` flag that moves it. */
  flag: string;
}

/** A port another program holds: what `cgn dev` says instead of a child's bare EADDRINUSE. */
export class PortInUseError extends Error {
  readonly code = 'PORT_IN_USE';
  constructor(readonly planned: PlannedPort) {
    super(portInUseMessage(planned));
  }
}

export function portInUseMessage(p: PlannedPort): string {
  return `port ${p.port} (${p.role}) is in use: stop what uses it (ss -ltnp 'sport = :${p.port}' shows it) or start with ${p.flag} 0 (any free port)${p.flag === '--chain-port' ? ' or another port' : ''}`;
}

/** The ports to check: the fixed ones only (0 means any free port, nothing to check). */
export function plannedPorts(entries: PlannedPort[]): PlannedPort[] {
  return entries.filter((e) => e.port !== 0);
}

/** Parses a port flag's value: a whole number from 0 to 65535, or an error naming the flag. */
export function parsePort(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new Error(`${flag} must be a port from 0 to 65535 (0 = any free), not "${value}"`);
  return n;
}

/** The port named in an EADDRINUSE line of a child's log, if any ("listen EADDRINUSE: address already in use 127.0.0.1:7700"). */
export function addrInUsePort(lines: string[]): number | null {
  for (const l of lines) {
    const m = /EADDRINUSE[^\n]*?:(\d{1,5})\b/.exec(l);
    if (m) return Number(m[1]);
  }
  return null;
}

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** Throws PortInUseError for the first planned port something else holds. */
export async function checkPorts(planned: PlannedPort[]): Promise<void> {
  for (const p of plannedPorts(planned)) {
    if (!(await portFree(p.port))) throw new PortInUseError(p);
  }
}
