import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { pack, type Headers } from 'tar-stream';
import fc from 'fast-check';
import { CgnError } from '@cgn/protocol';
import { digestPackage } from './digest.js';
import { inspectArchive, packToBuffer, unpackArchive } from './package-archive.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cgn-archive-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A hand-made archive: entries exactly as given (a hostile packer). */
async function rawArchive(entries: { header: Headers; body?: string | Buffer }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const e of entries) await new Promise<void>((res, rej) => p.entry(e.header, e.body ?? '', (err) => (err ? rej(err) : res())));
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

async function refusal(archive: Buffer, expectedDigest?: string): Promise<{ reason: unknown; dest: string; err: CgnError }> {
  const dest = join(tmp(), 'out');
  const err = await unpackArchive(Readable.from([archive]), dest, expectedDigest === undefined ? {} : { expectedDigest }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CgnError);
  expect(existsSync(dest)).toBe(false);
  return { reason: (err as CgnError).details?.['reason'], dest, err: err as CgnError };
}

function samplePackage(): string {
  const d = tmp();
  writeFileSync(join(d, 'dservice.json'), '{"name":"x"}');
  mkdirSync(join(d, 'dist', 'lib'), { recursive: true });
  writeFileSync(join(d, 'dist', 'index.js'), 'console.log(1)\n', { mode: 0o755 });
  writeFileSync(join(d, 'dist', 'lib', 'a.js'), 'export {}\n');
  writeFileSync(join(d, 'dist', 'index.js.map'), '{}');
  writeFileSync(join(d, 'dist', 'x.test.js'), 'test');
  mkdirSync(join(d, 'node_modules', 'dep'), { recursive: true });
  writeFileSync(join(d, 'node_modules', 'dep', 'index.js'), 'dep');
  symlinkSync('lib/a.js', join(d, 'dist', 'alias.js'));
  writeFileSync(join(d, 'empty'), '');
  return d;
}

