/**
 * Evidence of wrong work, and the node's durable record of it.
 *
 * An evidence record is the JSON of one settled dispute (`DisputeVerdict`) with the miners'
 * staking addresses, or of a miner's repeated CPU over-reports (`OVER_REPORT_KIND`); its evidence hash is keccak256 of the exact UTF-8 JSON text, which is what
 * `Staking.slash(staker, evidenceHash)` puts on chain. Anyone holding the record can recompute
 * the hash and compare it with the `Slashed` event.
 *
 * `EvidenceStore` is an append-only JSON-lines file (`<data dir>/evidence.jsonl`), each line
 * fsynced before anything acts on it: `evidence` lines (the record and its hash) and `slash`
 * lines (the outcome on chain). On open it is replayed: evidence without an outcome is still to be
 * slashed, and every proven cheater stays banned at this node (by miner key and by address).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { keccak256, toBytes, type Address, type Hash, type Hex } from 'viem';
import type { DisputeVerdict } from '../broker/redundancy.js';

export const EVIDENCE_KIND = 'cgn/redundant-result-mismatch';
/** A miner that kept reporting more CPU time than it could have used (see `buildOverReportEvidence`). */
export const OVER_REPORT_KIND = 'cgn/metering-over-report';

export interface EvidenceReplica {
  minerId: string;
  /** The staking address the miner proved at admission; null if it had none. */
  address: Address | null;
  /** 0x + sha256(status u16be || body), computed by the node. */
  resultHash: Hex;
  /** What the miner itself claimed. */
  claimedHash: Hex;
  status: number;
  bodyBytes: number;
  /** ISO time the node received this result. */
  receivedAt: string;
}

export type EvidenceRecord = DisputeEvidenceRecord | OverReportEvidenceRecord;

export interface DisputeEvidenceRecord {
  v: 1;
  kind: typeof EVIDENCE_KIND;
  node: string;
  workId: string;
  dservice: string;
  /** 0x + sha256 over method, path and body (NUL-separated). */
  requestHash: Hex;
  /** ISO time the node received the request. */
  requestReceivedAt: string;
  detectedAt: string;
  /** The three results in the order they arrived. */
  replicas: EvidenceReplica[];
  majorityHash: Hex;
  cheater: { minerId: string; address: Address | null };
}

/** One report above the bound: the node's own measurement beside the miner's word. */
export interface OverReport {
  workId: string;
  dservice: string;
  /** The DService's declared CPUs, which its sandbox is limited to. */
  cpus: number;
  /** Work frame sent to result received, µs, measured by the node. */
  nodeExecUs: number;
  /** What the miner reported, µs. */
  reportedCpuUs: number;
  /** What was billed (the bound), µs. */
  billedCpuUs: number;
  /** ISO time the node received the result. */
  at: string;
}

/**
 * Evidence that a miner reported CPU time it could not have used: each report is more than twice
 * the node-measured execution time x the DService's CPUs (and 10 ms above it). The work ids name
 * ledger records that keep both figures (record format 3) under the hash chain and, once their
 * cycle is sealed, under an anchored batch root.
 */
export interface OverReportEvidenceRecord {
  v: 1;
  kind: typeof OVER_REPORT_KIND;
  node: string;
  /** The last report's work id (the one that completed the evidence). */
  workId: string;
  detectedAt: string;
  reports: OverReport[];
  cheater: { minerId: string; address: Address | null };
}

export interface Evidence {
  record: EvidenceRecord;
  /** keccak256 of the record's JSON text. */
  hash: Hash;
}

const hex0x = (h: string): Hex => (h.startsWith('0x') ? h : `0x${h}`) as Hex;

export function evidenceHash(record: EvidenceRecord): Hash {
  return keccak256(toBytes(JSON.stringify(record)));
}

/** Builds the evidence of a settled dispute (a verdict with a cheater). */
export function buildEvidence(verdict: DisputeVerdict, opts: { node: string; addressOf: (minerId: string) => Address | null; now?: () => number }): Evidence {
  if (verdict.cheater === null || verdict.majorityHash === null) throw new Error(`dispute over ${verdict.workId} has no majority: no evidence against anybody`);
  const record: DisputeEvidenceRecord = {
    v: 1,
    kind: EVIDENCE_KIND,
    node: opts.node,
    workId: verdict.workId,
    dservice: verdict.dservice,
    requestHash: hex0x(verdict.requestHash),
    requestReceivedAt: new Date(verdict.receivedAt).toISOString(),
    detectedAt: new Date((opts.now ?? Date.now)()).toISOString(),
    replicas: verdict.replicas.map((r) => ({
      minerId: r.minerId,
      address: opts.addressOf(r.minerId),
      resultHash: hex0x(r.resultHash),
      claimedHash: hex0x(r.claimedHash),
      status: r.status,
      bodyBytes: r.bodyBytes,
      receivedAt: new Date(r.receivedAt).toISOString(),
    })),
    majorityHash: hex0x(verdict.majorityHash),
    cheater: { minerId: verdict.cheater, address: opts.addressOf(verdict.cheater) },
  };
  return { record, hash: evidenceHash(record) };
}

