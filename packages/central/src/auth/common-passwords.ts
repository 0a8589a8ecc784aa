/**
 * The list of passwords central refuses because they are common: the breached-password list
 * `@zxcvbn-ts/language-common` ships (about 49 000 passwords seen most often in published
 * breaches; it is in the package, nothing is downloaded), plus the short list in
 * `data/common-passwords.txt` (or one given with `--password-list`). Built into a `Set` once;
 * a check folds the password into its variants (`password-variants.ts`) and looks each up.
 */
import { readFileSync } from 'node:fs';
import { dictionary } from '@zxcvbn-ts/language-common';
import { foldPassword, passwordVariants } from './password-variants.js';

export const DEFAULT_COMMON_PASSWORDS_FILE = new URL('../../data/common-passwords.txt', import.meta.url);

/** Reads a list of common passwords: one a line, `#` comments, blank lines ignored; entries folded. */
export function loadCommonPasswords(file: string | URL = DEFAULT_COMMON_PASSWORDS_FILE): Set<string> {
  const set = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    set.add(foldPassword(t));
  }
  return set;
}

/** The breached-password list shipped in `@zxcvbn-ts/language-common`, folded. */
export function breachedPasswords(): Set<string> {
  return new Set(dictionary['passwords-common'].map(foldPassword));
}

let defaultList: Set<string> | undefined;

/** The shipped lists together, built on first use and kept (call it at start-up to pay then). */
export function defaultCommonPasswords(): Set<string> {
  if (defaultList === undefined) {
    const set = breachedPasswords();
    for (const p of loadCommonPasswords()) set.add(p);
    defaultList = set;
  }
  return defaultList;
}

/** Whether the password, or a base word it hides (look-alikes, leet, suffixes), is on the list. */
export function isCommonPassword(password: string, list: ReadonlySet<string> = defaultCommonPasswords()): boolean {
  for (const v of passwordVariants(password)) if (list.has(v)) return true;
  return false;
}
