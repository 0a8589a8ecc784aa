/**
 * DServices the node places on this miner (`place` / `unplace` frames): the package comes from
 * the cache or the node's miner endpoint (checked against the frame's digest), its instance
 * starts as a `--dservice` one does (sandbox, cgroups, health check), the node hears `placed`
 * and then a fresh advertisement with the DService in it. `unplace` stops the instance,
 * re-advertises without it and lets the cache drop the package when it is over budget.
 *
 * A DService the miner was started with (`--dservice`) is answered at once when the node places
 * the same digest; another version of a running DService is refused (unplace it first).
 */
import type { PlaceFrame, PlacedFrame, UnplaceFrame } from '@cgn/protocol';
import { excerpt } from '@cgn/protocol';
import { loadDServicePackage, type DServicePackage } from './dservice-package.js';
import { errorText, type Log } from './log.js';
import type { PackageCache } from './package-cache.js';
import { fetchPackage, packageUrl } from './package-fetch.js';
import type { NodeTrust } from './tunnel.js';

/** What the placements need from the miner. */
export interface PlacementHost {
  log: Log;
  nodeUrl: string;
  trust: NodeTrust;
  cache: PackageCache;
  /** Longest a package download may take, ms. */
  fetchTimeoutMs: number;
  /** The DService running under `name`, if any, and whether it was placed (else: started with the miner). */
  running(name: string): { digest: string; placed: boolean } | null;
  /** Starts an instance of `pkg` and resolves once it is healthy; it then takes work and is advertised. */
  run(pkg: DServicePackage, digest: string): Promise<void>;
  /** Stops the placed instance of `name` and forgets it. */
  halt(name: string): Promise<void>;
  send(f: Omit<PlacedFrame, 'v'>): void;
  readvertise(): void;
  stopping(): boolean;
}

interface Placement {
  name: string;
  digest: string;
  /** Placed on a DService the miner was started with: unplacing it stops nothing. */
  borrowed: boolean;
}

/** Most instance ids a node may have placed on this miner at once (several may share one DService). */
export const MAX_INSTANCE_IDS = 256;
/** Most distinct DServices placements may start on this miner (each is a sandboxed process). */
export const MAX_PLACED_DSERVICES = 16;

export class Placements {
  private readonly byInstance = new Map<string, Placement>();
  /** Names whose instance is being placed now (the advertisement waits for `placed`). */
  private readonly startingNames = new Map<string, Promise<void>>();
  /** Names whose placed instance is being stopped: a new one waits (same socket and cgroup). */
  private readonly haltingNames = new Map<string, Promise<void>>();

  constructor(private readonly host: PlacementHost) {}

  /** Whether `name` is being placed right now (its readiness is announced by `placed` first). */
  starting(name: string): boolean {
    return this.startingNames.has(name);
  }

  /** Instance ids placed here now, by DService name. */
  list(): { instanceId: string; name: string; digest: string }[] {
    return [...this.byInstance].map(([instanceId, p]) => ({ instanceId, name: p.name, digest: p.digest }));
  }

