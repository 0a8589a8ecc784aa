import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { pcrDigestOf, type MeasurementEvent, type QuoteFrame } from '@cgn/protocol';
import { TpmQuoteVerifier, type AttestationPolicy } from './verifier.js';
import { TpmParseError, parseTpmsAttest } from './tpm-quote.js';

const RUNTIME = 'a'.repeat(64);
const ECHO = 'b'.repeat(64);
const LOG: MeasurementEvent[] = [{ kind: 'runtime', name: 'cgn-miner', digest: RUNTIME }, { kind: 'dservice', name: 'echo', digest: ECHO }];
const POLICY: AttestationPolicy = { runtimes: new Set([RUNTIME]), dservices: new Map([['echo', ECHO]]) };
const ak = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const AK_PEM = ak.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const sized = (b: Buffer) => Buffer.concat([u16(b.length), b]);

/** A TPMS_ATTEST as a TPM builds it for `tpm2_quote -l sha256:<pcrs> -q <nonce>`. */
function attest(o: { nonce: Buffer; pcrDigest: Buffer; pcrBitmap?: number[]; hashAlg?: number; magic?: number }): Buffer {
  const clock = Buffer.alloc(17);
  return Buffer.concat([
    Buffer.from((o.magic ?? 0xff544347).toString(16).padStart(8, '0'), 'hex'), u16(0x8018),
    sized(Buffer.concat([u16(0x000b), randomBytes(32)])), sized(o.nonce), clock, Buffer.alloc(8),
    Buffer.from([0, 0, 0, 1]), u16(o.hashAlg ?? 0x000b), Buffer.from([3, ...(o.pcrBitmap ?? [0, 0, 0x80])]),
    sized(o.pcrDigest),
  ]);
}

function quote(nonce: Buffer, over: Partial<{ signedNonce: Buffer; log: MeasurementEvent[]; measured: MeasurementEvent[]; key: typeof ak.privateKey; pcrBitmap: number[] }> = {}): QuoteFrame {
  const q = attest({ nonce: over.signedNonce ?? nonce, pcrDigest: pcrDigestOf(over.measured ?? over.log ?? LOG), ...(over.pcrBitmap ? { pcrBitmap: over.pcrBitmap } : {}) });
  return { t: 'quote', v: 1, nonce, quote: q, signature: sign('sha256', q, over.key ?? ak.privateKey), log: over.log ?? LOG };
}

describe('TPM quote verification', () => {
  let now = 1_000_000;
  const v = new TpmQuoteVerifier({ now: () => now, maxAgeMs: 5000 });
  const nonce = randomBytes(32);
  const challenge = { nonce, issuedAt: now };
  const check = (evidence: QuoteFrame, dservices = [{ name: 'echo', version: '1', digest: ECHO }], policy = POLICY) =>
    v.verify({ evidence, challenge, key: AK_PEM, policy, dservices });

  it('accepts a quote over the nonce and the measured log, signed by the registered key', () => {
    expect(check(quote(nonce))).toEqual({ ok: true, runtime: RUNTIME, dservices: { echo: ECHO } });
  });

  it('refuses a stale nonce', () => {
    now += 5001;
    try {
      expect(check(quote(nonce))).toMatchObject({ ok: false, code: 'stale', reason: expect.stringMatching(/stale nonce: the quote came 5001 ms after/) });
    } finally {
      now -= 5001;
    }
  });

  it('refuses a replayed quote: another nonce in the frame, or signed over another nonce', () => {
    expect(check(quote(randomBytes(32)))).toMatchObject({ ok: false, code: 'nonce' });
    expect(check(quote(nonce, { signedNonce: randomBytes(32) }))).toMatchObject({ ok: false, code: 'nonce', reason: expect.stringMatching(/signed over another nonce/) });
  });

  it('refuses a quote signed by another key (another TPM)', () => {
    expect(check(quote(nonce, { key: other.privateKey }))).toMatchObject({ ok: false, code: 'signature' });
  });

  it('refuses a quote over other PCRs, or whose PCR does not match its log', () => {
    expect(check(quote(nonce, { pcrBitmap: [0, 0, 0x01] }))).toMatchObject({ ok: false, code: 'pcr', reason: expect.stringMatching(/exactly PCR sha256:23/) });
    const lying = [LOG[0]!, { kind: 'dservice' as const, name: 'echo', digest: ECHO }];
    const measured = [LOG[0]!, { kind: 'dservice' as const, name: 'echo', digest: 'c'.repeat(64) }];
    expect(check(quote(nonce, { log: lying, measured }))).toMatchObject({ ok: false, code: 'pcr', reason: expect.stringMatching(/does not match the measurement log/) });
  });

  it('refuses an unknown runtime, a changed DService, and an advertised DService that was not measured', () => {
    expect(check(quote(nonce), undefined, { ...POLICY, runtimes: new Set() })).toMatchObject({ ok: false, code: 'runtime' });
    const changed = [LOG[0]!, { kind: 'dservice' as const, name: 'echo', digest: 'c'.repeat(64) }];
    expect(check(quote(nonce, { log: changed }))).toMatchObject({ ok: false, code: 'dservice', reason: expect.stringMatching(/DService echo measured as cccccccccccccccc… is not the known-good package/) });
    expect(check(quote(nonce, { log: [LOG[0]!] }))).toMatchObject({ ok: false, code: 'dservice', reason: expect.stringMatching(/advertised .* not what was measured/) });
  });

  it('refuses malformed quotes with what is wrong', () => {
    const good = quote(nonce);
    expect(check({ ...good, quote: good.quote.subarray(0, 40) })).toMatchObject({ ok: false, code: 'malformed' });
    expect(check({ ...good, quote: Buffer.concat([good.quote, Buffer.from([0])]) })).toMatchObject({ ok: false, code: 'malformed', reason: expect.stringMatching(/1 bytes after the quote/) });
    expect(() => parseTpmsAttest(attest({ nonce, pcrDigest: Buffer.alloc(32), magic: 0x12345678 }))).toThrow(/not made by a TPM/);
  });

  it('parses any byte string without throwing anything but a parse error', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      try {
        parseTpmsAttest(b);
      } catch (err) {
        if (!(err instanceof TpmParseError)) throw err;
      }
    }), { numRuns: 2000 });
  });
});
