/**
 * `Idempotency-Key`: a work request repeated with the same key (per account) within 24 h is
 * charged once and answered with the stored response (same status, headers, body) without
 * running again; the same key with a different request (another fingerprint) is refused.
 *
 * Two layers:
 * * the store (`BillingLedgerStore.idempotency*`, table `idempotency`): the durable entry
 *   `(account, key) -> fingerprint, work id, state pending|done, response, expiry`;
 * * `IdempotencyGate` (this file), one per node process: decides what a request does, and makes a
 *   concurrent duplicate **wait** for the first one when the first runs in this process (then
 *   replays its response); when the first runs in another process sharing the ledger
 *   (PostgreSQL), the duplicate gets `in_progress` (answer 409 with `Retry-After`).
 *
 * Crash safety: the response is stored after the record is committed, so a node killed between
 * the two leaves a pending entry whose work id is in the ledger. Such an entry, once older than
 * `staleMs`, answers `outcome_unknown` (409) rather than running the work again: never charged
 * twice. A stale pending entry whose work is *not* in the ledger is taken over (the work runs).
 */
import * as crypto from 'node:crypto';
import { updateHashWithBody, type Body } from '@cgn/protocol';
import type { BillingLedgerStore } from './store.js';

export interface StoredResponse {
  status: number;
  /** Header name/value pairs, in order. */
  headers: [string, string][];
  body: Buffer;
}

export interface IdempotencyBeginArgs {
  account: string;
  key: string;
  fingerprint: string;
  /** The work id this request will get if it runs. */
  workId: string;
  /** epoch ms (default now) */
  now?: number;
  /** Entry lifetime, ms (default 24 h). */
  ttlMs?: number;
  /** A pending entry older than this is stale (its process died), ms (default 10 min). */
  staleMs?: number;
}

/** What the store says about a key. */
export type IdempotencyBegin =
  /** No live entry: one was created (pending, with this work id). Run the work. */
  | { kind: 'new' }
  /** Done before: answer with the stored response. */
  | { kind: 'replay'; workId: string; response: StoredResponse }
  /** The same request is running (pending entry, not stale). */
  | { kind: 'pending'; workId: string }
  /** The key was used with a different request. */
  | { kind: 'mismatch'; workId: string }
  /** A stale pending entry whose work was charged but whose response was not stored. */
  | { kind: 'unknown'; workId: string };

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
export const IDEMPOTENCY_STALE_MS = 10 * 60 * 1000;

/** Why an `Idempotency-Key` header value is unusable, or null. Printable ASCII, 1-255 characters. */
export function idempotencyKeyProblem(key: string): string | null {
  if (typeof key !== 'string' || key.length === 0 || key.length > 255) return 'Idempotency-Key must be 1 to 255 characters';
  if (!/^[\x21-\x7e]+$/.test(key)) return 'Idempotency-Key must be printable ASCII without spaces';
  return null;
}

/**
 * The fingerprint of a work request: sha256 over method, path, DService, tier, end user and the
 * body. Two requests with the same key are "the same request" iff their fingerprints match.
 */
export function requestFingerprint(req: { method: string; path: string; dservice: string; tier: string; endUser?: string | null; body: Body }): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify([req.method.toUpperCase(), req.path, req.dservice, req.tier, req.endUser ?? null, req.body.length]));
  updateHashWithBody(h, req.body);
  return h.digest('hex');
}

/** What the node does with a request that carries an `Idempotency-Key`. */
export type IdempotencyDecision =
  /** Run it; then `complete(ticket, response)` once the record is committed, or `abandon(ticket)` if it failed uncharged. */
  | { kind: 'proceed'; ticket: IdempotencyTicket }
  /** Answer with `response` as is (add `idempotent-replayed: true`); do not run, do not charge, do not record. */
  | { kind: 'replay'; workId: string; response: StoredResponse }
  /**
   * Refuse with `httpStatus` (409 for `in_progress` — add `Retry-After: 1` — and for
   * `outcome_unknown`; 422 for `fingerprint_mismatch`).
   */
  | { kind: 'conflict'; reason: 'fingerprint_mismatch' | 'in_progress' | 'outcome_unknown'; workId: string; httpStatus: 409 | 422; message: string };

export interface IdempotencyTicket {
  readonly account: string;
  readonly key: string;
  readonly workId: string;
}

