import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RateSourceError, parseRateDocument, readRateSource } from './rate-source.js';

describe('rate sources', () => {
  it('read "NUM/DEN", "NUM" and safe-integer numbers; refuse the rest with the expected form', () => {
    expect(parseRateDocument('{"cgnBaseUnitsPerMicroUsd": "20000000000000/3"}', 'x')).toEqual({ num: 20000000000000n, den: 3n });
    expect(parseRateDocument('{"cgnBaseUnitsPerMicroUsd": "7"}', 'x')).toEqual({ num: 7n, den: 1n });
    expect(parseRateDocument('{"cgnBaseUnitsPerMicroUsd": 9}', 'x')).toEqual({ num: 9n, den: 1n });
    for (const bad of ['{"cgnBaseUnitsPerMicroUsd": "1/0"}', '{"cgnBaseUnitsPerMicroUsd": 1.5}', '{"rate": "1"}', 'not json']) {
      expect(() => parseRateDocument(bad, 'x')).toThrow(/cgnBaseUnitsPerMicroUsd/);
    }
  });

  it('read a file and a URL, with the source and the time read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-rate-'));
    const server = createServer((req, res) => {
      if (req.url === '/rate') res.writeHead(200, { 'content-type': 'application/json' }).end('{"cgnBaseUnitsPerMicroUsd": "4/1"}');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const file = join(dir, 'rate.json');
      writeFileSync(file, '{"cgnBaseUnitsPerMicroUsd": "2/1"}');
      expect(await readRateSource({ file }, { now: () => 42 })).toEqual({ rate: { num: 2n, den: 1n }, source: `file:${file}`, fetchedAt: 42 });
      expect(await readRateSource({ url: `${base}/rate` }, { now: () => 43 })).toEqual({ rate: { num: 4n, den: 1n }, source: `${base}/rate`, fetchedAt: 43 });
      await expect(readRateSource({ url: `${base}/nope` })).rejects.toMatchObject({ code: 'rate_source_unreadable', message: expect.stringMatching(/HTTP 404/) });
      const missing = await readRateSource({ file: join(dir, 'missing.json') }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(RateSourceError);
      expect(missing).toMatchObject({ code: 'rate_source_unreadable' });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
