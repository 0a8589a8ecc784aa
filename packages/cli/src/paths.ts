import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/** The repository root (this file is packages/cli/dist/paths.js once built). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const CGN_BIN = resolve(REPO_ROOT, 'packages/cli/dist/bin.js');
export const dserviceDir = (name: string): string => resolve(REPO_ROOT, 'dservices', name);
