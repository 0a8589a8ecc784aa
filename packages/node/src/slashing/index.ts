/**
 * The open tier's stake and slashing side of a node, assembled from the node options:
 *
 * - `checkAdvert`: the miner endpoint asks it before an `open`-tier miner joins the pool
 *   (`OpenTierGate`); other tiers are not checked (null: no wait, no cost).
 * - `onDispute`: the broker reports a settled dispute; the evidence is stored (fsynced), the
 *   cheater is banned at this node at once, and the slasher sends `Staking.slash` on chain.
 * - `onOverReport`: the work endpoint reports an open-tier miner's gross CPU over-report; a
 *   pattern of them (over-reports.ts) becomes evidence, handled like a dispute's.
 * - a timer re-checks admitted open-tier miners every `refreshMs` and drops the ineligible ones.
 *
 * Without a chain (`staking: null`) but with redundancy on, cheaters are still caught, recorded
 * and banned at this node; nothing is slashed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hex } from 'viem';
import type { AdvertiseFrame } from '@cgn/protocol';
import { addressesFromJson, CgnContracts, connect } from '@cgn/chain';
import type { DisputeVerdict } from '../broker/redundancy.js';
import type { Logger } from '../log.js';
import { buildEvidence, buildOverReportEvidence, EvidenceStore, type Evidence, type OverReport } from './evidence.js';
import { OverReportTally } from './over-reports.js';
import { OpenTierGate, stakeReader } from './open-tier.js';
import { Slasher } from './slasher.js';

export { buildEvidence, buildOverReportEvidence, evidenceHash, EvidenceStore, EVIDENCE_KIND, OVER_REPORT_KIND, type Evidence, type EvidenceRecord, type OverReport, type SlashOutcome } from './evidence.js';
export { OVER_REPORT_RULE, OverReportTally, type OverReportRule } from './over-reports.js';
export { OpenTierGate, stakeReader, type Admission, type StakeReader } from './open-tier.js';
export { Slasher } from './slasher.js';

export interface StakingOptions {
  /** JSON-RPC endpoint of the chain. */
  rpcUrl: string;
  /** Contract addresses as written at deployment (`cgn dev` writes `.cgn/dev/chain-contracts.json`). */
  contractsFile: string;
  /** Private key holding SLASHER_ROLE; null: cheaters are banned at this node but not slashed. */
  slasherKey: Hex | null;
  /** How often admitted open-tier miners are re-checked on chain, ms. Default 30000. */
  refreshMs: number;
}

