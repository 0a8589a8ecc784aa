/**
 * The base words a password may be hiding, for the common-password check: `Ｐａｓｓｗｏｒｄ１２３`,
 * `P@ssw0rd!`, `password2024` and `dragon!!!` all come down to a word on the list.
 *
 * Each password is folded (NFKC, so full-width and other compatibility forms become ASCII;
 * accents dropped; Cyrillic and Greek look-alikes mapped to Latin; lower case), then expanded
 * into a handful of variants: as typed, with leading and trailing digits and symbols cut off,
 * with leet spellings read back (0→o, 1→i or l, 3→e, 4→a, 5→s, 7→t, @→a, $→s, ...), with
 * runs of one repeated character shortened, and letters only. The list is checked against
 * every variant; there are at most `MAX_VARIANTS` (a few hundred Set look-ups: microseconds).
 */

/** Variants shorter than this (after cutting) are not looked up: too many short words would match. */
export const MIN_VARIANT_LENGTH = 4;
const MAX_VARIANTS = 256;
/** How much of a trailing run of digits and symbols is tried as a suffix. */
const MAX_SUFFIX = 10;

/** Cyrillic and Greek letters that look like Latin ones (lower case; folding lowers first). */
const LOOKALIKES: Record<string, string> = {
  'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'т': 't', 'у': 'y', 'х': 'x',
  'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ɡ': 'g', 'ı': 'i',
  'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'ω': 'w',
};

/** Leet spellings read back; a character with two readings yields both. */
const LEET: Record<string, readonly string[]> = {
  '0': ['o'], '1': ['i', 'l'], '2': ['z'], '3': ['e'], '4': ['a'], '5': ['s'], '6': ['g'], '7': ['t'], '8': ['b'], '9': ['g'],
  '@': ['a'], '$': ['s'], '!': ['i'], '|': ['l', 'i'], '+': ['t'], '€': ['e'], '£': ['l'], '(': ['c'], '¡': ['i'],
};

/** NFKC, no accents, look-alikes mapped to Latin, lower case. */
export function foldPassword(password: string): string {
  const lower = password.normalize('NFKC').toLowerCase();
  const noMarks = lower.normalize('NFD').replace(/\p{M}+/gu, '').normalize('NFC');
  let out = '';
  for (const ch of noMarks) out += LOOKALIKES[ch] ?? ch;
  return out;
}

/** The string with 0, 1, ... all of its trailing non-letters cut (`gungh0123` -> ..., `gungh0`, `gungh`). */
function suffixCuts(s: string): string[] {
  const run = /[^\p{L}]+$/u.exec(s)?.[0] ?? '';
  const chars = [...s];
  const n = Math.min([...run].length, MAX_SUFFIX);
  const cuts = Array.from({ length: n + 1 }, (_, j) => chars.slice(0, chars.length - j).join(''));
  cuts.push(chars.slice(0, chars.length - [...run].length).join(''));
  return cuts;
}

/** Shortens runs of 3 or more of one character to `keep` (`passssword` -> `password`/`pasword`). */
function squeeze(s: string, keep: 1 | 2): string {
  return s.replace(/(.)\1{2,}/gu, (_m, c: string) => c.repeat(keep));
}

/** Every way of reading the leet characters back, up to a bound. */
function unleet(s: string, limit: number): string[] {
  let outs = [''];
  for (const ch of s) {
    const readings = LEET[ch] ?? [ch];
    const next: string[] = [];
    for (const o of outs) for (const r of readings) if (next.length < limit) next.push(o + r);
    outs = next;
  }
  return outs;
}

/** The strings to look up on the common-password list for this password. */
export function passwordVariants(password: string): Set<string> {
  const folded = foldPassword(password);
  const out = new Set<string>();
  const add = (s: string): void => {
    if (out.size < MAX_VARIANTS && [...s].length >= MIN_VARIANT_LENGTH) out.add(s);
  };
  for (const b of new Set([folded, squeeze(folded, 2), squeeze(folded, 1)])) {
    add(b);
    add(b.replace(/[^\p{L}\p{N}]+$/u, '')); // `trustno1!` -> `trustno1`
    // A suffix may start inside a leet spelling (`gungh0123` is `gungho` + `123`), so each
    // cut of the trailing run is read back; a prefix of digits and symbols is cut whole.
    for (const p of new Set([b, b.replace(/^[^\p{L}]+/u, '')])) {
      for (const cut of suffixCuts(p)) {
        add(cut);
        for (const u of unleet(cut, 8)) {
          add(u);
          add(u.replace(/[^\p{L}\p{N}]+/gu, ''));
          add(u.replace(/[^\p{L}]+/gu, ''));
        }
      }
    }
  }
  return out;
}
