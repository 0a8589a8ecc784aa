/**
 * TPMS_ATTEST of a TPM 2.0 quote (TPM 2.0 Part 2, 10.12.12), parsed without trusting a byte of it:
 * every length is bounded by what is left, and a quote that is not a quote is refused with what
 * is wrong. Big-endian throughout.
 *
 *   magic u32 (TPM_GENERATED_VALUE 0xff544347) | type u16 (TPM_ST_ATTEST_QUOTE 0x8018)
 *   qualifiedSigner TPM2B_NAME | extraData TPM2B_DATA (the verifier's nonce)
 *   clockInfo { clock u64, resetCount u32, restartCount u32, safe u8 } | firmwareVersion u64
 *   quote { pcrSelect TPML_PCR_SELECTION { count u32, [hash u16, sizeofSelect u8, select[]] }, pcrDigest TPM2B_DIGEST }
 */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
/** TPM_ALG_ID values of the PCR banks a quote may select. */
export const TPM_ALG = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d } as const;

export interface PcrSelection {
  hashAlg: number;
  /** PCR indices selected in this bank, ascending. */
  pcrs: number[];
}

export interface TpmQuoteInfo {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clock: { clock: bigint; resetCount: number; restartCount: number; safe: boolean };
  firmwareVersion: bigint;
  pcrSelect: PcrSelection[];
  pcrDigest: Buffer;
}

export class TpmParseError extends Error {
  readonly code = 'malformed_quote';
}

export function parseTpmsAttest(buf: Uint8Array): TpmQuoteInfo {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  const need = (n: number, what: string): void => {
    if (at + n > b.length) throw new TpmParseError(`quote ends inside ${what} (${b.length} bytes)`);
  };
  const u8 = (what: string) => (need(1, what), b.readUInt8((at += 1) - 1));
  const u16 = (what: string) => (need(2, what), b.readUInt16BE((at += 2) - 2));
  const u32 = (what: string) => (need(4, what), b.readUInt32BE((at += 4) - 4));
  const u64 = (what: string) => (need(8, what), b.readBigUInt64BE((at += 8) - 8));
  const sized = (what: string, max: number): Buffer => {
    const n = u16(`${what} size`);
    if (n > max) throw new TpmParseError(`${what} of ${n} bytes is longer than ${max}`);
    need(n, what);
    at += n;
    return Buffer.from(b.subarray(at - n, at));
  };
  const magic = u32('magic');
  if (magic !== TPM_GENERATED_VALUE) throw new TpmParseError(`not made by a TPM: magic 0x${magic.toString(16)} (0xff544347 expected)`);
  const type = u16('type');
  if (type !== TPM_ST_ATTEST_QUOTE) throw new TpmParseError(`not a quote: attestation type 0x${type.toString(16)} (0x8018 expected)`);
  const qualifiedSigner = sized('qualifiedSigner', 68);
  const extraData = sized('extraData', 64);
  const clock = { clock: u64('clock'), resetCount: u32('resetCount'), restartCount: u32('restartCount'), safe: u8('safe') === 1 };
  const firmwareVersion = u64('firmwareVersion');
  const count = u32('pcrSelect count');
  if (count > 16) throw new TpmParseError(`pcrSelect names ${count} banks`);
  const pcrSelect: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hashAlg = u16('pcrSelect hash');
    const size = u8('pcrSelect size');
    if (size > 8) throw new TpmParseError(`pcrSelect bitmap of ${size} bytes`);
    need(size, 'pcrSelect bitmap');
    const pcrs: number[] = [];
    for (let byte = 0; byte < size; byte++) for (let bit = 0; bit < 8; bit++) if ((b[at + byte]! >> bit) & 1) pcrs.push(byte * 8 + bit);
    at += size;
    pcrSelect.push({ hashAlg, pcrs });
  }
  const pcrDigest = sized('pcrDigest', 64);
  if (at !== b.length) throw new TpmParseError(`${b.length - at} bytes after the quote`);
  return { qualifiedSigner, extraData, clock, firmwareVersion, pcrSelect, pcrDigest };
}
