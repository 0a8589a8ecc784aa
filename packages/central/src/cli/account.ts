/** `cgn account ...`: log in, accounts, users, API keys, TOTP, password. */
import { rmSync } from 'node:fs';
import { COMMON_HELP, CommandError, UsageError, api, centralUrlFrom, finish, parse, print, processIo, readPassword, readSession, run, sessionApi, sessionPath, table, writeSession, type Api, type CliIo } from './common.js';

export const ACCOUNT_USAGE = `Usage: cgn account <command> [options]

Accounts, users, API keys and second factor at the Central Service.

Commands:
  login --login NAME [--totp CODE | --recovery-code CODE]
                          log in and keep the session (see --session)
  logout                  end the session
  whoami                  the logged-in user and account
  create --name NAME --kind KIND... --owner-login NAME [--region REGION...]
                          create an account with its owner (administrators);
                          KIND: enterprise, developer, miner
  users add --login NAME [--role ROLE] [--account ID]
                          sign up a user (administrators; account owners for end users)
  users list [--account ID]
  keys create --name NAME [--scope SCOPE...] [--for-user ID] [--expires-in SECONDS] [--account ID]
                          create an API key; it is printed once and never again.
                          SCOPE: work, work:<dservice>, select, token (default: work select token)
  keys list [--account ID]
  keys revoke KEY_ID [--account ID]
                          nodes stop accepting the key within their cache TTL (30 s)
  payout-address 0x... | --clear [--account ID]
                          where the account's earnings are paid (a developer's share of its
                          DServices); nodes register it, and what was held for want of an
                          address is paid in the next billing cycle (account owners)
  policy [--weight W] [--max-concurrent N|none] [--per-second R|none] [--burst B|none] | --clear [--account ID]
                          the account's share of the nodes' fair queues and its quotas there
                          (administrators); pushed to every node at once; --clear: the nodes' defaults
  regions --region REGION... | --clear [--account ID]
                          the data regions the account's work may run in (administrators): every
                          node sends it only to miners there (cgn miner --region; eu takes eu-west);
                          --clear: anywhere
  totp enable             start TOTP: prints the otpauth:// URI (and secret) for an authenticator app
  totp confirm CODE       finish with a current code: prints one-time recovery codes
  password                change your password (ends all your sessions)

Passwords are never taken as arguments: they come from --password-stdin (first line of
standard input; for "password", current then new on two lines), from CGN_PASSWORD (and
CGN_NEW_PASSWORD), or from a prompt. --account (an id or a name) defaults to your own account.

Options:
  --password-stdin   read the password(s) from standard input
${COMMON_HELP}`;

const OPTIONS = {
  login: { type: 'string' }, totp: { type: 'string' }, 'recovery-code': { type: 'string' }, 'password-stdin': { type: 'boolean' },
  name: { type: 'string' }, kind: { type: 'string', multiple: true }, region: { type: 'string', multiple: true }, 'owner-login': { type: 'string' },
  role: { type: 'string' }, account: { type: 'string' }, scope: { type: 'string', multiple: true }, 'for-user': { type: 'string' },
  'expires-in': { type: 'string' }, clear: { type: 'boolean' },
  weight: { type: 'string' }, 'max-concurrent': { type: 'string' }, 'per-second': { type: 'string' }, burst: { type: 'string' },
} as const;

/** `--max-concurrent 10` etc.: a positive number, or `none` (no quota). */
function quotaFlag(v: string | undefined, flag: string, nullable: boolean): number | null | undefined {
  if (v === undefined) return undefined;
  if (nullable && v === 'none') return null;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`${flag} must be a positive number${nullable ? ' or none' : ''}, not "${v}"`);
  return n;
}

type Values = ReturnType<typeof parse<typeof OPTIONS>>['values'];

const need = (v: string | undefined, flag: string): string => {
  if (v === undefined || v === '') throw new UsageError(`${flag} is required`);
  return v;
};

