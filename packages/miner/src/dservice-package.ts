/**
 * A DService package on disk: a directory with a `dservice.json` descriptor and the entry file
 * it names. Loading checks both exist; it does not run anything.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDescriptor, type DServiceDescriptor } from '@cgn/protocol';

export interface DServicePackage {
  /** Absolute path of the package directory. */
  dir: string;
  descriptor: DServiceDescriptor;
  /** Absolute path of the entry file (`descriptor.entry` inside `dir`). */
  entryPath: string;
}

/** Reads and validates `<dir>/dservice.json`; throws an `Error` that names the file and the problem. */
export function loadDServicePackage(dir: string): DServicePackage {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new Error(`${abs} is not a directory`);
  const file = join(abs, 'dservice.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing (a DService package needs a dservice.json)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const descriptor = parseDescriptor(json, file);
  const entryPath = join(abs, descriptor.entry);
  if (!existsSync(entryPath)) throw new Error(`${file}: entry ${descriptor.entry} does not exist (is the DService built?)`);
  return { dir: abs, descriptor, entryPath };
}
