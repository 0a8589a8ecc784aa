import { describe, expect, it } from 'vitest';
import { CgnError } from '@cgn/protocol';
import type { ApiKeyVerifier, Principal } from '../auth/api-keys.js';
import { explainAccess } from './access.js';

const keys = (known: Record<string, string>, slow: Record<string, string | 'unavailable'> = {}): ApiKeyVerifier => ({
  verify: (k) => (known[k] === undefined ? null : ({ account: known[k], keyId: k.slice(0, 8) } satisfies Principal)),
  lookup: async (k) => {
    const a = slow[k];
    if (a === 'unavailable') return { principal: null, from: 'unavailable' };
    return { principal: a === undefined ? null : { account: a, keyId: k.slice(0, 8) }, from: 'central' };
  },
});

const codeOf = (p: Promise<void>) => p.then(() => 'ok', (e: unknown) => (e instanceof CgnError ? e.code : String(e)));

describe("explain access: an account's diagnosis", () => {
  it("is the account's own key's, or the operator token's", async () => {
    const allowed = explainAccess({ keys: keys({ 'cgn_alice': 'alice', 'cgn_bob': 'bob' }, { 'cgn_carol': 'carol' }), operatorToken: 'op-secret' });
    expect(await codeOf(allowed('Bearer cgn_alice', 'alice'))).toBe('ok');
    expect(await codeOf(allowed('bearer  cgn_carol ', 'carol'))).toBe('ok'); // central's slow path
    expect(await codeOf(allowed('Bearer op-secret', 'alice'))).toBe('ok');
    expect(await codeOf(allowed('Bearer cgn_bob', 'alice'))).toBe('forbidden');
    expect(await codeOf(allowed(undefined, 'alice'))).toBe('unauthorized');
    expect(await codeOf(allowed('Basic YWxpY2U6eA==', 'alice'))).toBe('unauthorized');
    expect(await codeOf(allowed('Bearer cgn_unknown', 'alice'))).toBe('unauthorized');
  });

  it('takes no operator token when the node has none (not even an empty one), and says when central cannot check a key', async () => {
    const allowed = explainAccess({ keys: keys({}, { 'cgn_x': 'unavailable' }), operatorToken: null });
    expect(await codeOf(allowed('Bearer ', 'alice'))).toBe('unauthorized');
    expect(await codeOf(allowed('Bearer anything', 'alice'))).toBe('unauthorized');
    expect(await codeOf(allowed('Bearer cgn_x', 'alice'))).toBe('dservice_unavailable');
  });
});
