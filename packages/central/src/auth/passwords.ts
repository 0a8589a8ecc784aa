/**
 * Password policy and hashing.
 *
 * Policy: 8 to 32 characters, at least one upper-case letter, one lower-case letter and one
 * special character (anything that is not a letter, digit or white space), no control
 * characters, not the login itself, and not on the common-password list (compared case-
 * insensitively, also with leading and trailing digits and symbols stripped, so `Password1!`
 * is refused as `password`).
 *
 * Hashing: argon2id via @node-rs/argon2. Production defaults are the OWASP ones (m = 19 MiB,
 * t = 2, p = 1); tests may lower them through `Argon2Options`. Hashes are PHC strings, so a
 * hash made with other parameters still verifies and `needsRehash` says when to upgrade it.
 */
import { readFileSync } from 'node:fs';
import { hash as argonHash, verify as argonVerify, type Algorithm } from '@node-rs/argon2';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 32;

export const DEFAULT_COMMON_PASSWORDS_FILE = new URL('../../data/common-passwords.txt', import.meta.url);

/** Reads a list of common passwords: one a line, `#` comments, blank lines ignored. */
export function loadCommonPasswords(file: string | URL = DEFAULT_COMMON_PASSWORDS_FILE): Set<string> {
  const set = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    set.add(t.toLowerCase());
  }
  return set;
}

let defaultList: Set<string> | undefined;
function commonList(): Set<string> {
  return (defaultList ??= loadCommonPasswords());
}

/** The reasons a password fails the policy; empty when it passes. */
export function passwordProblems(password: string, opts: { login?: string; common?: Set<string> } = {}): string[] {
  const problems: string[] = [];
  const chars = [...password];
  if (chars.length < PASSWORD_MIN) problems.push(`must be at least ${PASSWORD_MIN} characters`);
  if (chars.length > PASSWORD_MAX) problems.push(`must be at most ${PASSWORD_MAX} characters`);
  if (!/\p{Lu}/u.test(password)) problems.push('must contain an upper-case letter');
  if (!/\p{Ll}/u.test(password)) problems.push('must contain a lower-case letter');
  if (!/[^\p{L}\p{N}\s]/u.test(password)) problems.push('must contain a special character (not a letter, digit or space)');
  if (/\p{Cc}/u.test(password)) problems.push('must not contain control characters');
  const lower = password.toLowerCase();
  if (opts.login !== undefined && opts.login.length >= 3 && lower.includes(opts.login.toLowerCase())) problems.push('must not contain the login name');
  const list = opts.common ?? commonList();
  const stripped = lower.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '');
  if (list.has(lower) || (stripped.length >= 3 && list.has(stripped))) problems.push('is too common (it is on the list of most used passwords)');
  return problems;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

export interface Argon2Options {
  /** KiB of memory per hash. Default 19456 (19 MiB). */
  memoryCost?: number;
  /** Passes. Default 2. */
  timeCost?: number;
  /** Lanes. Default 1. */
  parallelism?: number;
}

export const ARGON2_DEFAULTS: Required<Argon2Options> = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
/** Cheap parameters for tests only. */
export const ARGON2_TEST: Required<Argon2Options> = { memoryCost: 64, timeCost: 1, parallelism: 1 };

const ARGON2ID = 2 as Algorithm;

export class Argon2Hasher implements PasswordHasher {
  readonly params: Required<Argon2Options>;

  constructor(options: Argon2Options = {}) {
    this.params = { ...ARGON2_DEFAULTS, ...options };
  }

  hash(password: string): Promise<string> {
    return argonHash(password, { ...this.params, algorithm: ARGON2ID });
  }

  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argonVerify(hash, password);
    } catch {
      return false;
    }
  }

  /** True when a stored hash was made with weaker parameters than the current ones. */
  needsRehash(hash: string): boolean {
    const m = /^\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(hash);
    if (m === null) return true;
    return Number(m[1]) < this.params.memoryCost || Number(m[2]) < this.params.timeCost;
  }
}
