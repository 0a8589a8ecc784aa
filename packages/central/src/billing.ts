/**
 * Usage, invoices and earnings over central's HTTP API, read from the nodes' metering ledger
 * (`@cgn/ledger`). The numbers come from the ledger's own report functions (`usageReport`,
 * `invoiceReport`, `invoiceList`, `beneficiaryEarnings`) — the ones `cgn ledger usage|invoice|
 * earnings` print — so the HTTP API and the CLI show the same numbers. Amounts are decimal strings.
 *
 * Central's account ids are what nodes record as a microtransaction's `account` (the node records
 * the account of the key central vouched for), and a miner's id (its public key, lower-case hex)
 * is the record's `miner`, so no mapping is needed.
 *
 * Who may read (least privilege: money is the account owner's business):
 * * an account's usage and invoices: staff (administrator, operator, monitor) and the account's
 *   owner; other users of the account (e.g. its end users) may not;
 * * a miner's earnings: staff and the owner of the miner's operator account.
 *
 * The ledger is optional: without one these routes answer 503. A ledger given as a path is opened
 * lazily (read-only) on the first request that needs it, so central may start before the node has
 * created the file; until the file exists (or while it cannot be opened) the routes answer 503 and
 * the next request tries again.
 */
import { existsSync } from 'node:fs';
import { CgnError } from '@cgn/protocol';
import {
  PostgresLedgerStore, SqliteLedgerStore, beneficiaryEarnings, invoiceList, invoiceReport, parseDay, reportJson, usageReport, usageTotal,
  type BillingLedgerStore, type PostgresLedgerStoreOptions, type UsageFilter,
} from '@cgn/ledger';
import { CentralError, forbidden, notFound } from './errors.js';
import { CentralService, type Actor, type Ctx } from './service.js';

/** Where central reads the ledger from. `get` throws a 503 `CentralError` while it is not available. */
export interface LedgerSource {
  readonly description: string;
  get(): Promise<BillingLedgerStore>;
  /** Closes what the source opened (a store handed in stays its owner's). */
  close(): Promise<void>;
}

const unavailable = (message: string): CentralError => new CentralError('unavailable', message, { retryAfterS: 5 });

/** A store someone else opened (and closes). */
export function fixedLedger(store: BillingLedgerStore, description = 'the given ledger store'): LedgerSource {
  return { description, get: async () => store, close: async () => undefined };
}

/** Opens a store on first use and keeps it; a failed open is retried on the next call. */
class LazyLedger implements LedgerSource {
  private store: Promise<BillingLedgerStore> | null = null;
  private closed = false;

  constructor(readonly description: string, private readonly open: () => Promise<BillingLedgerStore>) {}

  get(): Promise<BillingLedgerStore> {
    if (this.closed) return Promise.reject(unavailable('central is shutting down'));
    if (this.store === null) {
      const p = this.open();
      this.store = p;
      p.catch(() => {
        if (this.store === p) this.store = null;
      });
    }
    return this.store;
  }

  async close(): Promise<void> {
    this.closed = true;
    const p = this.store;
    this.store = null;
    if (p !== null) await (await p.catch(() => null))?.close();
  }
}

/**
 * The SQLite ledger file a node writes (`.cgn/node/ledger.sqlite`), opened read-only on first use.
 * The file need not exist yet: until it does, requests get a 503 saying so.
 */
export function sqliteLedger(path: string): LedgerSource {
  return new LazyLedger(`SQLite ledger ${path}`, async () => {
    if (!existsSync(path)) throw unavailable(`the ledger ${path} does not exist yet (the node creates it when it starts); try again later`);
    try {
      return new SqliteLedgerStore({ path, readonly: true });
    } catch (err) {
      throw unavailable(`cannot open the ledger ${path}: ${(err as Error).message}`);
    }
  });
}

/** A PostgreSQL ledger, connected on first use (the store has no read-only mode: central only reads). */
export function postgresLedger(options: PostgresLedgerStoreOptions): LedgerSource {
  return new LazyLedger(`PostgreSQL ledger (schema ${options.schema ?? 'cgn_ledger'})`, async () => {
    try {
      return await PostgresLedgerStore.open({ max: 2, ...options });
    } catch (err) {
      throw unavailable(`cannot connect to the PostgreSQL ledger: ${(err as Error).message}`);
    }
  });
}

export const NO_LEDGER_MESSAGE =
  'central has no ledger to read usage, invoices and earnings from: start it with --ledger PATH (the node\'s ledger.sqlite) or --ledger-postgres URL';

export interface UsageQuery {
  by?: string;
  /** `YYYY-MM-DD` (UTC) or epoch ms; inclusive. */
  from?: string;
  /** `YYYY-MM-DD` (UTC) or epoch ms; exclusive. */
  to?: string;
  dservice?: string;
  cycle?: string;
}

