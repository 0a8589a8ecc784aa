import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomInt } from 'node:crypto';
import { breachedPasswords, defaultCommonPasswords, isCommonPassword, loadCommonPasswords } from './common-passwords.js';
import { foldPassword, passwordVariants } from './password-variants.js';
import { COMMON_PASSWORD_PROBLEM, passwordProblems } from './passwords.js';

const isTooCommon = (pw: string): boolean => passwordProblems(pw).includes(COMMON_PASSWORD_PROBLEM);

describe('common-password list', () => {
  it('is the large breached list plus the shipped short one, built once', () => {
    const breached = breachedPasswords();
    expect(breached.size).toBeGreaterThan(40_000);
    const all = defaultCommonPasswords();
    expect(all).toBe(defaultCommonPasswords());
    expect(all.size).toBeGreaterThanOrEqual(breached.size);
    for (const p of loadCommonPasswords()) expect(all.has(p)).toBe(true);
  });

  it.each([
    ['Ｐａｓｓｗｏｒｄ１２３', 'full-width'],
    ['P@ssw0rd!', 'leet and a symbol'],
    ['password2024', 'a year suffix'],
    ['dragon!!!', 'repeated symbols'],
    ['Pаssword1!', 'a Cyrillic а'],
    ['PÁSSWÖRD#1', 'accents'],
    ['!!Qwerty2024', 'prefix and suffix'],
    ['Password1!', 'the classic'],
    ['Welcome123!', 'a common word'],
    ['Trustno1!', 'a listed password with digits, and a symbol'],
    ['Drrrragon!!', 'a repeated letter'],
    ['M0nkey$$$2020', 'leet, symbols and a year'],
    ['ｑｗｅｒｔｙ！', 'full-width symbol too'],
  ])('refuses %s (%s)', (pw) => {
    expect(isCommonPassword(pw)).toBe(true);
    expect(isTooCommon(pw)).toBe(true);
  });

  it.each([
    'Tr0ub4dor&3x',
    'Ab!defgh',
    'correct-Horse-battery-staple',
    'Vexing+Quartz+Lobby7',
  ])('accepts %s', (pw) => {
    expect(passwordProblems(pw)).toEqual([]);
  });

  it('accepts random passphrases of four words from a large vocabulary', () => {
    const words = [...defaultCommonPasswords()].filter((w) => /^[a-z]{5,7}$/.test(w));
    // Random words, joined: strong however common each word is alone.
    fc.assert(
      fc.property(fc.array(fc.nat(words.length - 1), { minLength: 4, maxLength: 4 }), fc.constantFrom('-', '.', '+', '_'), (ix, sep) => {
        const phrase = ix.map((i, n) => (n === 0 ? words[i]![0]!.toUpperCase() + words[i]!.slice(1) : words[i]!)).join(sep);
        fc.pre([...phrase].length <= 32);
        expect(passwordProblems(phrase)).toEqual([]);
      }),
      { numRuns: 200 },
    );
    const random = Array.from({ length: 4 }, () => words[randomInt(words.length)]).join('-');
    expect(isCommonPassword(random)).toBe(false);
  });

  it('refuses every listed password however it is decorated', () => {
    const list = [...breachedPasswords()].filter((w) => /^[a-z]{6,16}$/.test(w));
    const leet: Record<string, string> = { a: '@', o: '0', e: '3', s: '$', i: '1', t: '7' };
    fc.assert(
      fc.property(
        fc.constantFrom(...list),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom('', '1', '123', '2024', '!', '!!!', '#1', '.'),
        (word, upper, useLeet, suffix) => {
          let pw = useLeet ? word.replace(/[aoesit]/, (c) => leet[c]!) : word;
          if (upper) pw = pw[0]!.toUpperCase() + pw.slice(1);
          expect(isCommonPassword(pw + suffix)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('checks fast: well under a millisecond a password once the list is built', () => {
    defaultCommonPasswords();
    const samples = ['Ｐａｓｓｗｏｒｄ１２３', 'P@ssw0rd!', 'correct-Horse-battery-staple', 'x1|1|1|1|1|1|1|1|1|1|1!A'];
    const started = process.hrtime.bigint();
    const n = 2000;
    for (let i = 0; i < n; i++) isCommonPassword(samples[i % samples.length]!);
    const perCheckUs = Number(process.hrtime.bigint() - started) / 1000 / n;
    expect(perCheckUs).toBeLessThan(1000);
  });
});

describe('the login inside the password', () => {
  it.each(['Alice-Secure#9', 'Ａｌｉｃｅ-Secure#9', 'Аlicе-Secure#9', 'Secure#9-ÁLICE'])('refuses %s for login alice', (pw) => {
    expect(passwordProblems(pw, { login: 'alice' }).join()).toContain('login');
  });

  it('accepts a password without it', () => {
    expect(passwordProblems('Vexing+Quartz+Lobby7', { login: 'alice' })).toEqual([]);
  });
});

describe('password variants', () => {
  it('folds full-width, accents, case and look-alikes', () => {
    expect(foldPassword('Ｐａｓｓｗｏｒｄ１２３')).toBe('password123');
    expect(foldPassword('PÁSSWÖRD')).toBe('password');
    expect(foldPassword('Pаsswοrd')).toBe('password'); // Cyrillic а, Greek ο
  });

  it('reads leet back, cuts affixes and squeezes repeats', () => {
    expect(passwordVariants('P@ssw0rd!')).toContain('password');
    expect(passwordVariants('hell0')).toContain('hello');
    expect(passwordVariants('password2024')).toContain('password');
    expect(passwordVariants('dragon!!!')).toContain('dragon');
    expect(passwordVariants('passssword')).toContain('password');
  });

  it('stays small however many ambiguous characters there are', () => {
    expect(passwordVariants('1|1|1|1|1|1|1|1|1|1|1|1|1|1|1|').size).toBeLessThanOrEqual(256);
  });
});
