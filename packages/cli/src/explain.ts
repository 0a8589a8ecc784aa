/**
 * `cgn explain --dservice NAME [--account A] [--tier T]`: why work of a DService would (not) run
 * now, asked of a node (`GET /v1/explain`), in the words a refused request gets.
 */
import { readFileSync, existsSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { parseArgs } from 'node:util';
import { Agent, fetch } from 'undici';

const USAGE = `Usage: cgn explain --dservice NAME [--tier open|attested|dedicated] [--account ACCOUNT] [--node URL] [--json]

Asks a node why work of a DService would or would not run now: whether any connected miner runs
it in the tier with the memory its descriptor asks for, the queue, and the account's quotas.
The same reason a refused request gets in its problem+json.

  --dservice NAME   the DService (required)
  --tier T          the tier (default: the node's default tier)
  --account A       also check this account's quotas and regions; the node asks for a
                    credential: the account's API key or the node's operator (metrics) token
  --api-key KEY     an API key of that account (default: $CGN_API_KEY, else each demo key of
                    .cgn/dev.json in turn)
  --token TOKEN     the node's operator token, its --metrics-token (default: $CGN_METRICS_TOKEN)
  --node URL        the node's work/status base URL (default: the node of .cgn/dev.json)
  --dev-json FILE   where cgn dev wrote its state (default .cgn/dev.json)
  --ca-file FILE    CA certificate the node's HTTPS certificate is signed by (default: dev.json's)
  --json            print the diagnosis as JSON

Exit status: 0 when work would run (at once or queued), 1 when it would be refused, 2 on a usage
or connection error.
`;

export interface ExplainAnswer {
  dservice: string;
  tier: string;
  account: string | null;
  runnable: boolean;
  reason: string | null;
  message: string;
  needs: { memoryMb: number } | null;
  miners: { advertising: number; byTier: Record<string, number>; eligible: number; freeSlots: number; largestMemoryMb: number | null };
  queue: { depth: number; accounts: number; oldestMs: number; accountDepth: number | null };
  quota: { inFlight: number; maxConcurrent: number | null; perSecond: number | null; burst: number | null; tokens: number | null; refused: string | null } | null;
}

/** The diagnosis as a few lines for a person. */
export function formatExplain(d: ExplainAnswer): string {
  const lines = [`${d.dservice} (${d.tier} tier${d.account === null ? '' : `, account ${d.account}`}): ${d.runnable ? 'would run' : `refused — ${d.reason}`}`, `  ${d.message}`];
  const tiers = Object.entries(d.miners.byTier).map(([t, n]) => `${t} ${n}`).join(', ');
  lines.push(`  miners running it: ${d.miners.advertising} (${tiers}); able to take it: ${d.miners.eligible}, ${d.miners.freeSlots} slot(s) free now`);
  if (d.needs !== null) lines.push(`  needs ${d.needs.memoryMb} MB of memory; largest ${d.tier}-tier miner: ${d.miners.largestMemoryMb === null ? 'none' : `${d.miners.largestMemoryMb} MB`}`);
  lines.push(`  queue: ${d.queue.depth} waiting from ${d.queue.accounts} account(s)${d.queue.depth > 0 ? `, next has waited ${Math.round(d.queue.oldestMs)} ms` : ''}${d.queue.accountDepth === null ? '' : `; ${d.queue.accountDepth} of them this account's`}`);
  if (d.quota !== null) {
    const q = d.quota;
    lines.push(`  quotas: ${q.inFlight} in flight of ${q.maxConcurrent ?? 'unlimited'} concurrent; ${q.perSecond === null ? 'no rate quota' : `${q.perSecond}/s (burst ${q.burst}, ${q.tokens} left now)`}${q.refused === null ? '' : ` — at its ${q.refused} quota`}`);
  }
  return lines.join('\n') + '\n';
}

export async function runExplainFromArgs(argv: string[], io: { out: (s: string) => void; err: (s: string) => void } = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) }): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        dservice: { type: 'string' }, tier: { type: 'string' }, account: { type: 'string' }, node: { type: 'string' },
        'api-key': { type: 'string' }, token: { type: 'string' },
        'dev-json': { type: 'string' }, 'ca-file': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    io.err(`cgn explain: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values['help'] === true) {
    io.out(USAGE);
    return 0;
  }
  const dservice = values['dservice'] as string | undefined;
  if (dservice === undefined) {
    io.err(`cgn explain: say which DService with --dservice NAME\n\n${USAGE}`);
    return 2;
  }
  let base = values['node'] as string | undefined;
  let caFile = values['ca-file'] as string | undefined;
  const devJson = (values['dev-json'] as string | undefined) ?? '.cgn/dev.json';
  const dev = existsSync(devJson) ? (JSON.parse(readFileSync(devJson, 'utf8')) as { statusUrl: string; caFile: string | null; apiKeys?: string[] }) : null;
  if (base === undefined) {
    if (dev === null) {
      io.err(`cgn explain: no --node URL and no ${devJson} (start a network with cgn dev, or give --node http(s)://HOST:PORT)\n`);
      return 2;
    }
    base = dev.statusUrl.replace(/\/v1\/status$/, '');
    caFile ??= dev.caFile ?? undefined;
  }
  // An account's part is the account's (its key) or the operator's (the token): what to offer, in turn.
  const given = [values['api-key'], values['token'], process.env['CGN_API_KEY'], process.env['CGN_METRICS_TOKEN']].filter((x): x is string => typeof x === 'string' && x !== '');
  const credentials: (string | null)[] = typeof values['account'] !== 'string' ? [null] : given.length > 0 ? given : dev?.apiKeys !== undefined && dev.apiKeys.length > 0 ? dev.apiKeys : [null];
  const url = new URL('/v1/explain', base.replace(/\/v1\/(d\/?|status)?$/, '/'));
  url.searchParams.set('dservice', dservice);
  if (typeof values['tier'] === 'string') url.searchParams.set('tier', values['tier']);
  if (typeof values['account'] === 'string') url.searchParams.set('account', values['account']);
  const dispatcher = caFile === undefined ? undefined : new Agent({ connect: { ca: [readFileSync(caFile, 'utf8'), ...rootCertificates] } });
  try {
    let res!: Awaited<ReturnType<typeof fetch>>;
    let body!: ExplainAnswer & { detail?: string };
    for (const c of credentials) {
      res = await fetch(url, { ...(dispatcher === undefined ? {} : { dispatcher }), ...(c === null ? {} : { headers: { authorization: `Bearer ${c}` } }) });
      body = (await res.json()) as ExplainAnswer & { detail?: string };
      if (res.status !== 401 && res.status !== 403) break;
    }
    if (!res.ok) {
      io.err(`cgn explain: the node answered ${res.status}: ${body.detail ?? JSON.stringify(body)}\n`);
      return 2;
    }
    io.out(values['json'] === true ? `${JSON.stringify(body, null, 2)}\n` : formatExplain(body));
    return body.runnable ? 0 : 1;
  } catch (err) {
    io.err(`cgn explain: could not ask ${url.origin}: ${(err as Error).message}${caFile === undefined && url.protocol === 'https:' ? ' (an HTTPS node with a local CA needs --ca-file)' : ''}\n`);
    return 2;
  } finally {
    await dispatcher?.close();
  }
}
