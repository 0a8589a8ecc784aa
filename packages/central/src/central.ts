/**
 * `startCentral`: opens the store, builds the service and its HTTP API, starts the links to the
 * nodes of the directory, and listens. `stop` closes everything in reverse order.
 */
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { CentralService, type CentralServiceOptions } from './service.js';
import { buildHttpServer, type HttpOptions } from './http/server.js';
import { SqliteCentralStore } from './store/sqlite.js';
import { PostgresCentralStore, type PostgresCentralStoreOptions } from './store/postgres.js';
import type { CentralStore } from './store/store.js';
import { Argon2Hasher, type Argon2Options } from './auth/passwords.js';
import { TokenIssuer, type TokenIssuerOptions } from './auth/tokens.js';
import { GeoIp } from './registry/geoip.js';
import { NodeLinks, type NodeLinksOptions, type LinkTls } from './link/dialer.js';
import { systemClock, type Clock } from './clock.js';
import { fixedLedger, type LedgerSource } from './billing.js';
import type { BillingLedgerStore } from '@cgn/ledger';
import type { Server as HttpsServer } from 'node:https';
import { loadTlsPair, watchTlsFiles, type TlsFiles } from '@cgn/protocol';
import { OpsCollector, type OpsCollectorOptions } from './ops/collector.js';
import { PackageStore } from './packages/package-store.js';

export interface CentralOptions {
  host?: string;
  /** 0 = any free port. Default 7700. */
  port?: number;
  /** Directory of the SQLite database (`central.sqlite`). Default `.cgn/central`. Ignored when `store` or `postgres` is given. */
  dataDir?: string;
  /**
   * Keep the data in PostgreSQL instead of SQLite: a connection URL, or the store's options
   * (schema, default `cgn_central`; pool size). Ignored when `store` is given.
   */
  postgres?: string | PostgresCentralStoreOptions;
  store?: CentralStore;
  clock?: Clock;
  argon2?: Argon2Options;
  tokens?: TokenIssuerOptions;
  /** GeoIP CSV file (default: the shipped table). */
  geoipFile?: string;
  /** The link to the nodes: certificates, timings. Without it, central does not dial nodes. */
  link?: { tls: LinkTls } & Omit<NodeLinksOptions, 'tls' | 'clock' | 'log'>;
  http?: Omit<HttpOptions, 'logger' | 'linkStatus' | 'ledger'>;
  /** Serve the API over HTTPS from these PEM files, reloaded when they change (replaces `http.https`). */
  tls?: TlsFiles;
  /**
   * The metering ledger the usage, invoice and earnings routes read (without it they answer 503):
   * a store (stays the caller's: central does not close it), or a `LedgerSource` such as
   * `sqliteLedger(path)` (opened read-only on first use, so the file may not exist yet) or
   * `postgresLedger(options)`, which central closes when it stops.
   */
  ledger?: BillingLedgerStore | LedgerSource;
  service?: Omit<CentralServiceOptions, 'clock' | 'hasher' | 'tokens' | 'geoip'>;
  /** Creates the system account and this administrator if the store has no users. */
  bootstrapAdmin?: { login: string; password: string };
  /**
   * The operator dashboard's polls of the nodes' status and metrics (default: every 5 s, 1 h kept;
   * https URLs trusted with the link's CA) and a block explorer's transaction URL with `{tx}`.
   * false: no polling.
   */
  ops?: (OpsCollectorOptions & { explorerTxUrl?: string }) | false;
  log?: Logger;
}

export interface RunningCentral {
  url: string;
  port: number;
  service: CentralService;
  store: CentralStore;
  links: NodeLinks | null;
  /** The dashboard's node collector, or null (`ops: false`). */
  ops: OpsCollector | null;
  /** Whether this start created the first administrator (`bootstrapAdmin`). */
  adminCreated: boolean;
  stop(): Promise<void>;
}

export async function startCentral(options: CentralOptions = {}): Promise<RunningCentral> {
  const clock = options.clock ?? systemClock;
  const pg = typeof options.postgres === 'string' ? { url: options.postgres } : options.postgres;
  const store: CentralStore = options.store
    ?? (pg !== undefined ? await PostgresCentralStore.open(pg) : new SqliteCentralStore({ path: join(options.dataDir ?? '.cgn/central', 'central.sqlite') }));
  try {
    return await startOn(store, clock, options);
  } catch (err) {
    // A store this call opened is closed again (a PostgreSQL pool would keep the process alive).
    if (options.store === undefined) await store.close();
    throw err;
  }
}

async function startOn(store: CentralStore, clock: Clock, options: CentralOptions): Promise<RunningCentral> {
  const service = new CentralService(store, {
    ...options.service,
    clock,
    hasher: new Argon2Hasher(options.argon2),
    tokens: new TokenIssuer(store, clock, options.tokens),
    geoip: options.geoipFile === undefined ? GeoIp.fromFile() : GeoIp.fromFile(options.geoipFile),
  });
  await service.init();
  service.packages = new PackageStore(join(options.dataDir ?? '.cgn/central', 'packages'));
  const boot = options.bootstrapAdmin ? await service.bootstrapAdmin(options.bootstrapAdmin.login, options.bootstrapAdmin.password) : { created: false };

  let links: NodeLinks | null = null;
  if (options.link) {
    const { tls, ...rest } = options.link;
    links = new NodeLinks(service, { ...rest, tls, clock, ...(options.log ? { log: options.log } : {}) });
  }
  const ledger: LedgerSource | undefined =
    options.ledger === undefined ? undefined : 'appendBatch' in options.ledger ? fixedLedger(options.ledger) : options.ledger;
  const pair = options.tls === undefined ? undefined : loadTlsPair(options.tls);
  const { explorerTxUrl, ...opsOptions } = options.ops === false ? {} : options.ops ?? {};
  const ops = options.ops === false ? null : new OpsCollector({ listNodes: async () => store.listNodes(), clock }, {
    ...(options.link ? { ca: options.link.tls.ca } : {}),
    ...opsOptions,
  });
  const { app } = await buildHttpServer(service, {
    ...options.http,
    ...(pair !== undefined ? { https: pair } : {}),
    ...(ledger ? { ledger } : {}),
    ...(options.log ? { logger: options.log } : {}),
    ...(links ? { linkStatus: () => links!.status() } : {}),
    ops: { collector: ops, ...(explorerTxUrl !== undefined ? { explorerTxUrl } : {}) },
  });
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 7700 });
  const port = (app.server.address() as AddressInfo).port;
  const url = `${options.http?.https || pair ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const unwatchTls = options.tls === undefined ? () => {} : watchTlsFiles(options.tls, [app.server as unknown as HttpsServer], (level, msg, fields) => options.log?.[level](fields, msg));
  await links?.start();
  ops?.start();
  options.log?.info({ url, links: links !== null }, 'central started');

  let stopping: Promise<void> | null = null;
  return {
    url, port, service, store, links, ops, adminCreated: boot.created,
    stop: () =>
      (stopping ??= (async () => {
        unwatchTls();
        ops?.stop();
        await links?.stop();
        await app.close();
        await ledger?.close();
        await store.close();
      })()),
  };
}