export interface IdempotencyGateOptions {
  ttlMs?: number;
  staleMs?: number;
  /** How long a duplicate waits for the first request in this process before answering in_progress, ms. Default 60 s. */
  waitMs?: number;
}

export class IdempotencyGate {
  private readonly ttlMs: number;
  private readonly staleMs: number;
  private readonly waitMs: number;
  /** Requests of this process that are running: account\0key -> settles when they complete or abandon. */
  private readonly running = new Map<string, { done: Promise<void>; settle: () => void }>();

  constructor(
    private readonly store: BillingLedgerStore,
    options: IdempotencyGateOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? IDEMPOTENCY_TTL_MS;
    this.staleMs = options.staleMs ?? IDEMPOTENCY_STALE_MS;
    this.waitMs = options.waitMs ?? 60_000;
  }

  async begin(args: { account: string; key: string; fingerprint: string; workId: string }): Promise<IdempotencyDecision> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const r = await this.store.idempotencyBegin({ ...args, ttlMs: this.ttlMs, staleMs: this.staleMs });
      switch (r.kind) {
        case 'new': {
          let settle!: () => void;
          const done = new Promise<void>((resolve) => (settle = resolve));
          this.running.set(slot(args.account, args.key), { done, settle });
          return { kind: 'proceed', ticket: { account: args.account, key: args.key, workId: args.workId } };
        }
        case 'replay':
          return { kind: 'replay', workId: r.workId, response: r.response };
        case 'mismatch':
          return { kind: 'conflict', reason: 'fingerprint_mismatch', workId: r.workId, httpStatus: 422, message: 'this Idempotency-Key was already used with a different request' };
        case 'unknown':
          return {
            kind: 'conflict', reason: 'outcome_unknown', workId: r.workId, httpStatus: 409,
            message: `work ${r.workId} for this Idempotency-Key was charged but its response was lost; it will not run again (ask for the work id's record)`,
          };
        case 'pending': {
          const local = this.running.get(slot(args.account, args.key));
          const left = deadline - Date.now();
          if (local === undefined || left <= 0) {
            return { kind: 'conflict', reason: 'in_progress', workId: r.workId, httpStatus: 409, message: 'a request with this Idempotency-Key is still running; retry shortly' };
          }
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([local.done, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
          clearTimeout(timer);
          continue; // look again: done -> replay; abandoned -> new (this request runs)
        }
      }
    }
  }

  /** Stores the response for replay. Call after the record is committed, before (or as) the response is sent. */
  async complete(ticket: IdempotencyTicket, response: StoredResponse): Promise<void> {
    try {
      await this.store.idempotencyComplete(ticket.account, ticket.key, ticket.workId, response);
    } finally {
      this.release(ticket);
    }
  }

  /** The work failed without being charged: forget the key so a retry runs it. */
  async abandon(ticket: IdempotencyTicket): Promise<void> {
    try {
      await this.store.idempotencyAbandon(ticket.account, ticket.key, ticket.workId);
    } finally {
      this.release(ticket);
    }
  }

  private release(ticket: IdempotencyTicket): void {
    const k = slot(ticket.account, ticket.key);
    const r = this.running.get(k);
    if (r !== undefined) {
      this.running.delete(k);
      r.settle();
    }
  }
}

function slot(account: string, key: string): string {
  return `${account}\u0000${key}`;
}

/** Shared decision logic for stores: given the existing entry (if any), what begin() answers. */
export function decideBegin(
  existing: { fingerprint: string; workId: string; state: 'pending' | 'done'; createdAt: number; expiresAt: number } | undefined,
  args: IdempotencyBeginArgs,
  now: number,
): 'insert' | 'takeover' | { kind: 'mismatch' | 'pending' | 'stale' | 'unknown' | 'replay'; workId: string } {
  if (existing === undefined) return 'insert';
  if (existing.expiresAt <= now) return 'takeover';
  if (existing.fingerprint !== args.fingerprint) return { kind: 'mismatch', workId: existing.workId };
  if (existing.state === 'done') return { kind: 'replay', workId: existing.workId };
  if (existing.createdAt > now - (args.staleMs ?? IDEMPOTENCY_STALE_MS)) return { kind: 'pending', workId: existing.workId };
  // Stale: the store answers 'unknown' if the work id is in the ledger, else takes it over.
  return { kind: 'stale', workId: existing.workId };
}