  async place(f: PlaceFrame): Promise<void> {
    const t0 = performance.now();
    const answer = (ok: boolean, fetched: boolean, message?: string): void => {
      const placed: Omit<PlacedFrame, 'v'> = { t: 'placed', instanceId: f.instanceId, digest: f.digest, ok, coldStartMs: Math.max(0, Math.round(performance.now() - t0)), fetched };
      if (message !== undefined) placed.message = excerpt(message, 500);
      this.host.send(placed);
    };
    const log = this.host.log.child({ dservice: f.name, instanceId: f.instanceId.slice(0, 32) });
    if (this.host.stopping()) return answer(false, false, 'the miner is stopping');
    const halting = this.haltingNames.get(f.name);
    if (halting !== undefined) await halting.catch(() => {});
    const known = this.byInstance.get(f.instanceId);
    if (known !== undefined) return answer(known.digest === f.digest, false, known.digest === f.digest ? undefined : `instance ${f.instanceId} already runs digest ${known.digest}`);
    // Bounds on what a node can make this miner hold: instance ids, and DServices it runs for placements.
    if (this.byInstance.size >= MAX_INSTANCE_IDS) return answer(false, false, `this miner holds ${MAX_INSTANCE_IDS} placed instances already; unplace some first`);
    const names = new Set([...this.byInstance.values()].map((p) => p.name));
    if (!names.has(f.name) && !this.startingNames.has(f.name) && names.size + this.startingNames.size >= MAX_PLACED_DSERVICES) {
      return answer(false, false, `this miner runs ${MAX_PLACED_DSERVICES} placed DServices already; unplace one first`);
    }
    // One placement of a name at a time: a second waits for the first, then sees it running.
    const busy = this.startingNames.get(f.name);
    if (busy !== undefined) await busy.catch(() => {});
    const running = this.host.running(f.name);
    if (running !== null) {
      if (running.digest !== f.digest) return answer(false, false, `this miner runs another version of ${f.name} (digest ${running.digest.slice(0, 12)}…); unplace it first`);
      this.byInstance.set(f.instanceId, { name: f.name, digest: f.digest, borrowed: !running.placed });
      if (!running.placed) log.info({}, 'placed on the DService this miner was started with');
      return answer(true, false);
    }
    let fetched = false;
    let acquired = false;
    const work = (async () => {
      const got = await this.host.cache.acquire(f.digest, async () => {
        const url = packageUrl(this.host.nodeUrl, f.packagePath);
        log.info({ url: `${url.origin}${url.pathname}`, sizeBytes: f.sizeBytes }, 'fetching the DService package'); // (not the query: it holds the download grant)
        return fetchPackage(url, { trust: this.host.trust, sizeBytes: f.sizeBytes, timeoutMs: this.host.fetchTimeoutMs });
      });
      acquired = true;
      fetched = got.fetched;
      const pkg = loadDServicePackage(got.dir);
      if (pkg.descriptor.name !== f.name || pkg.descriptor.version !== f.version) {
        throw new Error(`the package is ${pkg.descriptor.name}@${pkg.descriptor.version}, not the ${f.name}@${f.version} placed`);
      }
      await this.host.run(pkg, f.digest);
    })();
    this.startingNames.set(f.name, work);
    try {
      await work;
      this.byInstance.set(f.instanceId, { name: f.name, digest: f.digest, borrowed: false });
      this.startingNames.delete(f.name);
      log.info({ coldStartMs: Math.round(performance.now() - t0), fetched }, 'DService placed and healthy');
      answer(true, fetched);
      this.host.readvertise();
    } catch (err) {
      this.startingNames.delete(f.name);
      log.error({ err: errorText(err) }, 'placing the DService failed');
      const halting = this.host.halt(f.name).catch(() => {}).finally(() => this.haltingNames.delete(f.name));
      this.haltingNames.set(f.name, halting);
      await halting;
      if (acquired) await this.host.cache.release(f.digest).catch(() => {});
      answer(false, fetched, errorText(err));
    }
  }

  async unplace(f: UnplaceFrame): Promise<void> {
    const p = this.byInstance.get(f.instanceId);
    if (p === undefined) {
      this.host.log.warn({ instanceId: f.instanceId.slice(0, 32) }, 'unplace of an instance this miner does not run; ignored');
      return;
    }
    this.byInstance.delete(f.instanceId);
    if (p.borrowed) return;
    // Another placement of the same DService keeps its instance.
    if ([...this.byInstance.values()].some((q) => q.name === p.name && !q.borrowed)) return;
    this.host.log.info({ dservice: p.name, instanceId: f.instanceId.slice(0, 32), reason: excerpt(f.reason, 200) }, 'DService unplaced: stopping it');
    const halting = this.host.halt(p.name).finally(() => this.haltingNames.delete(p.name));
    this.haltingNames.set(p.name, halting);
    await halting;
    this.host.readvertise();
    await this.host.cache.release(p.digest);
  }
}
