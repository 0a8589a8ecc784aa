/**
 * A work unit: one DApp request while the broker owns it.
 */
import type { Body, CgnError, HeaderList, ResultFrame, Tier } from '@cgn/protocol';

export type WorkState = 'queued' | 'sent' | 'done';

export type WorkOutcome =
  /** `nodeExecUs`: work frame sent to result received, measured by the node (not the miner's word). */
  | { kind: 'result'; result: ResultFrame; minerId: string; nodeExecUs: number }
  | { kind: 'error'; error: CgnError };

export interface WorkRequest {
  id: string;
  account: string;
  dservice: string;
  tier: Tier;
  method: string;
  path: string;
  headers: HeaderList;
  /** Kept in the chunks it arrived in (see `Body`). */
  body: Body;
  /** Milliseconds from arrival until the node gives up with 504. */
  timeoutMs: number;
}

/** Units the broker holds (queued or running) for one (DService, tier): without regions, and per fence. */
export interface HeldTally {
  anywhere: number;
  fences: Map<ReadonlySet<string>, number>;
}

export interface WorkUnit extends WorkRequest {
  /** Clock time the node received it. */
  receivedAt: number;
  /** Absolute clock time of the deadline. */
  deadline: number;
  /** Clock time it was last handed to a miner (0 while queued). */
  sentAt: number;
  /** Total time spent waiting in a queue, ms (summed over requeues). */
  queuedMs: number;
  /** Clock time it entered its current queue wait. */
  enqueuedAt: number;
  /** How many miners it was handed to. */
  attempts: number;
  acked: boolean;
  state: WorkState;
  minerId: string | null;
  /** Miners that already failed this unit (not tried again while others are free). */
  failedOn: string[] | null;
  /**
   * Miners this unit must never run on (hard, unlike `failedOn`); null for ordinary units. Set for
   * the replicas of a redundant run (`redundancy.ts`): one set shared by the replicas, grown by
   * the broker with every miner a replica is sent to, so each replica runs on a distinct miner.
   */
  exclude: Set<string> | null;
  /**
   * The data regions its account allows (one set shared by all the account's units, see
   * `AccountPolicies.regionsOf`); null: anywhere. Hard like `exclude`: a miner outside them (or
   * advertising no region) never gets the unit, replicas included.
   */
  regions: ReadonlySet<string> | null;
  /** The broker's count of the units its queue holds, by fence (`fencesWaiting`); null: not counted. */
  held: HeldTally | null;
  timer: ReturnType<typeof setTimeout> | null;
  onDone: (outcome: WorkOutcome) => void;
}