/** `--account` (an id or a name; default the user's own account) as the account's id. */
async function accountOf(a: Api, values: Values): Promise<string> {
  const given = values.account;
  if (given === undefined) return (await a.call('GET', '/v1/me')).account.id as string;
  if (/^acc_[A-Za-z0-9_-]{16}$/.test(given)) return given;
  // A name: staff see every account, others their own.
  const list = (await a.call('GET', '/v1/accounts').then((r) => r.accounts, async () => [(await a.call('GET', '/v1/me')).account])) as { id: string; name: string }[];
  const hit = list.filter((x) => x.name.toLowerCase() === given.toLowerCase() || x.id.startsWith(given));
  if (hit.length === 1) return hit[0]!.id;
  const names = list.map((x) => `${x.id} (${x.name})`).join(', ');
  throw new CommandError(hit.length === 0 ? `no account "${given}"; accounts you can see: ${names || '(none)'}` : `"${given}" matches several accounts: ${hit.map((x) => `${x.id} (${x.name})`).join(', ')}; give the id`);
}

export async function runAccountFromArgs(argv: string[], io?: CliIo): Promise<number> {
  const cio = io ?? processIo();
  const code = await run('cgn account', ACCOUNT_USAGE, cio, async () => {
    const { values, positionals } = parse(argv, OPTIONS);
    if (values.help || positionals.length === 0) {
      if (positionals.length === 0 && !values.help) throw new UsageError('which command?');
      cio.stdout.write(ACCOUNT_USAGE);
      return;
    }
    const [cmd, sub, ...rest] = positionals;
    const key = ['users', 'keys', 'totp'].includes(cmd!) ? `${cmd} ${sub ?? ''}`.trim() : cmd!;
    const args = ['users', 'keys', 'totp'].includes(cmd!) ? rest : [sub, ...rest].filter((x): x is string => x !== undefined);
    const noArgs = () => {
      if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
    };
    const json = values.json;
    switch (key) {
      case 'login': {
        noArgs();
        const login = need(values.login, '--login');
        const url = centralUrlFrom(values, cio);
        const password = await readPassword(cio, { stdin: values['password-stdin'] ?? false, envVar: 'CGN_PASSWORD', prompt: `password for ${login}: ` });
        const body: Record<string, string> = { login, password };
        if (values.totp !== undefined) body['totp'] = values.totp;
        if (values['recovery-code'] !== undefined) body['recoveryCode'] = values['recovery-code'];
        const r = await api(url, null).call('POST', '/v1/auth/login', body);
        const path = sessionPath(values, cio);
        writeSession(path, { centralUrl: url, token: r.token, login: r.user.login, expiresAt: r.expiresAt });
        print(cio, json, { login: r.user.login, role: r.user.role, account: r.user.accountId, expiresAt: r.expiresAt, session: path },
          `logged in as ${r.user.login} (${r.user.role}) at ${url}; session kept in ${path} until ${new Date(r.expiresAt).toISOString()}`);
        return;
      }
      case 'logout': {
        noArgs();
        const path = sessionPath(values, cio);
        if (readSession(path, cio) === null) throw new CommandError('not logged in');
        try {
          await sessionApi(values, cio).call('POST', '/v1/auth/logout');
        } finally {
          rmSync(path, { force: true });
        }
        print(cio, json, { ok: true }, 'logged out');
        return;
      }
      case 'whoami': {
        noArgs();
        const me = await sessionApi(values, cio).call('GET', '/v1/me');
        print(cio, json, me, `${me.user.login} (${me.user.role}${me.user.owner ? ', owner' : ''}) of account ${me.account.name} [${me.account.id}], TOTP ${me.totp}`);
        return;
      }
      case 'create': {
        noArgs();
        const name = need(values.name, '--name');
        const kinds = values.kind ?? [];
        if (kinds.length === 0) throw new UsageError('--kind is required (enterprise, developer, miner; repeatable)');
        const ownerLogin = need(values['owner-login'], '--owner-login');
        const password = await readPassword(cio, { stdin: values['password-stdin'] ?? false, envVar: 'CGN_PASSWORD', prompt: `password for the owner ${ownerLogin}: ` });
        const r = await sessionApi(values, cio).call('POST', '/v1/accounts', {
          name, kinds, ...(values.region ? { allowedRegions: values.region } : {}), owner: { login: ownerLogin, password },
        });
        print(cio, json, r, `created account ${r.account.name} [${r.account.id}] with owner ${r.owner.login} [${r.owner.id}]`);
        return;
      }
      case 'users add': {
        noArgs();
        const login = need(values.login, '--login');
        const a = sessionApi(values, cio);
        const account = await accountOf(a, values);
        const password = await readPassword(cio, { stdin: values['password-stdin'] ?? false, envVar: 'CGN_PASSWORD', prompt: `password for ${login}: ` });
        const r = await a.call('POST', `/v1/accounts/${encodeURIComponent(account)}/users`, { login, password, ...(values.role ? { role: values.role } : {}) });
        print(cio, json, r, `created user ${r.login} (${r.role}) [${r.id}] in account ${account}`);
        return;
      }
      case 'users list': {
        noArgs();
        const a = sessionApi(values, cio);
        const r = await a.call('GET', `/v1/accounts/${encodeURIComponent(await accountOf(a, values))}/users`);
        print(cio, json, r, table(r.users, ['id', 'login', 'role', 'owner', 'disabled', 'createdAt']));
        return;
      }
      case 'keys create': {
        noArgs();
        const name = need(values.name, '--name');
        const a = sessionApi(values, cio);
        const account = await accountOf(a, values);
        const body: Record<string, unknown> = { name };
        if (values.scope) body['scopes'] = values.scope;
        if (values['for-user']) body['userId'] = values['for-user'];
        if (values['expires-in'] !== undefined) {
          const n = Number(values['expires-in']);
          if (!Number.isInteger(n) || n < 60) throw new UsageError('--expires-in must be a whole number of seconds, at least 60');
          body['expiresInS'] = n;
        }
        const r = await a.call('POST', `/v1/accounts/${encodeURIComponent(account)}/keys`, body);
        print(cio, json, r, `API key ${r.id} (${r.name}, scopes ${r.scopes.join(' ')}):\n\n  ${r.key}\n\nThis is the only time the key is shown; store it now. Use it as "Authorization: Bearer ${r.prefix}...".`);
        return;
      }
      case 'keys list': {
        noArgs();
        const a = sessionApi(values, cio);
        const r = await a.call('GET', `/v1/accounts/${encodeURIComponent(await accountOf(a, values))}/keys`);
        print(cio, json, r, table(r.keys, ['id', 'prefix', 'name', 'scopes', 'userId', 'createdAt', 'lastUsedAt', 'revokedAt']));
        return;
      }
      case 'keys revoke': {
        if (args.length !== 1) throw new UsageError('keys revoke takes one KEY_ID');
        const a = sessionApi(values, cio);
        const r = await a.call('DELETE', `/v1/accounts/${encodeURIComponent(await accountOf(a, values))}/keys/${encodeURIComponent(args[0]!)}`);
        print(cio, json, r, `revoked ${r.id} (${r.name}); nodes stop accepting it within their cache TTL`);
        return;
      }
      case 'payout-address': {
        if (values.clear === true ? args.length !== 0 : args.length !== 1) throw new UsageError('payout-address takes one address (0x and 40 hex digits), or --clear');
        const address = values.clear === true ? null : args[0]!;
        if (address !== null && !/^0x[0-9a-fA-F]{40}$/.test(address)) throw new UsageError(`"${address}" is not an EVM address (0x and 40 hex digits); make one with cgn wallet new`);
        const a = sessionApi(values, cio);
        const r = await a.call('PUT', `/v1/accounts/${encodeURIComponent(await accountOf(a, values))}/payout-address`, { address });
        print(cio, json, r, address === null ? `${r.name}: no payout address (its earnings are held until it gives one)` : `${r.name} (${r.id}) is paid to ${r.payoutAddress}: nodes register it, and what was held is paid in the next billing cycle`);
        return;
      }
      case 'policy': {
        noArgs();
        const policy: Record<string, number | null> = {};
        for (const [flag, field, nullable] of [['weight', 'weight', false], ['max-concurrent', 'maxConcurrent', true], ['per-second', 'perSecond', true], ['burst', 'burst', true]] as const) {
          const v = quotaFlag(values[flag], `--${flag}`, nullable);
          if (v !== undefined) policy[field] = v;
        }
        if (values.clear === true ? Object.keys(policy).length > 0 : Object.keys(policy).length === 0) throw new UsageError('policy takes --weight, --max-concurrent, --per-second, --burst (one or more), or --clear');
        const a = sessionApi(values, cio);
        const id = encodeURIComponent(await accountOf(a, values));
        // What is not given stays as it is (a quota given as none is removed).
        const current = values.clear === true ? {} : (((await a.call('GET', `/v1/accounts/${id}`)).policy ?? {}) as Record<string, number | null>);
        const merged = Object.fromEntries(Object.entries({ ...current, ...policy }).filter(([, v]) => v !== null));
        const r = await a.call('PATCH', `/v1/accounts/${id}`, { policy: values.clear === true || Object.keys(merged).length === 0 ? null : merged });
        const p = (r.policy ?? null) as Record<string, number | null> | null;
        const words = p === null ? "the nodes' defaults" : Object.entries(p).map(([k, v]) => `${k} ${v ?? 'none'}`).join(', ');
        print(cio, json, r, `${r.name} (${r.id}): ${words}; every node applies it at once`);
        return;
      }
      case 'regions': {
        noArgs();
        const regions = values.region ?? [];
        if (values.clear === true ? regions.length > 0 : regions.length === 0) throw new UsageError('regions takes --region REGION (one or more), or --clear (anywhere)');
        const a = sessionApi(values, cio);
        const id = encodeURIComponent(await accountOf(a, values));
        const r = await a.call('PATCH', `/v1/accounts/${id}`, { allowedRegions: values.clear === true ? null : [...new Set(regions)] });
        const where = r.allowedRegions === null ? 'anywhere' : `only on miners in ${(r.allowedRegions as string[]).join(', ')}`;
        print(cio, json, r, `${r.name} (${r.id}): its work runs ${where}; every node applies it at once`);
        return;
      }
      case 'totp enable': {
        noArgs();
        const r = await sessionApi(values, cio).call('POST', '/v1/me/totp');
        print(cio, json, r, `Add this to your authenticator app (or turn the URI into a QR code):\n\n  ${r.uri}\n\n  secret: ${r.secret}\n\nthen finish with: cgn account totp confirm <current 6-digit code>`);
        return;
      }
      case 'totp confirm': {
        if (args.length !== 1 || !/^\d{6}$/.test(args[0]!)) throw new UsageError('totp confirm takes the current 6-digit code');
        const r = await sessionApi(values, cio).call('POST', '/v1/me/totp/confirm', { code: args[0] });
        print(cio, json, r, `TOTP is on. Recovery codes (each works once; store them somewhere safe, they are not shown again):\n\n${r.recoveryCodes.map((c: string) => `  ${c}`).join('\n')}`);
        return;
      }
      case 'password': {
        noArgs();
        const stdin = values['password-stdin'] ?? false;
        let current: string;
        let next: string;
        if (stdin) {
          const lines = (await cio.readStdin()).split(/\r?\n/);
          if (!lines[0] || !lines[1]) throw new UsageError('--password-stdin: give the current and the new password on two lines');
          [current, next] = [lines[0], lines[1]];
        } else {
          current = await readPassword(cio, { stdin: false, envVar: 'CGN_PASSWORD', prompt: 'current password: ' });
          next = await readPassword(cio, { stdin: false, envVar: 'CGN_NEW_PASSWORD', prompt: 'new password: ' });
        }
        await sessionApi(values, cio).call('PUT', '/v1/me/password', { currentPassword: current, newPassword: next });
        rmSync(sessionPath(values, cio), { force: true });
        print(cio, json, { ok: true }, 'password changed; all sessions ended: log in again');
        return;
      }
      default:
        throw new UsageError(`unknown command "${positionals.join(' ')}"`);
    }
  });
  return finish(code, io !== undefined);
}