export interface OpenTier {
  gate: OpenTierGate;
  store: EvidenceStore;
  slasher: Slasher | null;
  contracts: CgnContracts | null;
  /** For the miner endpoint: null when nothing is to be checked, else the refusal reason or null. */
  checkAdvert(minerId: string, ad: AdvertiseFrame): Promise<string | null> | null;
  /** For the broker. */
  onDispute(verdict: DisputeVerdict): void;
  /**
   * For the work endpoint: an open-tier miner grossly over-reported CPU time (charge-bound.ts).
   * True when that completed evidence against it (it is banned: drop it).
   */
  onOverReport(minerId: string, report: OverReport): boolean;
  /** Starts the periodic re-check; `drop` takes a miner out (error frame, tunnel closed). */
  start(drop: (minerId: string, reason: string) => void): void;
  status(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startOpenTier(opts: { nodeId: string; dataDir: string; staking: StakingOptions | null; log: Logger }): Promise<OpenTier> {
  const { log, staking } = opts;
  const store = new EvidenceStore(join(opts.dataDir, 'evidence.jsonl'));
  let contracts: CgnContracts | null = null;
  if (staking !== null) {
    let addresses;
    try {
      addresses = addressesFromJson(readFileSync(staking.contractsFile, 'utf8'));
    } catch (err) {
      throw new Error(`option staking.contractsFile: cannot read ${staking.contractsFile}: ${(err as Error).message}`);
    }
    const clients = await connect({ rpcUrl: staking.rpcUrl, chainId: addresses.chainId, ...(staking.slasherKey !== null ? { privateKey: staking.slasherKey } : {}) });
    contracts = new CgnContracts(clients, addresses);
  }
  const gate = new OpenTierGate(store, contracts === null ? null : stakeReader(contracts), { cacheMs: Math.min(10_000, staking?.refreshMs ?? 10_000) });
  const slasher = contracts !== null && staking?.slasherKey != null ? new Slasher(contracts, store, log) : null;
  if (contracts !== null && slasher === null) log.warn({}, 'no slasher key: proven cheaters are banned at this node but their stake is not slashed');
  for (const e of store.pending()) slasher?.enqueue(e.hash);
  const overReports = new OverReportTally();
  /** Stores evidence (fsynced), bans the cheater at this node and queues the slash; false if it could not be stored. */
  const convict = (evidence: Evidence, what: string): boolean => {
    try {
      store.add(evidence);
    } catch (err) {
      log.error({ err, evidence: evidence.hash }, 'could not store evidence; the cheater is dropped but not slashed');
      return false;
    }
    gate.forget(evidence.record.cheater.minerId);
    log.warn({ evidence: evidence.hash, work: evidence.record.workId, miner: evidence.record.cheater.minerId.slice(0, 16), address: evidence.record.cheater.address }, `evidence of ${what} stored; miner banned from the open tier`);
    slasher?.enqueue(evidence.hash);
    return true;
  };
  let timer: ReturnType<typeof setInterval> | null = null;

  return {
    gate,
    store,
    slasher,
    contracts,
    checkAdvert(minerId, ad) {
      if (ad.tier !== 'open') {
        gate.forget(minerId);
        return null;
      }
      return gate.admit(minerId, ad).then(
        (a) => {
          if (a.ok) log.info({ miner: minerId.slice(0, 16), address: a.address }, 'miner admitted to the open tier');
          else log.warn({ miner: minerId.slice(0, 16), reason: a.reason }, 'miner refused from the open tier');
          return a.ok ? null : a.reason;
        },
        (err: unknown) => {
          log.error({ miner: minerId.slice(0, 16), err: (err as Error).message }, 'open tier stake check failed');
          return `open tier refused: the stake could not be checked right now (${(err as Error).message.split('\n')[0]}); try again later`;
        },
      );
    },
    onDispute(verdict) {
      if (verdict.cheater === null) {
        log.warn({ work: verdict.workId, dservice: verdict.dservice, results: verdict.replicas.map((r) => r.resultHash.slice(0, 12)) }, 'three miners returned three different results; nobody blamed');
        return;
      }
      convict(buildEvidence(verdict, { node: opts.nodeId, addressOf: (id) => gate.addressOf(id) }), 'wrong work');
    },
    onOverReport(minerId, report) {
      const reports = overReports.add(minerId, report);
      if (reports === null) return false;
      return convict(buildOverReportEvidence(minerId, reports, { node: opts.nodeId, addressOf: (id) => gate.addressOf(id) }), `${reports.length} CPU over-reports`);
    },
    start(drop) {
      if (staking === null) return;
      timer = setInterval(() => {
        gate.refresh().then(
          (gone) => {
            for (const g of gone) drop(g.minerId, g.reason);
          },
          (err: unknown) => log.warn({ err: (err as Error).message }, 'open tier re-check failed; will try again'),
        );
      }, staking.refreshMs);
      timer.unref();
    },
    status() {
      return {
        stakeChecks: contracts !== null,
        slashing: slasher !== null,
        gate: gate.counters,
        evidence: store.all().slice(-20).map((e) => ({ hash: e.hash, kind: e.record.kind, work: e.record.workId, cheater: e.record.cheater, outcome: store.outcome(e.hash) ?? { status: 'pending' } })),
        ...(slasher ? { slasher: slasher.counters } : {}),
      };
    },
    async stop() {
      if (timer !== null) clearInterval(timer);
      await slasher?.stop();
      store.close();
    },
  };
}
