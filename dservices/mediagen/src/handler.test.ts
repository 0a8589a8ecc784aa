import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { DServiceRequest, DServiceResponse } from '@cgn/sdk';
import { DEFAULT_CONFIG } from './config.js';
import { createHandler } from './handler.js';
import { alphaPng, photoJpeg, watermarkPng } from '../test/fixtures.js';

const handler = createHandler(DEFAULT_CONFIG);

function request(path: string, body: Buffer, init: { method?: string; query?: string; headers?: Record<string, string> } = {}): DServiceRequest {
  return { method: init.method ?? 'POST', path, query: new URLSearchParams(init.query ?? ''), headers: init.headers ?? {}, body };
}

const call = async (req: DServiceRequest): Promise<DServiceResponse> => handler(req);
const bytes = (r: DServiceResponse): Buffer => Buffer.from(r.body as Uint8Array);

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  param?: string;
}

function problem(r: DServiceResponse): Problem {
  expect(r.headers?.['content-type']).toBe('application/problem+json');
  const p = JSON.parse(String(r.body)) as Problem;
  expect(p.status).toBe(r.status);
  return p;
}

describe('POST /transform', () => {
  it('answers the benchmark request: 1200x900 JPEG -> 400 px wide WebP', async () => {
    const r = await call(request('/transform', await photoJpeg(), { query: 'width=400&format=webp' }));
    expect(r.status).toBe(200);
    expect(r.headers?.['content-type']).toBe('image/webp');
    expect(r.headers?.['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers?.['etag']).toMatch(/^"[0-9a-f]{32}"$/);
    const m = await sharp(bytes(r)).metadata();
    expect([m.format, m.width, m.height]).toEqual(['webp', 400, 300]);
  });

  it('is deterministic: same input and parameters, same bytes and ETag', async () => {
    const query = 'width=500&height=300&fit=cover&position=attention&sharpen=true&text=CGN&quality=60&format=jpeg';
    const a = await call(request('/transform', await photoJpeg(), { query }));
    const b = await call(request('/transform', Buffer.from(await photoJpeg()), { query }));
    expect(a.status).toBe(200);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(a.headers?.['etag']).toBe(b.headers?.['etag']);
    const c = await call(request('/transform', await photoJpeg(), { query: query.replace('quality=60', 'quality=61') }));
    expect(c.headers?.['etag']).not.toBe(a.headers?.['etag']);
  });

  it('takes an image watermark framed before the image', async () => {
    const wm = await watermarkPng();
    const body = Buffer.concat([wm, await photoJpeg(600, 400)]);
    const r = await call(request('/transform', body, { query: 'format=png&watermarkGravity=northwest', headers: { 'x-watermark-length': String(wm.length) } }));
    expect(r.status).toBe(200);
    expect(r.headers?.['content-type']).toBe('image/png');
    const { data } = await sharp(bytes(r)).raw().toBuffer({ resolveWithObject: true });
    expect([data[0], data[1], data[2]]).toEqual([255, 0, 255]);
  });

  it('refuses a bad x-watermark-length, naming the header', async () => {
    const r = await call(request('/transform', await photoJpeg(), { headers: { 'x-watermark-length': '99999999' } }));
    expect(r.status).toBe(400);
    expect(problem(r)).toMatchObject({ title: 'Bad Parameter', param: 'x-watermark-length' });
  });

  it.each([
    ['width=abc', 'width'],
    ['width=0', 'width'],
    ['width=10&fit=weird', 'fit'],
    ['format=bmp', 'format'],
    ['colour=red', 'colour'],
    ['crop=0,0,5000,10', 'crop'],
  ])('%s -> 400 naming %s', async (query, param) => {
    const r = await call(request('/transform', await photoJpeg(), { query }));
    expect(r.status).toBe(400);
    const p = problem(r);
    expect(p.param).toBe(param);
    expect(p.detail).toContain(param);
  });

  it('corrupt, truncated, unsupported and empty bodies -> 400 Bad Image', async () => {
    const jpeg = await photoJpeg();
    const corruptHeader = Buffer.from(jpeg);
    corruptHeader.fill(0x00, 2, 400);
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(0), /empty/],
      [Buffer.from('definitely not an image'), /not a supported image/],
      [Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'), /not a supported image/],
      [jpeg.subarray(0, 5000), /could not be decoded/],
      [corruptHeader, /image/],
    ];
    for (const [body, detail] of cases) {
      const r = await call(request('/transform', body, { query: 'width=100' }));
      expect(r.status, String(detail)).toBe(400);
      const p = problem(r);
      expect(p.title).toBe('Bad Image');
      expect(p.detail).toMatch(detail);
    }
  });

  it('too many pixels -> 413 Image Too Large', async () => {
    const small = createHandler({ ...DEFAULT_CONFIG, maxPixels: 500_000 });
    const r = await small(request('/transform', await photoJpeg(), { query: 'width=100' }));
    expect(r.status).toBe(413);
    expect(problem(r)).toMatchObject({ title: 'Image Too Large' });
    expect(problem(r).detail).toMatch(/1200x900 = 1080000 pixels, more than the limit of 500000/);
  });

  it('a header claiming a huge size -> 413 before anything is decoded', async () => {
    // A 1x1 PNG whose IHDR says 30000x30000 (the CRC is not checked before the limit).
    const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer());
    png.writeUInt32BE(30000, 16);
    png.writeUInt32BE(30000, 20);
    const r = await call(request('/transform', png, { query: 'width=10' }));
    expect(r.status).toBe(413);
    expect(problem(r).detail).toMatch(/30000x30000/);
    // /info reads only the header, so it may describe such an image.
    expect(JSON.parse(String(bytes(await call(request('/info', png)))))).toMatchObject({ width: 30000, height: 30000 });
  });
});

