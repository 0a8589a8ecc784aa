/**
 * Which access tokens nodes must refuse although they verify offline: those of API keys revoked,
 * and of accounts disabled, within the last token lifetime. Central pushes each change to the
 * nodes as it happens (`tokens_revoked`), and the whole recent set when a node's link opens, so
 * a node that was away (or restarted) learns what it missed.
 *
 * The set is read from the audit log (`key_revoked`, and `account_updated` with `disabled:
 * true`), which is durable and shared by central's replicas: a replica that restarted, or that
 * did not make the change, still sends every recent revocation. An entry older than the window
 * concerns no live token (a revoked key or disabled account gets no new ones), so it is left out.
 */
import { LINK_MAX_REVOCATION_MS, type TokenRevocation } from '@cgn/protocol';
import type { CentralStore } from '../store/store.js';

/**
 * Added to the token lifetime: covers the clock tolerance verifiers allow past `exp` (30 s) and
 * some skew between central and nodes.
 */
export const TOKEN_REVOCATION_MARGIN_MS = 60_000;

export interface TokenRevocationSet {
  keys: TokenRevocation[];
  accounts: TokenRevocation[];
}

/** How long after a revocation a token issued before it could still verify. */
export function revocationWindowMs(tokenTtlS: number): number {
  return tokenTtlS * 1000 + TOKEN_REVOCATION_MARGIN_MS;
}

/** One entry, kept by the node for what is left of the window. */
export function revocationEntry(id: string, at: number, now: number, windowMs: number): TokenRevocation {
  return { id, at, forMs: Math.max(0, Math.min(LINK_MAX_REVOCATION_MS, Math.ceil(at + windowMs - now))) };
}

const PAGE = 1000;

/** Revocations still in the window at `now`, from the audit log. */
export async function recentTokenRevocations(store: CentralStore, now: number, windowMs: number): Promise<TokenRevocationSet> {
  const since = now - windowMs;
  const latest = async (type: string, keep: (details: Record<string, unknown>) => boolean): Promise<TokenRevocation[]> => {
    const at = new Map<string, number>();
    let beforeSeq: number | undefined;
    for (;;) {
      const page = await store.queryAudit({ type, since, limit: PAGE, ...(beforeSeq === undefined ? {} : { beforeSeq }) });
      for (const e of page) {
        if (e.subject === null || e.outcome !== 'ok' || !keep(e.details)) continue;
        at.set(e.subject, Math.max(at.get(e.subject) ?? 0, e.at));
      }
      if (page.length < PAGE) break;
      beforeSeq = page[page.length - 1]!.seq;
    }
    return [...at].map(([id, t]) => revocationEntry(id, t, now, windowMs));
  };
  return {
    keys: await latest('key_revoked', () => true),
    accounts: await latest('account_updated', (d) => d['disabled'] === true),
  };
}
