/**
 * The miner's TPM 2.0, driven with tpm2-tools. The TCTI names the TPM: `device:/dev/tpmrm0` (a
 * hardware TPM through the kernel's resource manager) or `swtpm:port=P` (a software TPM). The
 * attestation key (AK: restricted RSA-2048 signing key, RSASSA-SHA256, made under the endorsement
 * key) is persisted at `AK_HANDLE`, so it survives restarts and holds no transient slot (swtpm has
 * three); transient objects are flushed after each step.
 *
 * Operations are serialised: the tools are separate processes sharing one TPM.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTESTATION_PCR, measurementOf, type MeasurementEvent } from '@cgn/protocol';

/** Persistent handle of the attestation key (owner hierarchy; 0x81010001 is where EKs usually live). */
export const AK_HANDLE = '0x81010002';

export class TpmError extends Error {
  readonly code = 'tpm_failed';
}

export interface TpmQuote {
  quote: Buffer;
  signature: Buffer;
}

export class Tpm {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly tcti: string, private readonly timeoutMs = 30_000) {}

  /** The AK's public key as SPKI PEM, creating and persisting the AK first if the TPM has none. */
  attestationKey(): Promise<string> {
    return this.serial(async () => {
      const existing = await this.readAk().catch(() => null);
      if (existing !== null) return existing;
      await this.withDir(async (dir) => {
        await this.tool('tpm2_flushcontext', ['-t']);
        await this.tool('tpm2_createek', ['-c', join(dir, 'ek.ctx'), '-G', 'rsa', '-u', join(dir, 'ek.pub')]);
        await this.tool('tpm2_createak', ['-C', join(dir, 'ek.ctx'), '-c', join(dir, 'ak.ctx'), '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa', '-u', join(dir, 'ak.pub'), '-n', join(dir, 'ak.name')]);
        // Flushing frees the slots; the saved AK context loads again for persisting.
        await this.tool('tpm2_flushcontext', ['-t']);
        await this.tool('tpm2_evictcontrol', ['-C', 'o', '-c', join(dir, 'ak.ctx'), AK_HANDLE]);
        await this.tool('tpm2_flushcontext', ['-t']);
      });
      return this.readAk();
    });
  }

  /** Resets the attestation PCR and extends it with each event's measurement, in order. */
  measure(events: readonly MeasurementEvent[]): Promise<void> {
    return this.serial(async () => {
      await this.tool('tpm2_pcrreset', [String(ATTESTATION_PCR)]);
      for (const e of events) await this.tool('tpm2_pcrextend', [`${ATTESTATION_PCR}:sha256=${measurementOf(e).toString('hex')}`]);
    });
  }

  /** A quote by the AK over the attestation PCR, with the nonce as its qualifying data. */
  quote(nonce: Uint8Array): Promise<TpmQuote> {
    return this.serial(() => this.withDir(async (dir) => {
      const m = join(dir, 'quote.msg');
      const sig = join(dir, 'quote.sig');
      await this.tool('tpm2_quote', ['-c', AK_HANDLE, '-l', `sha256:${ATTESTATION_PCR}`, '-q', Buffer.from(nonce).toString('hex'), '-m', m, '-s', sig, '-g', 'sha256', '-f', 'plain']);
      return { quote: readFileSync(m), signature: readFileSync(sig) };
    }));
  }

  private async readAk(): Promise<string> {
    return this.withDir(async (dir) => {
      const pem = join(dir, 'ak.pem');
      await this.tool('tpm2_readpublic', ['-c', AK_HANDLE, '-f', 'pem', '-o', pem]);
      return readFileSync(pem, 'utf8');
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-tpm-'));
    try {
      return await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private tool(name: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(name, ['-T', this.tcti, ...args], { timeout: this.timeoutMs, env: { ...process.env, TPM2TOOLS_TCTI: this.tcti } }, (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${name} is not installed (apt-get install tpm2-tools)`
          : `${name} failed on TPM ${this.tcti}: ${String(stderr).trim().split('\n').slice(-2).join(' ').slice(0, 300) || err.message}`;
        reject(new TpmError(why));
      });
    });
  }
}
