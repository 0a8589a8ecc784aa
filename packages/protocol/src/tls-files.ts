/**
 * TLS for the public endpoints (a node's work and miner ports, central's API): a certificate and
 * key read from PEM files, checked before use, and reloaded when the files change, without dropping
 * a connection (`setSecureContext` applies to new handshakes only). A bad new pair is refused with a
 * log line and the old one keeps serving: a half-written renewal never takes a server down.
 *
 * Plaintext is for listeners only this machine can reach, or, with an explicit flag, deployments
 * behind a TLS-terminating load balancer (`plaintextProblem`).
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { CgnError } from './errors.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks a certificate and key (they must load as a secure context, i.e. match). */
export function loadTlsPair(files: TlsFiles): TlsPair {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (err) {
    throw new CgnError('bad_request', `cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CgnError('bad_request', `the TLS certificate ${files.certFile} and key ${files.keyFile} do not load together: ${(err as Error).message}`);
  }
  return { cert, key };
}

/** Subject, validity and SHA-256 fingerprint of a PEM certificate (its first one), for logs. */
export function describeCert(cert: Buffer | string): { subject: string; validTo: string; sha256: string } {
  const x = new X509Certificate(cert);
  return { subject: x.subject.replace(/\n/g, ', '), validTo: x.validTo, sha256: x.fingerprint256 };
}

/** Anything that takes a new TLS context for its next handshakes (`tls.Server`, `https.Server`). */
export interface SecureContextTarget {
  setSecureContext(options: { cert: Buffer; key: Buffer }): void;
}

export type TlsLog = (level: 'info' | 'error', msg: string, fields: Record<string, unknown>) => void;

/**
 * Watches the files (stat polling, so a renewal by rename is seen too) and gives every target the
 * new pair once both files have settled and load together. Returns a stop function.
 */
export function watchTlsFiles(files: TlsFiles, targets: readonly SecureContextTarget[], log: TlsLog, intervalMs = 1000): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const reload = (): void => {
    timer = null;
    let pair: TlsPair;
    try {
      pair = loadTlsPair(files);
    } catch (err) {
      log('error', 'TLS files changed but do not load; still serving the previous certificate', { reason: (err as Error).message });
      return;
    }
    for (const t of targets) t.setSecureContext(pair);
    log('info', 'TLS certificate reloaded (new connections use it; open ones keep theirs)', { ...describeCert(pair.cert) });
  };
  const changed = (now: Stats, before: Stats): void => {
    if (now.mtimeMs === before.mtimeMs && now.size === before.size && now.ino === before.ino) return;
    // Cert and key are usually replaced one after the other: wait for both to settle.
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(reload, Math.max(50, Math.floor(intervalMs / 2)));
    timer.unref();
  };
  watchFile(files.certFile, { interval: intervalMs, persistent: false }, changed);
  watchFile(files.keyFile, { interval: intervalMs, persistent: false }, changed);
  return () => {
    if (timer !== null) clearTimeout(timer);
    unwatchFile(files.certFile, changed);
    unwatchFile(files.keyFile, changed);
  };
}

/** Whether a host to listen on or connect to never leaves this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

/**
 * Why serving (or connecting) in plaintext is refused, or null when it is allowed: on loopback, or
 * with the explicit flag (the caller then warns that TLS must terminate in front).
 */
export function plaintextProblem(host: string, explicitFlag: boolean, what: string, tlsFlags: string): string | null {
  if (explicitFlag || isLoopbackHost(host)) return null;
  return `${what} on ${host} would be plaintext: give ${tlsFlags}, or --plaintext if a TLS-terminating load balancer is in front`;
}
