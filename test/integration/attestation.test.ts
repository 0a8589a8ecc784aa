/**
 * The attested tier with real software TPMs (swtpm + tpm2-tools): a miner whose quote verifies
 * against its registered attestation key and the allow-list is admitted as attested and re-attested
 * periodically; a changed DService or runtime, a replayed quote, a quote from another TPM and a stale nonce
 * are each refused with the reason in an error frame, and the tunnel is closed (4008).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tpm, digestPackage, measureRuntime } from '@cgn/miner';
import { generateMinerKey, minerIdOf, type ErrorFrame, type Frame, type MeasurementEvent, type QuoteFrame } from '@cgn/protocol';
import { ECHO, ROOT, ScriptedMiner, spawnMiner, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';
import { startSwtpm, swtpmMissing, type Swtpm } from './swtpm.js';

const TIER_REFUSED = 4008;
const missing = swtpmMissing();
const errorOf = (m: ScriptedMiner): ErrorFrame | undefined => m.received.find((f): f is ErrorFrame => f.t === 'error');
const attestation = (t: TestNode) => (t.node.status()['counters'] as { tunnels: { attestation: { challenges: number; verified: number; refused: Record<string, number> } } }).tunnels.attestation;

describe.skipIf(missing !== null)(`attested tier with swtpm${missing !== null ? ` (skipped: ${missing})` : ''}`, () => {
  let tpmMiner: Swtpm; // the real miner process's TPM
  let tpmPeer: Swtpm; // the scripted peer's TPM (its registered key)
  let tpmOther: Swtpm; // another TPM, whose quotes must not pass for the peer's
  let peerTpm: Tpm;
  let otherTpm: Tpm;
  let akMiner: string;
  let t: TestNode;
  let log: MeasurementEvent[];
  let echoDigest: string;
  const dir = tempDir('cgn-attest-');
  const minerKey = generateMinerKey();
  const changedKey = generateMinerKey();
  const peerKey = generateMinerKey();

  /** A scripted miner advertising attested that answers each challenge with `answer`. */
  const peer = (answer: (nonce: Uint8Array, m: ScriptedMiner) => void | Promise<void>): ScriptedMiner =>
    new ScriptedMiner({
      ack: true, answer: true, digests: { echo: echoDigest }, advert: { tier: 'attested' },
      onFrame: (f: Frame, m) => {
        if (f.t === 'attest') void answer(f.nonce, m);
      },
    }, peerKey);
  const honest = (tpm: Tpm, sent?: QuoteFrame[]) => async (nonce: Uint8Array, m: ScriptedMiner) => {
    const q: QuoteFrame = { t: 'quote', v: 1, nonce, ...(await tpm.quote(nonce)), log };
    sent?.push(q);
    m.send(q);
  };

  beforeAll(async () => {
    [tpmMiner, tpmPeer, tpmOther] = await Promise.all([startSwtpm(), startSwtpm(), startSwtpm()]);
    peerTpm = new Tpm(tpmPeer.tcti);
    otherTpm = new Tpm(tpmOther.tcti);
    const [akM, akP, runtime, echo] = await Promise.all([new Tpm(tpmMiner.tcti).attestationKey(), peerTpm.attestationKey(), measureRuntime(), digestPackage(ECHO), otherTpm.attestationKey()]);
    akMiner = akM;
    echoDigest = echo;
    log = [{ kind: 'runtime', name: 'cgn-miner', digest: runtime.digest }, { kind: 'dservice', name: 'echo', digest: echoDigest }];
    // The peer's TPMs measure what a real miner would: the runtime, then echo.
    await Promise.all([peerTpm.measure(log), otherTpm.measure(log)]);
    t = await startTestNode({
      grants: {
        miners: {
          [minerIdOf(minerKey.publicKey)]: { attestationKey: akMiner },
          [minerIdOf(changedKey.publicKey)]: { attestationKey: akMiner },
          [minerIdOf(peerKey.publicKey)]: { attestationKey: akP },
        },
        attestation: { runtimes: [runtime.digest], dservices: { echo: echoDigest } },
      },
      attestation: { intervalMs: 500, timeoutMs: 5000 },
    });
  }, 60_000);

  afterAll(async () => {
    await t?.cleanup();
    await Promise.all([tpmMiner, tpmPeer, tpmOther].map((s) => s?.stop()));
    dir.cleanup();
  });

  it('admits a real miner whose quote verifies as attested, routes attested work to it and re-attests it', async () => {
    const started = Date.now();
    const m = spawnMiner(t.node.minerUrl, dir.path, { key: minerKey, name: 'attested', args: ['--tier', 'attested', '--tpm', tpmMiner.tcti] });
    try {
      await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === m.id && x.tier === 'attested'), 'the miner to be admitted as attested', 60_000)
        .catch((err: Error) => Promise.reject(new Error(`${err.message}; miner log:\n${m.stderr().slice(-3000)}`)));
      const admittedMs = Date.now() - started;
      expect((t.node.status()['minersByTier'] as Record<string, number>)['attested']).toBe(1);
      const r = await fetch(t.url('echo'), { method: 'POST', body: 'measured', headers: { authorization: `Bearer ${t.apiKey}`, 'cgn-tier': 'attested' } });
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('measured');
      const before = attestation(t).verified;
      const reattestStart = Date.now();
      await waitFor(() => attestation(t).verified >= before + 2, 'two periodic re-attestations', 20_000);
      process.stderr.write(`attestation: process start to attested admission ${admittedMs} ms; two re-attestations (500 ms interval) in ${Date.now() - reattestStart} ms\n`);
      expect(t.node.broker.snapshot().miners.some((x) => x.id === m.id && x.tier === 'attested')).toBe(true);
    } finally {
      m.kill();
      await m.exited;
    }
  }, 90_000);

  it('refuses a miner running a changed DService, saying which', async () => {
    // A copy of echo with one more file: another package digest, measured as such by the miner.
    const changed = mkdtempSync(join(ROOT, 'test', 'integration', '.changed-echo-'));
    try {
      cpSync(ECHO, changed, { recursive: true });
      writeFileSync(join(changed, 'dist', 'extra.js'), '// not the approved package\n');
      const m = spawnMiner(t.node.minerUrl, dir.path, { key: changedKey, name: 'changed', dservices: [changed], args: ['--tier', 'attested', '--tpm', tpmMiner.tcti] });
      try {
        await waitFor(() => /tier attested refused: DService echo measured as [0-9a-f]{16}.* is not the known-good package/.test(m.stderr()), 'the miner to be told its DService is not the known-good one', 60_000);
        expect(t.node.broker.snapshot().miners.some((x) => x.id === m.id)).toBe(false);
        expect(attestation(t).refused['dservice']).toBeGreaterThanOrEqual(1);
      } finally {
        m.kill();
        await m.exited;
      }
    } finally {
      rmSync(changed, { recursive: true, force: true });
    }
  }, 90_000);

  it('refuses a replayed quote, with the nonce field kept or rewritten', async () => {
    const sent: QuoteFrame[] = [];
    const first = peer(honest(peerTpm, sent));
    await first.connect(t.node.minerUrl);
    await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === first.id && x.tier === 'attested'), 'the honest peer to be admitted');
    first.ws.close();
    await first.closed;
    const old = sent[0]!;

    const asIs = peer((_nonce, m) => m.send(old));
    await asIs.connect(t.node.minerUrl);
    expect((await asIs.closed).code).toBe(TIER_REFUSED);
    expect(errorOf(asIs)?.message).toMatch(/tier attested refused: the quote answers another challenge \(a replayed quote/);

    const rewritten = peer((nonce, m) => m.send({ ...old, nonce }));
    await rewritten.connect(t.node.minerUrl);
    expect((await rewritten.closed).code).toBe(TIER_REFUSED);
    expect(errorOf(rewritten)?.message).toMatch(/tier attested refused: the quote was signed over another nonce than this challenge's \(a replayed quote\)/);
    expect(attestation(t).refused['nonce']).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('refuses a quote from another TPM than the registered one', async () => {
    const m = peer(honest(otherTpm));
    await m.connect(t.node.minerUrl);
    expect((await m.closed).code).toBe(TIER_REFUSED);
    expect(errorOf(m)?.message).toMatch(/tier attested refused: the quote signature does not verify against the attestation key registered for this miner \(a quote from another TPM/);
    expect(attestation(t).refused['signature']).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('refuses a changed runtime: one whose measurement is not on the allow-list', async () => {
    const strict = await startTestNode({
      grants: { miners: { [minerIdOf(peerKey.publicKey)]: { attestationKey: await peerTpm.attestationKey() } }, attestation: { runtimes: ['0'.repeat(64)], dservices: { echo: echoDigest } } },
    });
    try {
      const m = peer(honest(peerTpm));
      await m.connect(strict.node.minerUrl);
      expect((await m.closed).code).toBe(TIER_REFUSED);
      expect(errorOf(m)?.message).toMatch(/tier attested refused: the miner runtime measured as [0-9a-f]{16}.* is not on the allow-list of known-good runtimes/);
      expect(attestation(strict).refused['runtime']).toBe(1);
    } finally {
      await strict.cleanup();
    }
  }, 60_000);

  it('refuses a stale nonce: a quote not given within the nonce lifetime', async () => {
    const quick = await startTestNode({
      grants: { miners: { [minerIdOf(peerKey.publicKey)]: { attestationKey: await peerTpm.attestationKey() } }, attestation: { runtimes: [log[0]!.digest], dservices: { echo: echoDigest } } },
      attestation: { intervalMs: 60_000, timeoutMs: 300 },
    });
    try {
      // Quotes only after the nonce's lifetime has passed (by then the node has given up on it).
      const late = peer(async (nonce, m) => {
        const asked = Date.now();
        await waitFor(() => Date.now() - asked > 400 || m.ws.readyState !== m.ws.OPEN, 'the nonce to go stale');
        if (m.ws.readyState === m.ws.OPEN) await honest(peerTpm)(nonce, m);
      });
      await late.connect(quick.node.minerUrl);
      expect((await late.closed).code).toBe(TIER_REFUSED);
      expect(errorOf(late)?.message).toMatch(/tier attested refused: stale nonce: no quote within 300 ms of the challenge/);
      expect(attestation(quick).refused['timeout']).toBe(1);
    } finally {
      await quick.cleanup();
    }
  }, 60_000);
});