describe('package archives', () => {
  it('packs the files the digest covers, and unpacks to a tree with the same digest', async () => {
    const src = samplePackage();
    const packed = await packToBuffer(src);
    expect(packed.digest).toBe(await digestPackage(src));
    expect(packed.files).toBe(5); // dservice.json, dist/alias.js, dist/index.js, dist/lib/a.js, empty
    expect(packed.sizeBytes).toBe(packed.archive.length);

    const seen = await inspectArchive(Readable.from([packed.archive]));
    expect(seen.digest).toBe(packed.digest);

    const dest = join(tmp(), 'pkg');
    const got = await unpackArchive(Readable.from([packed.archive]), dest, { expectedDigest: packed.digest });
    expect(got.digest).toBe(packed.digest);
    expect(readFileSync(join(dest, 'dist', 'alias.js'), 'utf8')).toBe('export {}\n');
    expect(existsSync(join(dest, 'node_modules'))).toBe(false);
    expect(existsSync(join(dest, 'dist', 'x.test.js'))).toBe(false);
  });

  it('packs the same directory to the same bytes', async () => {
    const src = samplePackage();
    const a = await packToBuffer(src);
    const b = await packToBuffer(src);
    expect(a.archive.equals(b.archive)).toBe(true);
  });

  it('round-trips any small tree: the archive digest is the directory digest (property)', async () => {
    const name = fc.stringMatching(/^[a-z0-9_-]{1,8}$/).filter((s) => s !== 'node_modules');
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.tuple(name, fc.option(name, { nil: undefined })).map(([a, b]) => (b === undefined ? a : `${a}/${b}`)), fc.uint8Array({ maxLength: 300 }), { maxKeys: 6 }), async (tree) => {
        const src = tmp();
        for (const [rel, body] of Object.entries(tree)) {
          const path = join(src, rel);
          mkdirSync(join(path, '..'), { recursive: true });
          try {
            writeFileSync(path, body);
          } catch {
            // a name that is both a file and a directory: skip that one
          }
        }
        const packed = await packToBuffer(src);
        expect(packed.digest).toBe(await digestPackage(src));
        const dest = join(tmp(), 'out');
        await unpackArchive(Readable.from([packed.archive]), dest, { expectedDigest: packed.digest });
        expect(await digestPackage(dest)).toBe(packed.digest);
      }),
      { numRuns: 25 },
    );
  });

  it('refuses a digest that is not the expected one, and leaves nothing behind', async () => {
    const packed = await packToBuffer(samplePackage());
    const { reason } = await refusal(packed.archive, 'f'.repeat(64));
    expect(reason).toBe('digest_mismatch');
  });

  it('refuses path traversal and absolute paths', async () => {
    expect((await refusal(await rawArchive([{ header: { name: '../evil.js' }, body: 'x' }]))).reason).toBe('path_traversal');
    expect((await refusal(await rawArchive([{ header: { name: 'a/../../evil.js' }, body: 'x' }]))).reason).toBe('path_traversal');
    expect((await refusal(await rawArchive([{ header: { name: '/etc/evil' }, body: 'x' }]))).reason).toBe('absolute_path');
    expect((await refusal(await rawArchive([{ header: { name: './a.js' }, body: 'x' }]))).reason).toBe('bad_path');
  });

  it('refuses symbolic links that leave the package, and entries written through a link', async () => {
    expect((await refusal(await rawArchive([{ header: { name: 'l', type: 'symlink', linkname: '/etc/passwd' } }]))).reason).toBe('link_escape');
    expect((await refusal(await rawArchive([{ header: { name: 'a/l', type: 'symlink', linkname: '../../x' } }]))).reason).toBe('link_escape');
    const through = await rawArchive([
      { header: { name: 'l', type: 'symlink', linkname: 'sub' } },
      { header: { name: 'l/x.js' }, body: 'x' },
    ]);
    expect((await refusal(through)).reason).toBe('link_escape');
  });

  it('refuses a link whose target climbs through another link (the kernel follows the inner link first)', async () => {
    // a/b/up -> ../.. is the package root; a/x -> b/up/.. reads like a/b, but is the package's parent.
    const chain = await rawArchive([
      { header: { name: 'a/b/up', type: 'symlink', linkname: '../..' } },
      { header: { name: 'a/x', type: 'symlink', linkname: 'b/up/..' } },
    ]);
    expect((await refusal(chain)).reason).toBe('bad_link');
    const via = await rawArchive([
      { header: { name: 'a/b/up', type: 'symlink', linkname: '../..' } },
      { header: { name: 'a/x', type: 'symlink', linkname: 'b/up/c' } },
    ]);
    expect((await refusal(via)).reason).toBe('link_escape');
  });

  it('refuses hard links, devices and fifos', async () => {
    expect((await refusal(await rawArchive([{ header: { name: 'h', type: 'link', linkname: 'a' } }]))).reason).toBe('bad_entry_type');
    expect((await refusal(await rawArchive([{ header: { name: 'd', type: 'character-device', devmajor: 1, devminor: 3 } }]))).reason).toBe('bad_entry_type');
    expect((await refusal(await rawArchive([{ header: { name: 'f', type: 'fifo' } }]))).reason).toBe('bad_entry_type');
  });

  it('refuses entries out of order, repeated, or that the digest would skip', async () => {
    expect((await refusal(await rawArchive([{ header: { name: 'b' }, body: '1' }, { header: { name: 'a' }, body: '2' }]))).reason).toBe('bad_order');
    expect((await refusal(await rawArchive([{ header: { name: 'a' }, body: '1' }, { header: { name: 'a' }, body: '2' }]))).reason).toBe('bad_order');
    expect((await refusal(await rawArchive([{ header: { name: 'node_modules/x/index.js' }, body: '1' }]))).reason).toBe('excluded_path');
    expect((await refusal(await rawArchive([{ header: { name: 'a.test.js' }, body: '1' }]))).reason).toBe('excluded_path');
  });

  it('refuses archives over the size, unpacked-size and entry-count bounds, and garbage', async () => {
    const big = await rawArchive([{ header: { name: 'a' }, body: Buffer.alloc(200_000) }]);
    const dest = join(tmp(), 'o');
    const e1 = await unpackArchive(Readable.from([big]), dest, { limits: { maxArchiveBytes: 100 } }).catch((e: CgnError) => e);
    expect((e1 as CgnError).details?.['reason']).toBe('too_large');
    expect((e1 as CgnError).code).toBe('payload_too_large');
    const e2 = await unpackArchive(Readable.from([big]), dest, { limits: { maxUnpackedBytes: 100_000 } }).catch((e: CgnError) => e);
    expect((e2 as CgnError).details?.['reason']).toBe('too_large');
    const many = await rawArchive(['a', 'b', 'c'].map((n) => ({ header: { name: n }, body: n })));
    const e3 = await unpackArchive(Readable.from([many]), dest, { limits: { maxEntries: 2 } }).catch((e: CgnError) => e);
    expect((e3 as CgnError).details?.['reason']).toBe('too_many_files');
    expect(existsSync(dest)).toBe(false);
    expect((await refusal(Buffer.from('this is not gzip'))).reason).toBe('not_an_archive');
    // A gzip bomb: 64 MiB of zeros in one file, stopped by the unpacked bound, not inflated whole.
    const bomb = await rawArchive([{ header: { name: 'z' }, body: Buffer.alloc(64 * 1024 * 1024) }]);
    const e4 = await inspectArchive(Readable.from([bomb]), { maxUnpackedBytes: 1024 * 1024 }).catch((e: CgnError) => e);
    expect((e4 as CgnError).details?.['reason']).toBe('too_large');
  });

  it('a corrupted archive (random bytes of the tar changed) is unpacked whole and right, or refused with a CgnError leaving nothing (property)', async () => {
    const src = samplePackage();
    const good = await packToBuffer(src);
    const tar = gunzipSync(good.archive);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(tar.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (edits) => {
        const bad = Buffer.from(tar);
        for (const [at, byte] of edits) bad[at] = byte;
        const root = tmp();
        const dest = join(root, 'out');
        const r = await unpackArchive(Readable.from([gzipSync(bad)]), dest).then(
          (x) => x,
          (e: unknown) => e,
        );
        if (r instanceof Error) {
          expect(r).toBeInstanceOf(CgnError);
          expect(readdirSync(root)).toEqual([]);
        } else {
          expect(await digestPackage(dest)).toBe((r as { digest: string }).digest);
          expect(readdirSync(root)).toEqual(['out']);
        }
      }),
      { numRuns: 60 },
    );
  });
});
