import { mkdtempSync, readFileSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keccak256, toBytes } from 'viem';
import type { DisputeVerdict } from '../broker/redundancy.js';
import { buildEvidence, EvidenceStore } from './evidence.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cgn-evidence-'));
  dirs.push(d);
  return join(d, 'evidence.jsonl');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const verdict = (workId = 'w_1'): DisputeVerdict => ({
  workId,
  account: 'acct',
  dservice: 'echo',
  requestHash: 'ab'.repeat(32),
  receivedAt: 1_700_000_000_000,
  replicas: [
    { minerId: 'aa'.repeat(32), resultHash: '11'.repeat(32), claimedHash: '11'.repeat(32), status: 200, bodyBytes: 5, receivedAt: 1_700_000_000_010 },
    { minerId: 'bb'.repeat(32), resultHash: '22'.repeat(32), claimedHash: '11'.repeat(32), status: 200, bodyBytes: 5, receivedAt: 1_700_000_000_011 },
    { minerId: 'cc'.repeat(32), resultHash: '11'.repeat(32), claimedHash: '11'.repeat(32), status: 200, bodyBytes: 5, receivedAt: 1_700_000_000_020 },
  ],
  majorityHash: '11'.repeat(32),
  cheater: 'bb'.repeat(32),
});
const addresses: Record<string, `0x${string}`> = { ['aa'.repeat(32)]: '0x00000000000000000000000000000000000000a1', ['bb'.repeat(32)]: '0x00000000000000000000000000000000000000B2' };
const addressOf = (id: string) => addresses[id] ?? null;

describe('evidence', () => {
  it('is the dispute with addresses; its hash is keccak256 of its JSON text', () => {
    const e = buildEvidence(verdict(), { node: 'node-1', addressOf, now: () => 1_700_000_000_100 });
    expect(e.record).toMatchObject({
      v: 1, kind: 'cgn/redundant-result-mismatch', node: 'node-1', workId: 'w_1', dservice: 'echo',
      requestHash: `0x${'ab'.repeat(32)}`, majorityHash: `0x${'11'.repeat(32)}`,
      cheater: { minerId: 'bb'.repeat(32), address: '0x00000000000000000000000000000000000000B2' },
      detectedAt: '2023-11-14T22:13:20.100Z',
    });
    expect(e.record.replicas.map((r) => r.address)).toEqual([addresses['aa'.repeat(32)], addresses['bb'.repeat(32)], null]);
    expect(e.hash).toBe(keccak256(toBytes(JSON.stringify(e.record))));
    const other = buildEvidence(verdict('w_2'), { node: 'node-1', addressOf, now: () => 1_700_000_000_100 });
    expect(other.hash).not.toBe(e.hash);
  });

  it('refuses to build evidence from a dispute without a majority', () => {
    expect(() => buildEvidence({ ...verdict(), cheater: null, majorityHash: null }, { node: 'n', addressOf })).toThrow(/no majority/);
  });
});

describe('EvidenceStore', () => {
  it('keeps evidence, outcomes and bans across reopening', () => {
    const path = tmp();
    const e1 = buildEvidence(verdict('w_1'), { node: 'n', addressOf });
    const e2 = buildEvidence(verdict('w_2'), { node: 'n', addressOf });
    const s = new EvidenceStore(path);
    expect(s.add(e1)).toBe(true);
    expect(s.add(e1)).toBe(false); // same evidence once
    s.add(e2);
    s.setOutcome(e1.hash, { status: 'slashed', tx: `0x${'0'.repeat(64)}`, block: '7', gasUsed: '60000', amount: '10' });
    s.close();

    const again = new EvidenceStore(path);
    expect(again.pending().map((e) => e.hash)).toEqual([e2.hash]);
    expect(again.outcome(e1.hash)).toMatchObject({ status: 'slashed', block: '7' });
    expect(again.get(e2.hash)?.record.workId).toBe('w_2');
    expect(again.isBanned('bb'.repeat(32), null)).toBe(true);
    expect(again.isBanned('dd'.repeat(32), '0x00000000000000000000000000000000000000b2')).toBe(true); // same address, new key
    expect(again.isBanned('aa'.repeat(32), addresses['aa'.repeat(32)]!)).toBe(false);
    again.close();
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('drops a torn last line but refuses a tampered record', () => {
    const path = tmp();
    const e = buildEvidence(verdict(), { node: 'n', addressOf });
    const s = new EvidenceStore(path);
    s.add(e);
    s.close();
    appendFileSync(path, '{"type":"slash","ha');
    const reopened = new EvidenceStore(path);
    expect(reopened.pending()).toHaveLength(1);
    reopened.setOutcome(e.hash, { status: 'no-stake' });
    reopened.close();
    const third = new EvidenceStore(path);
    expect(third.outcome(e.hash)).toEqual({ status: 'no-stake' });
    third.close();

    const tampered = readFileSync(path, 'utf8').split('\n')[0]!.replace('"w_1"', '"w_9"');
    writeFileSync(path, tampered + '\n');
    expect(() => new EvidenceStore(path)).toThrow(/does not match its record/);
  });
});
