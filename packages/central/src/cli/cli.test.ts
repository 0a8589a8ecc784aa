import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { get as httpsGet } from 'node:https';
import { issueCert } from '../pki.js';
import { join } from 'node:path';
import { exportMinerKey, generateMinerKey, minerIdOf } from '@cgn/protocol';
import { runAccountFromArgs } from './account.js';
import { runDServiceFromArgs } from './dservice.js';
import { runMinerRegisterFromArgs } from './miner.js';
import { runCentralFromArgs } from './central.js';
import { SqliteLedgerStore } from '@cgn/ledger';
import { totpCode } from '../auth/totp.js';
import type { CliIo } from './common.js';
import type { RunningCentral } from '../central.js';

interface Out {
  code: number;
  out: string;
  err: string;
}

function makeIo(cwd: string, env: Record<string, string> = {}, stdin = ''): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      readStdin: async () => stdin,
      prompt: async () => null,
      env: { CGN_LOG_LEVEL: 'silent', ...env },
      cwd,
    },
    out: () => out,
    err: () => err,
  };
}

describe('cgn account / dservice / miner register / central', () => {
  let dir: string;
  let central: RunningCentral;
  let url: string;
  let admin: { login: string; password: string };

  const cmd = async (fn: (argv: string[], io: CliIo) => Promise<number>, argv: string[], env: Record<string, string> = {}, stdin = ''): Promise<Out> => {
    const m = makeIo(dir, env, stdin);
    const code = await fn(argv, m.io);
    return { code, out: m.out(), err: m.err() };
  };
  const account = (argv: string[], env?: Record<string, string>, stdin?: string) => cmd(runAccountFromArgs, argv, env, stdin);
  const dservice = (argv: string[], env?: Record<string, string>) => cmd((a, io) => runDServiceFromArgs(a, io, { digestPackage: async () => 'd'.repeat(64) }), argv, env);
  const miner = (argv: string[]) => cmd(runMinerRegisterFromArgs, argv);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cgn-cli-'));
    const m = makeIo(dir);
    const c = await runCentralFromArgs(['--port', '0', '--data-dir', 'central', '--pki', 'pki', '--make-pki'], m.io);
    expect(c).not.toBeNull();
    central = c!;
    const ready = JSON.parse(m.out().trim()) as { url: string; admin: { login: string; password: string }; link: boolean };
    expect(ready.link).toBe(true);
    url = ready.url;
    admin = ready.admin;
    expect(admin.login).toBe('admin');
    expect(existsSync(join(dir, 'pki', 'central.key'))).toBe(true);
  });
  afterAll(async () => {
    await central?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help helps; bad usage exits 2 with the reason', async () => {
    for (const [fn, name] of [[runAccountFromArgs, 'cgn account'], [runDServiceFromArgs, 'cgn dservice'], [runMinerRegisterFromArgs, 'cgn miner register']] as const) {
      const h = await cmd(fn, ['--help']);
      expect(h.code).toBe(0);
      expect(h.out).toContain(`Usage: ${name}`);
      const bad = await cmd(fn, ['--frobnicate']);
      expect(bad.code).toBe(2);
      expect(bad.err).toMatch(/Unknown option '--frobnicate'/);
    }
    expect((await account([])).code).toBe(2);
    expect((await account(['keys', 'frob'])).err).toContain('unknown command "keys frob"');
    expect((await account(['login'])).err).toContain('--login is required');
    expect((await account(['login', '--login', 'x', '--central', 'ftp://x'])).err).toContain('--central must be an http(s) URL');
    expect((await dservice(['approve', 'nope'])).code).toBe(2);
    const m = makeIo(dir);
    expect(await runCentralFromArgs(['--port', 'seventy'], m.io)).toBeNull();
    expect(m.err()).toContain('--port must be a whole number');
    const h = makeIo(dir);
    await runCentralFromArgs(['--help'], h.io);
    expect(h.out()).toContain('Usage: cgn central');
  });

  it('clear errors when not logged in or central is unreachable', async () => {
    const r = await account(['whoami', '--session', 'none.json']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('not logged in');
    const u = await account(['login', '--login', 'admin', '--central', 'http://127.0.0.1:1'], { CGN_PASSWORD: 'x' });
    expect(u.code).toBe(1);
    expect(u.err).toContain('cannot reach central at http://127.0.0.1:1');
  });

  it('a whole story: admin creates an account; the owner makes keys, users, TOTP; DServices; miners', async () => {
    // central URL from .cgn/dev.json
    mkdirSync(join(dir, '.cgn'), { recursive: true });
    writeFileSync(join(dir, '.cgn', 'dev.json'), JSON.stringify({ centralUrl: url }));
    const login = await account(['login', '--login', admin.login, '--session', 'admin.json'], { CGN_PASSWORD: admin.password });
    expect(login.code, login.err).toBe(0);
    expect(login.out).toContain('logged in as admin (administrator)');
    expect(statSync(join(dir, 'admin.json')).mode & 0o777).toBe(0o600);

    const wrong = await account(['login', '--login', admin.login, '--session', 'x.json'], { CGN_PASSWORD: 'Wrong-Passw0rd!' });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('401 unauthorized: wrong login or password');

    const create = await account(['create', '--name', 'acme', '--kind', 'enterprise', '--kind', 'developer', '--kind', 'miner', '--owner-login', 'acme-owner', '--password-stdin', '--session', 'admin.json'], {}, 'Acme-Own3r-Pw!\n');
    expect(create.code, create.err).toBe(0);
    expect(create.out).toMatch(/created account acme \[acc_/);

    expect((await account(['login', '--login', 'acme-owner', '--password-stdin'], {}, 'Acme-Own3r-Pw!\n')).code).toBe(0);
    const who = await account(['whoami', '--json']);
    expect(JSON.parse(who.out)).toMatchObject({ user: { login: 'acme-owner', owner: true }, totp: 'off' });

    const key = await account(['keys', 'create', '--name', 'web', '--scope', 'work:echo', '--scope', 'select', '--json']);
    expect(key.code, key.err).toBe(0);
    const k = JSON.parse(key.out) as { id: string; key: string };
    expect(k.key).toMatch(/^cgn_/);
    const human = await account(['keys', 'create', '--name', 'other']);
    expect(human.out).toContain('only time the key is shown');
    const list = await account(['keys', 'list']);
    expect(list.out).toContain(k.id);
    expect(list.out).not.toContain(k.key);
    const rev = await account(['keys', 'revoke', k.id]);
    expect(rev.code, rev.err).toBe(0);
    expect(rev.out).toContain(`revoked ${k.id}`);
    const badScope = await account(['keys', 'create', '--name', 'x', '--scope', 'everything']);
    expect(badScope.code).toBe(1);
    expect(badScope.err).toContain('400 bad_request');

    const add = await account(['users', 'add', '--login', 'acme-dev'], { CGN_PASSWORD: 'Dev3loper-Pw!' });
    expect(add.code, add.err).toBe(0);
    expect((await account(['users', 'list'])).out).toContain('acme-dev');
    const weak = await account(['users', 'add', '--login', 'acme-weak'], { CGN_PASSWORD: 'password' });
    expect(weak.err).toContain('weak_password');

    const en = await account(['totp', 'enable', '--json']);
    const { secret } = JSON.parse(en.out) as { secret: string };
    const conf = await account(['totp', 'confirm', totpCode(secret, Date.now())]);
    expect(conf.code, conf.err).toBe(0);
    expect(conf.out).toContain('Recovery codes');

    // DServices: register by descriptor file + digest, and by directory (digest computed)
    writeFileSync(join(dir, 'dservice.json'), JSON.stringify({ name: 'echo', version: '0.1.0', entry: 'dist/server.js', deterministic: true }));
    const reg = await dservice(['register', '--file', 'dservice.json', '--digest', 'c'.repeat(64), '--price-request', '10']);
    expect(reg.code, reg.err).toBe(0);
    expect(reg.out).toContain('registered echo@0.1.0');
    mkdirSync(join(dir, 'pkg'));
    writeFileSync(join(dir, 'pkg', 'dservice.json'), JSON.stringify({ name: 'echo', version: '0.2.0', entry: 'dist/server.js' }));
    const reg2 = await dservice(['register', '--dir', 'pkg', '--json']);
    expect(JSON.parse(reg2.out)).toMatchObject({ version: '0.2.0', digest: 'd'.repeat(64), state: 'pending', price: null });
    // dservice.json's prices are sent with it; a flag overrides its field, --price-tier its tier.
    writeFileSync(join(dir, 'priced.json'), JSON.stringify({
      name: 'echo', version: '0.4.0', entry: 'dist/server.js',
      prices: { perRequestMicros: 50, perMbMicros: 5, tiers: { open: { perRequestMicros: 60 }, attested: { perRequestMicros: 70 } } },
    }));
    const priced = await dservice(['register', '--file', 'priced.json', '--digest', 'c'.repeat(64), '--price-mb', '7', '--price-tier', 'attested=80/1/2', '--json']);
    expect(JSON.parse(priced.out).price, priced.err).toEqual({
      perRequestMicros: 50, perCpuSecondMicros: 0, perMbMicros: 7,
      tiers: { open: { perRequestMicros: 60 }, attested: { perRequestMicros: 80, perCpuSecondMicros: 1, perMbMicros: 2 } },
    });
    // The whole file is checked by dservice.json's schema before anything is sent, naming the field.
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ name: 'echo', version: '0.3.0', entry: 'dist/server.js', resources: { memoryMB: 64 } }));
    const bad = await dservice(['register', '--file', 'bad.json', '--digest', 'c'.repeat(64)]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('resources.memoryMB is not a field of dservice.json: did you mean memoryMb?');
    expect((await dservice(['approve', 'echo@0.1.0'])).err).toContain('403');
    const appr = await dservice(['approve', 'echo@0.1.0', '--session', 'admin.json']);
    expect(appr.code, appr.err).toBe(0);
    expect(appr.out).toContain('echo@0.1.0: approved');
    const ls = await dservice(['list', '--state', 'approved']);
    expect(ls.out).toContain('echo');
    expect(ls.out).not.toContain('0.2.0');

    // miners
    const pair = generateMinerKey();
    writeFileSync(join(dir, 'miner.pem'), exportMinerKey(pair));
    const mr = await miner(['register', '--key', 'miner.pem', '--name', 'rig-1']);
    expect(mr.code, mr.err).toBe(0);
    expect(mr.out).toContain(minerIdOf(pair.publicKey));
    expect((await miner(['--public-key', 'xyz', '--name', 'n'])).code).toBe(2);

    const out = await account(['logout']);
    expect(out.code).toBe(0);
    expect((await account(['whoami'])).err).toContain('not logged in');
  });

  it("administrators set an account's weight and quotas with account policy (merged with what it had; none removes a quota; --clear)", async () => {
    mkdirSync(join(dir, '.cgn'), { recursive: true });
    writeFileSync(join(dir, '.cgn', 'dev.json'), JSON.stringify({ centralUrl: url }));
    expect((await account(['login', '--login', admin.login, '--session', 'admin-policy.json'], { CGN_PASSWORD: admin.password })).code).toBe(0);
    const created = await account(['create', '--name', 'fairco', '--kind', 'enterprise', '--owner-login', 'fairco-owner', '--password-stdin', '--session', 'admin-policy.json', '--json'], {}, 'Fairc0-Own3r-Pw!\n');
    expect(created.code, created.err).toBe(0);
    const id = (JSON.parse(created.out) as { account: { id: string } }).account.id;
    const set = await account(['policy', '--weight', '2', '--max-concurrent', '50', '--account', id, '--session', 'admin-policy.json']);
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain('fairco');
    expect(set.out).toContain('weight 2, maxConcurrent 50');
    const more = await account(['policy', '--per-second', '10', '--max-concurrent', 'none', '--account', id, '--session', 'admin-policy.json', '--json']);
    expect((JSON.parse(more.out) as { policy: unknown }).policy).toEqual({ weight: 2, perSecond: 10 });
    expect((await account(['policy', '--weight', '0', '--account', id, '--session', 'admin-policy.json'])).code).toBe(2);
    expect((await account(['policy', '--account', id, '--session', 'admin-policy.json'])).code).toBe(2);
    const cleared = await account(['policy', '--clear', '--account', id, '--session', 'admin-policy.json']);
    expect(cleared.out).toContain("the nodes' defaults");
  });

  it("administrators limit an account's work to data regions with account regions (--clear: anywhere)", async () => {
    mkdirSync(join(dir, '.cgn'), { recursive: true });
    writeFileSync(join(dir, '.cgn', 'dev.json'), JSON.stringify({ centralUrl: url }));
    expect((await account(['login', '--login', admin.login, '--session', 'admin-regions.json'], { CGN_PASSWORD: admin.password })).code).toBe(0);
    const created = await account(['create', '--name', 'euco', '--kind', 'enterprise', '--owner-login', 'euco-owner', '--password-stdin', '--session', 'admin-regions.json', '--json'], {}, 'Euc0-Own3r-Pw!!\n');
    expect(created.code, created.err).toBe(0);
    const id = (JSON.parse(created.out) as { account: { id: string } }).account.id;
    const set = await account(['regions', '--region', 'eu', '--region', 'us-east', '--account', id, '--session', 'admin-regions.json']);
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain('euco');
    expect(set.out).toContain('only on miners in eu, us-east');
    expect((await account(['regions', '--region', 'EU West', '--account', id, '--session', 'admin-regions.json'])).code).not.toBe(0);
    expect((await account(['regions', '--account', id, '--session', 'admin-regions.json'])).code).toBe(2);
    const cleared = await account(['regions', '--clear', '--account', id, '--session', 'admin-regions.json', '--json']);
    expect((JSON.parse(cleared.out) as { allowedRegions: unknown }).allowedRegions).toBeNull();
  });

  it('a developer sets its own payout address: at dservice register, or with account payout-address; nodes get it with the descriptors', async () => {
    mkdirSync(join(dir, '.cgn'), { recursive: true });
    writeFileSync(join(dir, '.cgn', 'dev.json'), JSON.stringify({ centralUrl: url }));
    expect((await account(['login', '--login', admin.login, '--session', 'admin2.json'], { CGN_PASSWORD: admin.password })).code).toBe(0);
    const created = await account(['create', '--name', 'devco', '--kind', 'developer', '--owner-login', 'devco-owner', '--password-stdin', '--session', 'admin2.json', '--json'], {}, 'Devc0-Own3r-Pw!\n');
    expect(created.code, created.err).toBe(0);
    const devco = (JSON.parse(created.out) as { account: { id: string } }).account.id;
    expect((await account(['login', '--login', 'devco-owner', '--password-stdin', '--session', 'dev.json'], {}, 'Devc0-Own3r-Pw!\n')).code).toBe(0);
    writeFileSync(join(dir, 'paid.json'), JSON.stringify({ name: 'paid', version: '1.0.0', entry: 'dist/server.js' }));
    const first = await dservice(['register', '--file', 'paid.json', '--digest', 'e'.repeat(64), '--session', 'dev.json']);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain('WARNING: the developer account has no payout address');
    const bad = await account(['payout-address', '0x12', '--session', 'dev.json']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('cgn wallet new');
    const A = `0x${'Ab'.repeat(20)}`;
    const set = await account(['payout-address', A, '--session', 'dev.json']);
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain(`is paid to ${A.toLowerCase()}`);
    expect(await central.service.payoutAddresses([devco, 'acc_nobody'])).toEqual(new Map([[devco, A.toLowerCase()]]));
    // Nobody else's account: refused.
    const other = await account(['payout-address', A, '--account', 'acc_nobody', '--session', 'dev.json']);
    expect(other.code).toBe(1);
    const B = `0x${'cd'.repeat(20)}`;
    writeFileSync(join(dir, 'paid2.json'), JSON.stringify({ name: 'paid', version: '1.0.1', entry: 'dist/server.js' }));
    const second = await dservice(['register', '--file', 'paid2.json', '--digest', 'e'.repeat(64), '--payout-address', B, '--session', 'dev.json']);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toContain(`the developer share is paid to ${B}`);
    expect((await central.service.payoutAddresses([devco])).get(devco)).toBe(B);
    // --account takes a name too; an unknown one lists what the user can see.
    expect((await account(['users', 'list', '--account', 'devco', '--session', 'dev.json'])).code).toBe(0);
    const unknown = await account(['users', 'list', '--account', 'nope', '--session', 'dev.json']);
    expect(unknown).toMatchObject({ code: 1, err: expect.stringContaining(`no account "nope"; accounts you can see: ${devco} (devco)`) });
    const cleared = await account(['payout-address', '--clear', '--session', 'dev.json', '--json']);
    expect(JSON.parse(cleared.out)).toMatchObject({ id: devco });
    expect(JSON.parse(cleared.out).payoutAddress).toBeUndefined();
    expect(await central.service.payoutAddresses([devco])).toEqual(new Map());
  });

  it('serves the API over HTTPS with --tls-cert/--tls-key', async () => {
    const leaf = issueCert(join(dir, 'pki'), 'central-https', 'localhost', ['localhost', '127.0.0.1']);
    writeFileSync(join(dir, 'https.crt'), leaf.cert);
    writeFileSync(join(dir, 'https.key'), leaf.key);
    const m = makeIo(dir);
    const c = await runCentralFromArgs(['--port', '0', '--data-dir', 'central-https', '--no-link', '--tls-cert', 'https.crt', '--tls-key', 'https.key'], m.io);
    try {
      expect(c!.url).toMatch(/^https:/);
      const ca = readFileSync(join(dir, 'pki', 'ca.crt'));
      const body = await new Promise<string>((resolve, reject) => {
        httpsGet(`${c!.url}/healthz`, { ca }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      expect(JSON.parse(body)).toEqual({ ok: true });
    } finally {
      await c?.stop();
    }
    const half = makeIo(dir);
    expect(await runCentralFromArgs(['--tls-cert', 'https.crt', '--no-link'], half.io)).toBeNull();
    expect(half.err()).toContain('--tls-cert and --tls-key go together');
  });

  it('--explorer-tx-url needs an http(s) URL with {tx}; the dashboard\'s cycles then carry it', async () => {
    const bad = makeIo(dir);
    expect(await runCentralFromArgs(['--no-link', '--explorer-tx-url', 'javascript:alert(1)//{tx}'], bad.io)).toBeNull();
    expect(bad.err()).toContain('--explorer-tx-url must be an http(s) URL with {tx}');
    const m = makeIo(dir, { CGN_ADMIN_PASSWORD: 'Explor3r-Chief-Pw!' });
    new SqliteLedgerStore({ path: join(dir, 'explorer-ledger.sqlite') }).close();
    const c = await runCentralFromArgs(['--port', '0', '--data-dir', 'central-explorer', '--no-link', '--ledger', 'explorer-ledger.sqlite', '--explorer-tx-url', 'https://explorer.example/tx/{tx}'], m.io);
    try {
      expect(c, m.err()).not.toBeNull();
      expect(c!.ops).not.toBeNull();
      const login = await fetch(`${c!.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'admin', password: 'Explor3r-Chief-Pw!' }) });
      const { token } = (await login.json()) as { token: string };
      const r = await fetch(`${c!.url}/v1/ops/cycles`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { explorerTxUrl: string }).explorerTxUrl).toBe('https://explorer.example/tx/{tx}');
    } finally {
      await c?.stop();
    }
  });

  it('--contracts and --chain-rpc: the balance page names the escrow to deposit into and the chain in its commands', async () => {
    const bad = makeIo(dir);
    expect(await runCentralFromArgs(['--no-link', '--contracts', 'no-such-contracts.json'], bad.io)).toBeNull();
    expect(bad.err()).toContain('--contracts: no file');
    const badRpc = makeIo(dir);
    expect(await runCentralFromArgs(['--no-link', '--chain-rpc', 'file:///etc/passwd'], badRpc.io)).toBeNull();
    expect(badRpc.err()).toContain('--chain-rpc must be an http(s) or ws(s) URL');
    const settlement = `0x${'e7'.repeat(20)}`;
    writeFileSync(join(dir, 'contracts.json'), JSON.stringify({ chainId: 31337, token: `0x${'5f'.repeat(20)}`, settlement, staking: `0x${'9f'.repeat(20)}`, election: `0x${'cf'.repeat(20)}`, deployBlock: '1' }));
    new SqliteLedgerStore({ path: join(dir, 'escrow-ledger.sqlite') }).close();
    const m = makeIo(dir, { CGN_ADMIN_PASSWORD: 'Escrow-Chief-Pw-9!' });
    const c = await runCentralFromArgs(['--port', '0', '--data-dir', 'central-escrow', '--no-link', '--ledger', 'escrow-ledger.sqlite', '--contracts', 'contracts.json', '--chain-rpc', 'http://127.0.0.1:8545'], m.io);
    try {
      expect(c, m.err()).not.toBeNull();
      const login = await fetch(`${c!.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'admin', password: 'Escrow-Chief-Pw-9!' }) });
      const { token, user } = (await login.json()) as { token: string; user: { accountId: string } };
      const r = await fetch(`${c!.url}/v1/accounts/${user.accountId}/balance`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      const b = (await r.json()) as { topUp: { escrow: { settlement: string; chainId: number; rpcUrl: string }; steps: { command: string }[] } };
      expect(b.topUp.escrow).toMatchObject({ settlement, chainId: 31337, rpcUrl: 'http://127.0.0.1:8545' });
      expect(b.topUp.steps.map((x) => x.command).join('\n')).toContain('--rpc http://127.0.0.1:8545');
    } finally {
      await c?.stop();
    }
  });
});
