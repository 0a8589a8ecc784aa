/**
 * Sets up a local network's central through its HTTP API, idempotently (safe to run on every
 * `cgn dev`): the nodes in the directory (central then dials them), DService descriptors
 * registered and approved, and a demo enterprise account with an API key.
 */
import { randomBytes } from 'node:crypto';
import { api, type Api } from './cli/common.js';

export interface DevNodeEntry {
  id: string;
  region?: string;
  lat?: number;
  lon?: number;
  urls: { work: string; miner: string; status: string; central: string };
}

export interface DevSetupOptions {
  centralUrl: string;
  admin: { login: string; password: string };
  nodes?: DevNodeEntry[];
  /** Parsed dservice.json files and their package digests (the miner's `digestPackage`). */
  dservices?: { descriptor: Record<string, unknown>; digest: string }[];
  demo?: {
    accountName?: string;
    ownerLogin?: string;
    /** Needed when the account exists already (keep it from the last run); generated otherwise. */
    ownerPassword?: string;
    /** A key from the last run: kept if it is still active, else a new one is made. */
    reuseKey?: string;
  };
}

export interface DevSetupResult {
  systemAccountId: string;
  demo: { accountId: string; ownerLogin: string; ownerPassword: string; apiKey: string; apiKeyId: string };
  nodes: string[];
  dservices: string[];
}

async function login(url: string, l: string, password: string): Promise<Api> {
  const r = await api(url, null).call('POST', '/v1/auth/login', { login: l, password });
  return api(url, r.token as string);
}

export async function setupDevNetwork(o: DevSetupOptions): Promise<DevSetupResult> {
  const url = o.centralUrl.replace(/\/+$/, '');
  const admin = await login(url, o.admin.login, o.admin.password);
  const me = await admin.call('GET', '/v1/me');
  const sys = me.account.id as string;

  // demo enterprise account (also a developer, so it can own the bundled DServices)
  const name = o.demo?.accountName ?? 'demo';
  const ownerLogin = o.demo?.ownerLogin ?? 'demo-owner';
  let ownerPassword = o.demo?.ownerPassword;
  const accounts = (await admin.call('GET', '/v1/accounts')).accounts as { id: string; name: string }[];
  let demoId = accounts.find((a) => a.name === name)?.id;
  if (demoId === undefined) {
    ownerPassword ??= `Demo-${randomBytes(9).toString('base64url')}!`;
    const r = await admin.call('POST', '/v1/accounts', { name, kinds: ['enterprise', 'developer'], owner: { login: ownerLogin, password: ownerPassword } });
    demoId = r.account.id as string;
  } else if (ownerPassword === undefined) {
    throw new Error(`account "${name}" exists; its owner's password (demo.ownerPassword) is needed to make keys`);
  }
  const owner = await login(url, ownerLogin, ownerPassword!);

  // DServices, registered by the demo developer and approved by the administrator
  const done: string[] = [];
  for (const d of o.dservices ?? []) {
    const n = String(d.descriptor['name']);
    const v = String(d.descriptor['version']);
    let rec: { state: string; digest: string } | null = null;
    try {
      rec = await admin.call('GET', `/v1/dservices/${encodeURIComponent(n)}/${encodeURIComponent(v)}`);
    } catch {
      rec = null;
    }
    if (rec === null) {
      const body: Record<string, unknown> = { digest: d.digest };
      for (const k of ['name', 'version', 'entry', 'deterministic', 'resources', 'maxBodyBytes', 'concurrency', 'timeouts'] as const) {
        if (d.descriptor[k] !== undefined) body[k] = d.descriptor[k];
      }
      rec = await owner.call('POST', '/v1/dservices', body);
    } else if (rec.digest !== d.digest.replace(/^sha256:/, '')) {
      throw new Error(`${n}@${v} is registered with another digest (${rec.digest}); bump its version`);
    }
    if (rec!.state !== 'approved') await admin.call('PUT', `/v1/dservices/${encodeURIComponent(n)}/${encodeURIComponent(v)}/approval`, { state: 'approved' });
    done.push(`${n}@${v}`);
  }

  // nodes
  const existing = new Map(((await admin.call('GET', '/v1/nodes')).nodes as { id: string; urls: DevNodeEntry['urls'] }[]).map((n) => [n.id, n]));
  for (const n of o.nodes ?? []) {
    const cur = existing.get(n.id);
    if (cur === undefined) {
      await admin.call('POST', '/v1/nodes', { id: n.id, operatorAccount: sys, region: n.region ?? 'local', lat: n.lat ?? 52.52, lon: n.lon ?? 13.405, urls: n.urls });
    } else if (JSON.stringify(cur.urls) !== JSON.stringify({ ...cur.urls, ...n.urls })) {
      await admin.call('PATCH', `/v1/nodes/${encodeURIComponent(n.id)}`, { urls: n.urls });
    }
  }

  // the demo key
  let apiKey: string | null = null;
  let apiKeyId = '';
  const reuse = o.demo?.reuseKey;
  if (reuse !== undefined) {
    const keys = (await owner.call('GET', `/v1/accounts/${demoId}/keys`)).keys as { id: string; prefix: string; revokedAt: number | null }[];
    const k = keys.find((x) => x.revokedAt === null && reuse.startsWith(x.prefix));
    if (k !== undefined) {
      apiKey = reuse;
      apiKeyId = k.id;
    }
  }
  if (apiKey === null) {
    const k = await owner.call('POST', `/v1/accounts/${demoId}/keys`, { name: 'demo' });
    apiKey = k.key as string;
    apiKeyId = k.id as string;
  }
  return {
    systemAccountId: sys,
    demo: { accountId: demoId, ownerLogin, ownerPassword: ownerPassword!, apiKey, apiKeyId },
    nodes: (o.nodes ?? []).map((n) => n.id),
    dservices: done,
  };
}
