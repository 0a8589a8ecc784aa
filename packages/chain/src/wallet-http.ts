/**
 * A small read-only HTTP API over the chain (`cgn wallet serve`): the wallet/history view of an
 * address and the validator set of an epoch. It holds no keys and writes nothing, so it can face
 * dashboards and miners' control pages.
 *
 *   GET /v1/wallet/{address}[?fromBlock=N]   balances, stake, candidacy, claims per cycle, history
 *   GET /v1/validators[?epoch=N][&round=R]   the epoch's set (default: the latest), seed, proposer of round R
 *   GET /healthz                             chain id and newest block
 *
 * Answers are JSON with amounts as decimal strings (token base units). Errors are RFC 9457
 * `application/problem+json`: 400 for a malformed address or number, 404 for an unknown path,
 * 405 for a method other than GET/HEAD, 502 when the chain endpoint fails.
 *
 * `handleWalletRequest` is the routing without a server, so a Fastify or node:http server
 * elsewhere (central's control API, say) can mount the same routes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getAddress, isAddress, type Address } from 'viem';
import type { CgnPublicClient } from './clients.js';
import type { ChainAddresses } from './contracts.js';
import { validatorSetOf } from './validator-set.js';
import { walletView } from './wallet-view.js';

export interface WalletApiContext {
  client: CgnPublicClient;
  addresses: ChainAddresses;
  /** Blocks per getLogs request (default 10,000). */
  pageBlocks?: bigint;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const TITLES: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error', 502: 'Bad Gateway' };

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const json = (status: number, body: unknown): HttpAnswer => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
});

function problem(p: HttpProblem): HttpAnswer {
  return {
    status: p.status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...(p.status === 405 ? { allow: 'GET, HEAD' } : {}) },
    body: JSON.stringify({ type: `urn:cgn:problem:${p.code}`, title: TITLES[p.status] ?? 'Error', status: p.status, detail: p.message, code: p.code }),
  };
}

/** The checksummed address, or a 400 naming what is wrong. */
export function parseAddressParam(raw: string): Address {
  if (!/^0x[0-9a-fA-F]{40}$/.test(raw)) throw new HttpProblem(400, 'bad_request', `"${raw.slice(0, 100)}" is not an address: expected 0x followed by 40 hex digits`);
  if (!isAddress(raw)) throw new HttpProblem(400, 'bad_request', `${raw} has mixed case that is not a valid EIP-55 checksum (a typo?); give it all lower case to skip the check`);
  return getAddress(raw);
}

function uint(raw: string | null, name: string): bigint | undefined {
  if (raw === null) return undefined;
  if (!/^\d{1,20}$/.test(raw)) throw new HttpProblem(400, 'bad_request', `${name} must be a non-negative integer, got "${raw.slice(0, 40)}"`);
  return BigInt(raw);
}

/** Routes one request. Never throws: failures become problem answers. */
export async function handleWalletRequest(ctx: WalletApiContext, method: string, rawUrl: string): Promise<HttpAnswer> {
  try {
    const url = new URL(rawUrl, 'http://localhost');
    const path = url.pathname;
    const known = path === '/healthz' || path === '/v1/validators' || path.startsWith('/v1/wallet/');
    if (!known) throw new HttpProblem(404, 'not_found', `no route ${path}; try /v1/wallet/{address}, /v1/validators or /healthz`);
    if (method !== 'GET' && method !== 'HEAD') throw new HttpProblem(405, 'method_not_allowed', `${method} is not allowed: this API is read-only (GET)`);
    if (path.startsWith('/v1/wallet/')) {
      const rest = decodeURIComponent(path.slice('/v1/wallet/'.length));
      const address = parseAddressParam(rest);
      const fromBlock = uint(url.searchParams.get('fromBlock'), 'fromBlock');
      const view = await chainCall(() =>
        walletView(ctx.client, ctx.addresses, address, { ...(fromBlock !== undefined ? { fromBlock } : {}), ...(ctx.pageBlocks !== undefined ? { pageBlocks: ctx.pageBlocks } : {}) }),
      );
      return json(200, view);
    }
    if (path === '/v1/validators') {
      const epoch = uint(url.searchParams.get('epoch'), 'epoch');
      const round = uint(url.searchParams.get('round'), 'round') ?? 0n;
      const set = await chainCall(() => validatorSetOf(ctx.client, ctx.addresses.election, epoch));
      return json(200, { epoch: set.epoch, elected: set.elected, seed: set.seed, validators: set.validators, round, proposer: set.validators.length > 0 ? set.proposer(round) : null });
    }
    const block = await chainCall(() => ctx.client.getBlockNumber({ cacheTime: 0 }));
    return json(200, { ok: true, chainId: ctx.addresses.chainId, block });
  } catch (err) {
    if (err instanceof HttpProblem) return problem(err);
    return problem(new HttpProblem(500, 'internal', 'internal error'));
  }
}

async function chainCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HttpProblem) throw err;
    throw new HttpProblem(502, 'chain_unavailable', `the chain endpoint failed: ${((err as Error).message ?? String(err)).split('\n')[0]}`);
  }
}

export interface WalletServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serves the routes on `host:port` (default 127.0.0.1, a free port). */
export function startWalletServer(ctx: WalletApiContext, opts: { host?: string; port?: number } = {}): Promise<WalletServer> {
  const server = createServer((req, res) => {
    void handleWalletRequest(ctx, req.method ?? 'GET', req.url ?? '/').then((a) => {
      res.writeHead(a.status, { ...a.headers, 'content-length': Buffer.byteLength(a.body) });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    });
  });
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
        server,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
