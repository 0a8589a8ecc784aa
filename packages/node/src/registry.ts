/**
 * The DServices this node routes to, by name. Loaded from DService package directories
 * (each with a `dservice.json`); central's registry replaces the source later.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDescriptor, type DServiceDescriptor } from '@cgn/protocol';

export class DServiceRegistry {
  private readonly byName = new Map<string, DServiceDescriptor>();
  /** With central: the DServices it approved (by name); null routes to every local one. */
  private approved: Set<string> | null = null;

  static fromDirs(dirs: readonly string[]): DServiceRegistry {
    const r = new DServiceRegistry();
    for (const dir of dirs) {
      const file = join(dir, 'dservice.json');
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new Error(`cannot read DService descriptor ${file}: ${(err as Error).message}`);
      }
      r.add(parseDescriptor(raw, file));
    }
    return r;
  }

  add(d: DServiceDescriptor): void {
    this.byName.set(d.name, d);
  }

  get(name: string): DServiceDescriptor | undefined {
    if (this.approved !== null && !this.approved.has(name)) return undefined;
    return this.byName.get(name);
  }

  /** Routes only to these DServices (central's approved list); null lifts the restriction. */
  restrictTo(names: Iterable<string> | null): void {
    this.approved = names === null ? null : new Set(names);
  }

  /** The DServices this node routes to now. */
  list(): DServiceDescriptor[] {
    return [...this.byName.values()].filter((d) => this.approved === null || this.approved.has(d.name));
  }
}