/** `YYYY-MM-DD` (UTC midnight) or epoch milliseconds. */
function instant(name: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = /^[0-9]{1,16}$/.test(s) ? Number(s) : parseDay(s);
  if (t === undefined || !Number.isSafeInteger(t)) throw new CentralError('bad_request', `${name} must be a date YYYY-MM-DD or epoch milliseconds, not "${s}"`);
  return t;
}

function cycleNumber(s: string): number {
  const n = Number(s);
  if (!/^[0-9]{1,9}$/.test(s) || n < 1) throw new CentralError('bad_request', `cycle must be a whole number >= 1 or "latest", not "${s}"`);
  return n;
}

/** The ledger's errors as central's. */
async function fromLedger<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof CentralError || !(err instanceof CgnError)) throw err;
    if (err.code === 'not_found') throw new CentralError('not_found', err.message);
    if (err.code === 'bad_request') throw new CentralError('bad_request', err.message);
    throw err;
  }
}

export class BillingReports {
  constructor(
    private readonly svc: CentralService,
    private readonly ledger: LedgerSource | null,
  ) {}

  get available(): boolean {
    return this.ledger !== null;
  }

  private async store(): Promise<BillingLedgerStore> {
    if (this.ledger === null) throw unavailable(NO_LEDGER_MESSAGE);
    return this.ledger.get();
  }

  private static isOwner(actor: Actor, accountId: string): boolean {
    return actor.kind === 'session' && actor.user.role === 'user' && actor.user.accountId === accountId && actor.user.owner;
  }

  /** Staff, or the owner of the account; then the account must exist. */
  private async mayRead(actor: Actor, accountId: string, what: string, ctx: Ctx): Promise<void> {
    if (!CentralService.isStaff(actor) && !BillingReports.isOwner(actor, accountId)) {
      await this.svc.audit({ type: 'access_denied', actor: actor.kind === 'session' ? actor.user.id : actor.kind === 'key' ? actor.key.id : actor.keyId, accountId, ip: ctx.ip, outcome: 'denied', details: { what } });
      throw forbidden(`not allowed: ${what} (staff and the account owner only)`);
    }
    if ((await this.svc.store.getAccount(accountId)) === undefined) throw notFound(`account ${accountId}`);
  }

  /** The account's usage and cost grouped by DService, end user, day or tier (`usageReport`), with the total. */
  async usage(actor: Actor, accountId: string, q: UsageQuery, ctx: Ctx) {
    await this.mayRead(actor, accountId, `read the usage of account ${accountId}`, ctx);
    const from = instant('from', q.from);
    const to = instant('to', q.to);
    const filter: UsageFilter = {
      account: accountId,
      ...(q.dservice === undefined ? {} : { dservice: q.dservice }),
      ...(q.cycle === undefined ? {} : { cycle: cycleNumber(q.cycle) }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
    };
    const store = await this.store();
    const r = await fromLedger(() => usageReport(store, q.by ?? 'dservice', filter));
    return reportJson({ account: accountId, ...r, total: usageTotal(r.lines) });
  }

  /** The account's invoice for every closed (sealed) billing cycle, oldest first (`invoiceList`). */
  async invoices(actor: Actor, accountId: string, ctx: Ctx) {
    await this.mayRead(actor, accountId, `read the invoices of account ${accountId}`, ctx);
    const store = await this.store();
    return reportJson({ account: accountId, invoices: await fromLedger(() => invoiceList(store, accountId)) });
  }

  /** The account's invoice for one closed cycle, or the last (`latest`), with usage per DService (`invoiceReport`). */
  async invoice(actor: Actor, accountId: string, cycle: string, ctx: Ctx) {
    await this.mayRead(actor, accountId, `read the invoices of account ${accountId}`, ctx);
    const id = cycle === 'latest' ? undefined : cycleNumber(cycle);
    const store = await this.store();
    return reportJson(await fromLedger(() => invoiceReport(store, accountId, id)));
  }

  /** What a miner earned in every closed cycle (`beneficiaryEarnings` of role miner), with payout proofs. */
  async minerEarnings(actor: Actor, minerId: string, ctx: Ctx) {
    const m = await this.svc.store.getMiner(minerId.toLowerCase());
    if (m === undefined) throw notFound(`miner ${minerId}`);
    await this.mayRead(actor, m.accountId, `read the earnings of miner ${m.id}`, ctx);
    const store = await this.store();
    return reportJson({ miner: m.id, account: m.accountId, cycles: await fromLedger(() => beneficiaryEarnings(store, 'miner', m.id)) });
  }
}
