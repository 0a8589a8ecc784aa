/**
 * The node's side of placing a DService on a miner, as frames: `place` (with the package's
 * digest, size and path on the miner endpoint from `PackageSource.lookup`), `unplace`, and the
 * miner's `placed` answers as events. Deciding where and when to place is the placement
 * controller's (packages/node/src/placement); this only speaks the protocol.
 */
import { EventEmitter } from 'node:events';
import { CgnError, frame, type OutgoingFrame, type PlaceFrame, type PlacedFrame } from '@cgn/protocol';
import type { PackageSource } from './package-source.js';

export interface PlacementFramesEvents {
  placed: [minerId: string, f: PlacedFrame];
}

export class PlacementFrames extends EventEmitter<PlacementFramesEvents> {
  constructor(
    private readonly send: (minerId: string, f: OutgoingFrame) => void,
    private readonly packages: Pick<PackageSource, 'lookup' | 'grant' | 'revoke'>,
  ) {
    super();
  }

  /** Sends `place` for `name` to a miner; throws `not_found` when the node has no package for it. */
  place(minerId: string, instanceId: string, name: string): PlaceFrame {
    const p = this.packages.lookup(name);
    if (p === null) throw new CgnError('not_found', `no package for DService ${name} on this node (publish it at central, or give the node its directory)`);
    const f = frame({ t: 'place', instanceId, name, version: p.version, digest: p.digest, packagePath: this.packages.grant(minerId, instanceId, p), sizeBytes: p.sizeBytes }) as PlaceFrame;
    this.send(minerId, f);
    return f;
  }

  unplace(minerId: string, instanceId: string, reason: string): void {
    this.packages.revoke(instanceId, minerId);
    this.send(minerId, frame({ t: 'unplace', instanceId, reason }));
  }

  /** A miner's answer (from the miner endpoint). */
  onPlaced(minerId: string, f: PlacedFrame): void {
    this.packages.revoke(f.instanceId, minerId);
    this.emit('placed', minerId, f);
  }
}