/** Evidence against a miner whose CPU reports kept exceeding what it could have used. */
export function buildOverReportEvidence(minerId: string, reports: readonly OverReport[], opts: { node: string; addressOf: (minerId: string) => Address | null; now?: () => number }): Evidence {
  if (reports.length === 0) throw new Error('no over-reports: no evidence against anybody');
  const record: OverReportEvidenceRecord = {
    v: 1,
    kind: OVER_REPORT_KIND,
    node: opts.node,
    workId: reports[reports.length - 1]!.workId,
    detectedAt: new Date((opts.now ?? Date.now)()).toISOString(),
    reports: reports.map((r) => ({ ...r })),
    cheater: { minerId, address: opts.addressOf(minerId) },
  };
  return { record, hash: evidenceHash(record) };
}

export type SlashOutcome =
  /** The slash transaction mined. */
  | { status: 'slashed'; tx: Hash; block: string; gasUsed: string; amount: string }
  /** The chain already had this evidence (an earlier run of this node sent it). */
  | { status: 'already-slashed' }
  /** The staker was already slashed to zero and banned (other evidence); nothing left to take. */
  | { status: 'nothing-to-slash' }
  /** The contract refused for good (e.g. the node's key lacks SLASHER_ROLE). */
  | { status: 'refused'; reason: string }
  /** Evidence against a miner without a staking address: banned at this node only. */
  | { status: 'no-stake' };

type Line = { type: 'evidence'; hash: Hash; record: EvidenceRecord } | { type: 'slash'; hash: Hash; at: string; outcome: SlashOutcome };

export class EvidenceStore {
  private readonly evidence = new Map<Hash, EvidenceRecord>();
  private readonly outcomes = new Map<Hash, SlashOutcome>();
  private readonly bannedMiners = new Set<string>();
  private readonly bannedAddresses = new Set<string>();
  private fd: number;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    let raw = Buffer.alloc(0);
    try {
      raw = readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // A torn last line (crash mid-write) was never acted on: cut it so appends start clean.
    const end = raw.lastIndexOf(0x0a) + 1;
    if (end < raw.length) {
      truncateSync(path, end);
      raw = raw.subarray(0, end);
    }
    const text = raw.toString('utf8');
    const lines = text.split('\n');
    lines.forEach((raw, i) => {
      if (raw.trim() === '') return;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        throw new Error(`${path}:${i + 1}: not JSON; the evidence file is damaged`);
      }
      if (line.type === 'evidence') {
        if (evidenceHash(line.record) !== line.hash) throw new Error(`${path}:${i + 1}: evidence ${line.hash} does not match its record`);
        this.remember(line.hash, line.record);
      } else if (line.type === 'slash') this.outcomes.set(line.hash, line.outcome);
    });
    this.fd = openSync(path, 'a');
  }

  /** Stores evidence (durably, before returning). Storing the same evidence again is a no-op. */
  add(e: Evidence): boolean {
    if (this.evidence.has(e.hash)) return false;
    this.append({ type: 'evidence', hash: e.hash, record: e.record });
    this.remember(e.hash, e.record);
    return true;
  }

  setOutcome(hash: Hash, outcome: SlashOutcome): void {
    this.append({ type: 'slash', hash, at: new Date().toISOString(), outcome });
    this.outcomes.set(hash, outcome);
  }

  get(hash: Hash): Evidence | undefined {
    const record = this.evidence.get(hash);
    return record === undefined ? undefined : { record, hash };
  }

  outcome(hash: Hash): SlashOutcome | undefined {
    return this.outcomes.get(hash);
  }

  /** Evidence with no outcome yet (to be slashed), oldest first. */
  pending(): Evidence[] {
    return [...this.evidence].filter(([h]) => !this.outcomes.has(h)).map(([hash, record]) => ({ hash, record }));
  }

  all(): Evidence[] {
    return [...this.evidence].map(([hash, record]) => ({ hash, record }));
  }

  /** Whether this miner key or address was proven to cheat (kept across restarts). */
  isBanned(minerId: string, address: string | null): boolean {
    return this.bannedMiners.has(minerId) || (address !== null && this.bannedAddresses.has(address.toLowerCase()));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private remember(hash: Hash, record: EvidenceRecord): void {
    this.evidence.set(hash, record);
    this.bannedMiners.add(record.cheater.minerId);
    if (record.cheater.address !== null) this.bannedAddresses.add(record.cheater.address.toLowerCase());
  }

  private append(line: Line): void {
    if (this.fd < 0) throw new Error('the evidence store is closed');
    writeSync(this.fd, JSON.stringify(line) + '\n');
    fsyncSync(this.fd);
  }
}
