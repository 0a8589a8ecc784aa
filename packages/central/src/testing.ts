/**
 * Helpers for tests (here and in other packages): a central with an in-memory store, cheap argon2
 * parameters, a hand-moved clock and generous rate limits, plus a logged-in client.
 */
import { ManualClock } from './clock.js';
import { startCentral, type CentralOptions, type RunningCentral } from './central.js';
import { SqliteCentralStore } from './store/sqlite.js';
import { ARGON2_TEST } from './auth/passwords.js';

export const TEST_ADMIN = { login: 'root-admin', password: 'Adm1n-Passw0rd!x' } as const;

export interface TestCentral extends RunningCentral {
  clock: ManualClock;
  /** Logs in and returns a fetch wrapper sending the session token. */
  login(login: string, password: string, totp?: string): Promise<TestClient>;
  admin: TestClient;
}

export interface TestClient {
  token: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function call(base: string, token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const h: Record<string, string> = { ...headers };
  if (token !== null) h['authorization'] = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const res = await fetch(base + path, { method, headers: h, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as any, headers: res.headers };
}

export async function startTestCentral(options: Partial<CentralOptions> & { clock?: ManualClock } = {}): Promise<TestCentral> {
  const clock = options.clock ?? new ManualClock(Date.UTC(2025, 5, 1, 12, 0, 0));
  const c = await startCentral({
    port: 0,
    store: options.store ?? new SqliteCentralStore({ path: ':memory:' }),
    argon2: ARGON2_TEST,
    http: { rateLimits: { perIp: { burst: 100_000, perSecond: 100_000 }, perPrincipal: { burst: 100_000, perSecond: 100_000 }, auth: { burst: 100_000, perSecond: 100_000 } } },
    bootstrapAdmin: TEST_ADMIN,
    ...options,
    clock,
  });
  const login = async (l: string, p: string, totp?: string): Promise<TestClient> => {
    const r = await call(c.url, null, 'POST', '/v1/auth/login', { login: l, password: p, ...(totp ? { totp } : {}) });
    if (r.status !== 200) throw new Error(`login ${l}: ${r.status} ${JSON.stringify(r.body)}`);
    const token = r.body.token as string;
    return { token, call: (m, path, body, headers) => call(c.url, token, m, path, body, headers) };
  };
  const admin = await login(TEST_ADMIN.login, TEST_ADMIN.password);
  return { ...c, clock, login, admin };
}
