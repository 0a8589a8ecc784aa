/**
 * The DServices this node routes to, by name. Loaded from DService package directories
 * (each with a `dservice.json`); central's registry replaces the source later.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDescriptor, type DServiceDescriptor } from '@cgn/protocol';

export class DServiceRegistry {
  private readonly byName = new Map<string, DServiceDescriptor>();

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
    return this.byName.get(name);
  }

  list(): DServiceDescriptor[] {
    return [...this.byName.values()];
  }
}