describe('POST /info', () => {
  it('describes a JPEG', async () => {
    const jpeg = await photoJpeg();
    const r = await call(request('/info', jpeg));
    expect(r.status).toBe(200);
    expect(r.headers?.['content-type']).toBe('application/json');
    expect(r.headers?.['etag']).toMatch(/^"[0-9a-f]{32}"$/);
    expect(JSON.parse(String(bytes(r)))).toEqual({
      format: 'jpeg', width: 1200, height: 900, oriented: { width: 1200, height: 900 },
      channels: 3, space: 'srgb', hasAlpha: false, orientation: 1, density: 72, size: jpeg.length,
    });
  });

  it('describes alpha, EXIF orientation, and animation pages', async () => {
    const png = JSON.parse(String(bytes(await call(request('/info', await alphaPng())))));
    expect(png).toMatchObject({ format: 'png', width: 300, height: 200, channels: 4, hasAlpha: true });
    expect(png.pages).toBeUndefined();

    const tagged = await sharp(await photoJpeg(300, 200)).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    expect(JSON.parse(String(bytes(await call(request('/info', tagged)))))).toMatchObject({ orientation: 6, width: 300, height: 200, oriented: { width: 200, height: 300 } });

    const frame = { width: 20, height: 20, channels: 4 as const };
    const frames = Buffer.concat([Buffer.alloc(20 * 20 * 4, 0xff), Buffer.alloc(20 * 20 * 4, 0x40), Buffer.alloc(20 * 20 * 4, 0x80)]);
    const gif = await sharp(frames, { raw: { ...frame, height: 60, pageHeight: 20 } }).gif().toBuffer();
    expect(JSON.parse(String(bytes(await call(request('/info', gif)))))).toMatchObject({ format: 'gif', pages: 3, width: 20, height: 20 });
  });

  it('is deterministic', async () => {
    const a = await call(request('/info', await photoJpeg()));
    const b = await call(request('/info', await photoJpeg()));
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(a.headers?.['etag']).toBe(b.headers?.['etag']);
  });

  it('refuses parameters and non-images', async () => {
    const r = await call(request('/info', await photoJpeg(), { query: 'width=1' }));
    expect(r.status).toBe(400);
    expect(problem(r).param).toBe('width');
    const bad = await call(request('/info', Buffer.from('nope')));
    expect(bad.status).toBe(400);
    expect(problem(bad).title).toBe('Bad Image');
    const empty = await call(request('/info', Buffer.alloc(0)));
    expect(problem(empty).detail).toMatch(/empty/);
  });
});

describe('routing', () => {
  it('unknown paths -> 404', async () => {
    for (const path of ['/', '/resize', '/transform/', '/info/x', '/toString', '/__proto__']) {
      const r = await call(request(path, Buffer.alloc(0)));
      expect(r.status, path).toBe(404);
      expect(problem(r).title).toBe('Not Found');
    }
  });

  it('wrong method -> 405 with Allow', async () => {
    for (const [method, path] of [['GET', '/transform'], ['PUT', '/info'], ['DELETE', '/transform']] as const) {
      const r = await call(request(path, Buffer.alloc(0), { method }));
      expect(r.status).toBe(405);
      expect(r.headers?.['allow']).toBe('POST');
      expect(problem(r).title).toBe('Method Not Allowed');
    }
  });
});
