/**
 * TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, ±1 step of clock drift) and
 * one-time recovery codes. A code is accepted once: the store keeps the highest step used and
 * refuses that step and any earlier one, so a code seen over a shoulder or in a log cannot be
 * replayed (nor can an older code from the drift window).
 */
import { randomInt } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { sha256Hex } from '../ids.js';

export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
export const TOTP_WINDOW = 1;
export const RECOVERY_CODE_COUNT = 10;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totpFor(secret: string, label = 'user', issuer = 'CGN'): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_S, secret: Secret.fromBase32(secret) });
}

/** `otpauth://totp/...` for authenticator apps (usually shown as a QR code). */
export function provisioningUri(secret: string, label: string, issuer = 'CGN'): string {
  return totpFor(secret, label, issuer).toString();
}

/** The code for a time (for tests and tools). */
export function totpCode(secret: string, atMs: number): string {
  return totpFor(secret).generate({ timestamp: atMs });
}

/** The time step a code belongs to, or null when it is wrong for `atMs` ± the drift window. */
export function matchTotp(secret: string, code: string, atMs: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = totpFor(secret).validate({ token: code, timestamp: atMs, window: TOTP_WINDOW });
  if (delta === null) return null;
  return Math.floor(atMs / 1000 / TOTP_PERIOD_S) + delta;
}

const RC_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Ten fresh recovery codes like `k7p2-mx9q-4hta` (about 59 bits each). */
export function newRecoveryCodes(n = RECOVERY_CODE_COUNT): string[] {
  const codes: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    for (let k = 0; k < 12; k++) s += RC_ALPHABET[randomInt(RC_ALPHABET.length)];
    codes.push(`${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`);
  }
  return codes;
}

/** Recovery codes are stored as SHA-256 of the user id and the normalised code. */
export function recoveryCodeHash(userId: string, code: string): string {
  return sha256Hex(`${userId}\0${code.toLowerCase().replace(/[^a-z0-9]/g, '')}`);
}
