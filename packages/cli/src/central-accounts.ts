/**
 * Central's accounts for `cgn ledger` (ids and names), when a central is configured: the user is
 * logged in (`cgn account login` keeps the session in .cgn/central-session.json, or CGN_SESSION
 * with CGN_CENTRAL_URL). Staff see every account; an account's own user sees its account. No
 * session: null, and the ledger goes by what it knows itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface CentralAccountRef {
  id: string;
  name: string;
}

export const SESSION_FILE = '.cgn/central-session.json';

function centralUrl(cwd: string, env: NodeJS.ProcessEnv, fromSession: string | undefined): string | null {
  if (env['CGN_CENTRAL_URL']) return env['CGN_CENTRAL_URL'].replace(/\/+$/, '');
  if (fromSession) return fromSession.replace(/\/+$/, '');
  const dev = resolve(cwd, '.cgn/dev.json');
  if (!existsSync(dev)) return null;
  try {
    const u = (JSON.parse(readFileSync(dev, 'utf8')) as { centralUrl?: unknown }).centralUrl;
    return typeof u === 'string' && u !== '' ? u.replace(/\/+$/, '') : null;
  } catch {
    return null;
  }
}

/** The session's central URL and token, or null when nobody is logged in. */
export function centralSession(cwd: string, env: NodeJS.ProcessEnv): { url: string; token: string } | null {
  let token = env['CGN_SESSION'];
  let url: string | undefined;
  if (!token) {
    const file = resolve(cwd, SESSION_FILE);
    if (!existsSync(file)) return null;
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as { token?: unknown; centralUrl?: unknown };
      if (typeof s.token !== 'string') return null;
      token = s.token;
      url = typeof s.centralUrl === 'string' ? s.centralUrl : undefined;
    } catch {
      return null;
    }
  }
  const u = centralUrl(cwd, env, url);
  return u === null ? null : { url: u, token };
}

async function getJson(url: string, token: string): Promise<{ status: number; body: any }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    throw new Error(`cannot reach central at ${new URL(url).origin} to look the account up (${cause}); start it, or log out (cgn account logout) to go by the ledger alone`);
  }
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Central's accounts the session may see, or null without a session. */
export async function centralAccounts(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): Promise<CentralAccountRef[] | null> {
  const s = centralSession(cwd, env);
  if (s === null) return null;
  const all = await getJson(`${s.url}/v1/accounts`, s.token);
  if (all.status === 200 && Array.isArray(all.body?.accounts)) return (all.body.accounts as CentralAccountRef[]).map((a) => ({ id: a.id, name: a.name }));
  if (all.status === 401) throw new Error('the central session has expired: log in again (cgn account login), or log out (cgn account logout) to go by the ledger alone');
  const me = await getJson(`${s.url}/v1/me`, s.token);
  if (me.status === 200 && me.body?.account?.id) return [{ id: me.body.account.id as string, name: me.body.account.name as string }];
  throw new Error(`central answered ${me.status} when asked for the account; log in again (cgn account login)`);
}
