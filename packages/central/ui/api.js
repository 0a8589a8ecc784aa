// The fetch wrapper every page uses: it sends the session token, parses JSON, and turns
// `application/problem+json` answers into an ApiError with a readable message. A 401 on an
// authenticated call (expired or revoked session) signs the user out.
const KEY = 'cgn.session';

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem?.detail ?? problem?.error_description ?? '';
    const title = problem?.title ?? `HTTP ${status}`;
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
    this.status = status;
    this.code = problem?.code ?? 'http_error';
    this.problem = problem;
  }
}

const sessionListeners = new Set();
let session = load();

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
    return s && typeof s.token === 'string' && s.expiresAt > Date.now() ? s : null;
  } catch {
    return null;
  }
}

/** The signed-in session: { token, expiresAt, user, me } or null. */
export function getSession() {
  return session;
}

export function setSession(s) {
  session = s;
  if (s === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, JSON.stringify(s));
  for (const l of sessionListeners) l(s);
}

export function onSession(fn) {
  sessionListeners.add(fn);
  return () => sessionListeners.delete(fn);
}

export async function request(method, path, body, { auth = true } = {}) {
  const headers = { accept: 'application/json' };
  if (auth && session) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (err) {
    throw new ApiError(0, { title: 'Central is unreachable', detail: String(err?.message ?? err), code: 'network' });
  }
  const text = await res.text();
  let data = null;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      data = { title: `HTTP ${res.status}`, detail: text.slice(0, 200) };
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && auth && session && err.code !== 'mfa_required') setSession(null);
    throw err;
  }
  return data;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body) => request('POST', path, body ?? {}),
  put: (path, body) => request('PUT', path, body ?? {}),
  patch: (path, body) => request('PATCH', path, body ?? {}),
  del: (path) => request('DELETE', path),
};

/** Password, then the second factor when the user has one (`totp` or `recoveryCode`). */
export async function signIn({ login, password, totp, recoveryCode }) {
  const body = { login, password };
  if (totp) body.totp = totp;
  if (recoveryCode) body.recoveryCode = recoveryCode;
  const t = await request('POST', '/v1/auth/login', body, { auth: false });
  // Held in memory first so /v1/me is asked with it; stored once the answer is in.
  session = { token: t.token, expiresAt: t.expiresAt, user: t.user };
  const full = await request('GET', '/v1/me');
  setSession({ token: t.token, expiresAt: t.expiresAt, user: t.user, me: full });
  return full;
}

export async function signOut() {
  try {
    if (session) await request('POST', '/v1/auth/logout');
  } catch {
    /* the session may already be gone */
  }
  setSession(null);
}

export const STAFF_ROLES = ['administrator', 'operator', 'monitor'];
export const isStaff = (s = session) => s !== null && STAFF_ROLES.includes(s.user.role);
/** Whether the signed-in user may change things on operator pages (not the read-only monitor). */
export const canMutate = (s = session) => s !== null && (s.user.role === 'administrator' || s.user.role === 'operator');
