/**
 * Password policy and hashing.
 *
 * Policy: 8 to 32 characters, at least one upper-case letter, one lower-case letter and one
 * special character (anything that is not a letter, digit or white space), no control
 * characters, not containing the login (also in full-width or look-alike letters), and not a
 * common password: not on the breached-password list, nor one hiding behind look-alike or
 * full-width characters, leet spellings, case, or added digits and symbols
 * (`Ｐａｓｓｗｏｒｄ１２３`, `P@ssw0rd!`, `password2024`, `dragon!!!` are all refused; see
 * `common-passwords.ts` and `password-variants.ts`).
 *
 * Hashing: argon2id via @node-rs/argon2. Production defaults are the OWASP ones (m = 19 MiB,
 * t = 2, p = 1); tests may lower them through `Argon2Options`. Hashes are PHC strings, so a
 * hash made with other parameters still verifies and `needsRehash` says when to upgrade it.
 */
import { defaultCommonPasswords, isCommonPassword } from './common-passwords.js';
import { foldPassword } from './password-variants.js';
import { hash as argonHash, verify as argonVerify, type Algorithm } from '@node-rs/argon2';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 32;

/** Why a common password is refused, in words a user can act on. */
export const COMMON_PASSWORD_PROBLEM =
  'is too common: it is, or is built from, a password seen in published breaches (look-alike characters, p@ssw0rd spellings '
  + 'and added digits or symbols do not hide it); choose something longer and unrelated, such as a few random words';

/** The reasons a password fails the policy; empty when it passes. */
export function passwordProblems(password: string, opts: { login?: string; common?: ReadonlySet<string> } = {}): string[] {
  const problems: string[] = [];
  const chars = [...password];
  if (chars.length < PASSWORD_MIN) problems.push(`must be at least ${PASSWORD_MIN} characters`);
  if (chars.length > PASSWORD_MAX) problems.push(`must be at most ${PASSWORD_MAX} characters`);
  if (!/\p{Lu}/u.test(password)) problems.push('must contain an upper-case letter');
  if (!/\p{Ll}/u.test(password)) problems.push('must contain a lower-case letter');
  if (!/[^\p{L}\p{N}\s]/u.test(password)) problems.push('must contain a special character (not a letter, digit or space)');
  if (/\p{Cc}/u.test(password)) problems.push('must not contain control characters');
  if (opts.login !== undefined && containsLogin(password, opts.login)) problems.push('must not contain the login name');
  if (isCommonPassword(password, opts.common ?? defaultCommonPasswords())) problems.push(COMMON_PASSWORD_PROBLEM);
  return problems;
}

/**
 * The login inside the password, also in full-width, look-alike or accented letters (`Ａｌｉｃｅ`).
 * Leet is not read back here: it would refuse `Acme-Own3r-Pw!` for `acme-owner`, a stretch.
 */
function containsLogin(password: string, login: string): boolean {
  const l = foldPassword(login);
  return [...l].length >= 3 && foldPassword(password).includes(l);
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
