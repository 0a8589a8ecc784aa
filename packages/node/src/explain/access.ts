/**
 * Who may read an account's part of `GET /v1/explain` (its data regions, quotas, queue): the
 * account itself, with one of its API keys, or the node's operator, with the node's
 * `--metrics-token` when it has one. The public diagnosis (no account) needs nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CgnError } from '@cgn/protocol';
import type { ApiKeyVerifier } from '../auth/api-keys.js';

export interface ExplainAccessDeps {
  keys: ApiKeyVerifier;
  /** The node's operator token (`--metrics-token`); null: no operator credential is accepted. */
  operatorToken: string | null;
}

/** Resolves when the `authorization` header may read `account`'s diagnosis; rejects with a 401/403 CgnError otherwise. */
export function explainAccess(deps: ExplainAccessDeps): (authorization: string | undefined, account: string) => Promise<void> {
  const operator = deps.operatorToken === null ? null : createHash('sha256').update(deps.operatorToken).digest();
  const needs = `an account's diagnosis needs Authorization: Bearer <an API key of that account>${operator === null ? '' : " or the node's --metrics-token"}`;
  return async (authorization, account) => {
    if (authorization === undefined || authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') {
      throw new CgnError('unauthorized', `${needs}; without account= the public diagnosis needs none`);
    }
    const token = authorization.slice(7).trim();
    if (operator !== null && timingSafeEqual(createHash('sha256').update(token).digest(), operator)) return;
    let principal = deps.keys.verify(token);
    if (principal === null && deps.keys.lookup !== undefined) {
      const r = await deps.keys.lookup(token);
      if (r.principal === null && r.from === 'unavailable') {
        throw new CgnError('dservice_unavailable', 'the key cannot be checked right now (central unreachable); try again shortly', { retryable: true });
      }
      principal = r.principal;
    }
    if (principal === null) throw new CgnError('unauthorized', `the credential is no API key this node knows (unknown or revoked), nor its operator token: ${needs}`);
    if (principal.account !== account) {
      throw new CgnError('forbidden', `this API key belongs to another account than ${account.slice(0, 64)}: ${needs}`);
    }
  };
}
