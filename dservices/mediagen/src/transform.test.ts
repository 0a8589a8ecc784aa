import { describe, expect, it, beforeAll } from 'vitest';
import fc from 'fast-check';
import sharp from 'sharp';
import { DEFAULT_CONFIG } from './config.js';
import { BadImageError, BadParameterError, ImageTooLargeError, ProcessingTimeoutError } from './errors.js';
import { parseTransformQuery } from './params.js';
import { configureSharp } from './sharp-setup.js';
import { splitStages, Transformer } from './transform.js';
import {
  alphaPng, colourName, near, photoJpeg, pixelAt, quadrantColours, quadrantsPng, watermarkPng,
} from '../test/fixtures.js';

const t = new Transformer(DEFAULT_CONFIG);
const run = (image: Buffer, query: string, watermark: Buffer | null = null) =>
  t.transform(image, parseTransformQuery(new URLSearchParams(query), watermark));
const dims = async (image: Buffer) => {
  const m = await sharp(image).metadata();
  return [m.width, m.height];
};

beforeAll(() => configureSharp());

describe('resize', () => {
  it.each([
    ['cover', [400, 400]],
    ['contain', [400, 400]],
    ['fill', [400, 400]],
    ['inside', [400, 300]],
    ['outside', [533, 400]],
  ])('fit=%s of 1200x900 into 400x400 is %j', async (fit, expected) => {
    const out = await run(await photoJpeg(), `width=400&height=400&fit=${fit}`);
    expect(await dims(out.data)).toEqual(expected);
    expect([out.width, out.height]).toEqual(expected);
  });

  it('keeps the aspect ratio with only a width or only a height', async () => {
    expect(await dims((await run(await photoJpeg(), 'width=400')).data)).toEqual([400, 300]);
    // The given side is exact; the other may be a pixel off exact rounding (JPEG shrink-on-load).
    const [w, h] = await dims((await run(await photoJpeg(), 'height=90')).data);
    expect(h).toBe(90);
    expect(Math.abs(w! - 120)).toBeLessThanOrEqual(1);
  });

  it('contain letterboxes with the background colour', async () => {
    const out = await run(await photoJpeg(), 'width=400&height=400&fit=contain&background=ff0000&format=png');
    expect(colourName(await pixelAt(out.data, 200, 5))).toBe('red');
  });

  it('withoutEnlargement keeps a small image small', async () => {
    const out = await run(await alphaPng(), 'width=1000&fit=inside&withoutEnlargement=true');
    expect(await dims(out.data)).toEqual([300, 200]);
  });

  it('position picks the part kept by cover', async () => {
    const q = await quadrantsPng();
    const west = await run(q, 'width=50&height=100&fit=cover&position=west');
    const east = await run(q, 'width=50&height=100&fit=cover&position=east');
    expect((await quadrantColours(west.data)).map(colourName)).toEqual(['red', 'red', 'blue', 'blue']);
    expect((await quadrantColours(east.data)).map(colourName)).toEqual(['green', 'green', 'white', 'white']);
  });

  it('property: fit=fill yields exactly the requested size', async () => {
    const small = await photoJpeg(64, 48);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 200 }), async (w, h) => {
        const out = await run(small, `width=${w}&height=${h}&fit=fill&format=png`);
        expect(await dims(out.data)).toEqual([w, h]);
      }),
      { numRuns: 40 },
    );
  });
});

describe('formats', () => {
  const magic = {
    jpeg: (b: Buffer) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
    png: (b: Buffer) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    webp: (b: Buffer) => b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP',
    avif: (b: Buffer) => b.toString('latin1', 4, 8) === 'ftyp' && b.toString('latin1', 8, 12) === 'avif',
  };
  it.each(['jpeg', 'png', 'webp', 'avif'] as const)('converts JPEG to %s', async (format) => {
    const out = await run(await photoJpeg(), `width=200&format=${format}`);
    expect(out.format).toBe(format);
    expect(magic[format](out.data)).toBe(true);
    const m = await sharp(out.data).metadata();
    expect(m.format).toBe(format === 'avif' ? 'heif' : format);
    expect([m.width, m.height]).toEqual([200, 150]);
  });

  it('keeps the input format by default, and writes PNG for GIF input', async () => {
    expect((await run(await photoJpeg(), 'width=100')).format).toBe('jpeg');
    expect((await run(await alphaPng(), 'width=100')).format).toBe('png');
    const gif = await sharp(await alphaPng()).gif().toBuffer();
    const out = await run(gif, 'width=100');
    expect(out.format).toBe('png');
    expect(magic.png(out.data)).toBe(true);
  });

  it('keeps alpha in PNG and WebP', async () => {
    for (const format of ['png', 'webp']) {
      const out = await run(await alphaPng(), `format=${format}`);
      expect((await sharp(out.data).metadata()).hasAlpha).toBe(true);
    }
  });

  it('quality changes the size', async () => {
    for (const format of ['jpeg', 'webp', 'avif']) {
      const low = await run(await photoJpeg(), `width=400&format=${format}&quality=10`);
      const high = await run(await photoJpeg(), `width=400&format=${format}&quality=95`);
      expect(low.data.length, format).toBeLessThan(high.data.length);
    }
  });

  it('strips metadata (EXIF, ICC)', async () => {
    const withExif = await sharp(await photoJpeg(300, 200)).withMetadata({ exif: { IFD0: { Copyright: 'someone' } } }).jpeg().toBuffer();
    expect((await sharp(withExif).metadata()).exif).toBeDefined();
    const out = await run(withExif, 'width=100');
    const m = await sharp(out.data).metadata();
    expect(m.exif).toBeUndefined();
    expect(m.icc).toBeUndefined();
  });
});

describe('geometry', () => {
  it('crops', async () => {
    const out = await run(await photoJpeg(), 'crop=100,50,300,200');
    expect(await dims(out.data)).toEqual([300, 200]);
    const q = await run(await quadrantsPng(), 'crop=0,0,100,50');
    expect((await quadrantColours(q.data)).map(colourName)).toEqual(['red', 'red', 'red', 'red']);
  });

  it('rotates by right angles clockwise and by other angles into a larger box', async () => {
    expect(await dims((await run(await photoJpeg(), 'rotate=90')).data)).toEqual([900, 1200]);
    expect(await dims((await run(await photoJpeg(), 'rotate=-90')).data)).toEqual([900, 1200]);
    expect(await dims((await run(await photoJpeg(), 'rotate=540')).data)).toEqual([1200, 900]);
    const [w, h] = await dims((await run(await photoJpeg(300, 200), 'rotate=45')).data);
    expect(w).toBeGreaterThanOrEqual(353);
    expect(w).toBeLessThanOrEqual(355);
    expect(h).toBe(w);
    const q = await run(await quadrantsPng(), 'rotate=90');
    expect((await quadrantColours(q.data)).map(colourName)).toEqual(['blue', 'red', 'white', 'green']);
  });

  it('fills the corners of a non-right rotation with the background', async () => {
    const out = await run(await photoJpeg(300, 200), 'rotate=30&background=00ff00&format=png');
    expect(colourName(await pixelAt(out.data, 0, 0))).toBe('green');
  });

  it('flips vertically and flops horizontally', async () => {
    const q = await quadrantsPng();
    expect((await quadrantColours((await run(q, 'flip=true')).data)).map(colourName)).toEqual(['blue', 'white', 'red', 'green']);
    expect((await quadrantColours((await run(q, 'flop=true')).data)).map(colourName)).toEqual(['green', 'red', 'white', 'blue']);
    expect(await dims((await run(await photoJpeg(), 'flip=true&flop=true')).data)).toEqual([1200, 900]);
  });

  /** The same operations one request at a time, in the documented order. */
  async function stepByStep(image: Buffer, steps: string[]): Promise<Buffer> {
    let cur = image;
    for (const s of steps) cur = (await run(cur, `${s}&format=png`)).data;
    return cur;
  }

  it.each([
    [['rotate=90', 'flip=true']],
    [['rotate=90', 'flop=true']],
    [['rotate=270', 'flip=true', 'flop=true', 'width=60&height=100&fit=fill']],
    [['crop=0,0,150,100', 'rotate=90', 'width=50']],
    [['crop=50,0,150,100', 'rotate=90', 'flip=true', 'width=40&height=60&fit=fill']],
    [['crop=0,0,100,100', 'flop=true']],
    [['crop=0,0,150,100', 'width=30']],
    [['rotate=90', 'width=40']],
    [['rotate=90', 'flip=true', 'flop=true', 'width=30']],
    [['crop=0,0,150,100', 'rotate=270', 'flop=true', 'width=40&height=40&fit=cover']],
    [['rotate=45&background=000000', 'flop=true']],
    [['crop=0,0,150,100', 'rotate=30', 'width=100']],
  ])('combined %j equals the steps one by one', async (steps) => {
    const q = await quadrantsPng();
    const combined = await run(q, steps.join('&') + '&format=png');
    const reference = await stepByStep(q, steps);
    expect(await dims(combined.data)).toEqual(await dims(reference));
    expect((await quadrantColours(combined.data)).map(colourName)).toEqual((await quadrantColours(reference)).map(colourName));
  });

  it('rejects a crop outside the image, naming crop', async () => {
    await expect(run(await photoJpeg(), 'crop=1000,0,300,100')).rejects.toSatisfy(
      (e: unknown) => e instanceof BadParameterError && e.param === 'crop' && e.message.includes('1200x900'),
    );
  });

  it('crops in EXIF-oriented coordinates', async () => {
    // Stored 200x100; orientation 6 means "rotate 90 clockwise to display": shown 100x200.
    const tagged = await sharp(await quadrantsPng()).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const out = await run(tagged, 'crop=0,0,100,200&format=png');
    expect(await dims(out.data)).toEqual([100, 200]);
    expect((await quadrantColours(out.data)).map(colourName)).toEqual(['blue', 'red', 'white', 'green']);
  });
});

describe('effects', () => {
  it('grayscale gives one channel', async () => {
    for (const format of ['png', 'jpeg']) {
      const out = await run(await photoJpeg(), `width=200&grayscale=true&format=${format}`);
      const m = await sharp(out.data).metadata();
      expect(m.channels, format).toBe(1);
      expect(m.space).toBe('b-w');
    }
  });

  it('blur smooths and sharpen sharpens', async () => {
    const base = await run(await photoJpeg(), 'width=400&format=png');
    const blurred = await run(await photoJpeg(), 'width=400&format=png&blur=5');
    const sharpened = await run(await photoJpeg(), 'width=400&format=png&sharpen=2');
    const sharpenedDefault = await run(await photoJpeg(), 'width=400&format=png&sharpen=true');
    // Less detail compresses better; more detail worse.
    expect(blurred.data.length).toBeLessThan(base.data.length);
    expect(sharpened.data.length).toBeGreaterThan(base.data.length);
    expect(sharpenedDefault.data.equals(base.data)).toBe(false);
  });
});

describe('watermarks', () => {
  it('text changes pixels near its gravity and nowhere else', async () => {
    const plain = await run(await photoJpeg(600, 400), 'format=png');
    const marked = await run(await photoJpeg(600, 400), 'format=png&text=CGN%20Sample&textColor=ffffff&textSize=48&gravity=southeast');
    const m = await sharp(marked.data).metadata();
    expect([m.width, m.height, m.channels]).toEqual([600, 400, 3]);
    const a = await sharp(plain.data).raw().toBuffer();
    const b = await sharp(marked.data).raw().toBuffer();
    let changedBottomRight = 0;
    let changedTopLeft = 0;
    for (let y = 0; y < 400; y++) {
      for (let x = 0; x < 600; x++) {
        const i = (y * 600 + x) * 3;
        if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) {
          if (x > 300 && y > 300) changedBottomRight++;
          if (x < 300 && y < 200) changedTopLeft++;
        }
      }
    }
    expect(changedBottomRight).toBeGreaterThan(500);
    expect(changedTopLeft).toBe(0);
  });

  it('escapes text so it cannot break out of the SVG', async () => {
    const out = await run(await photoJpeg(300, 200), `format=png&text=${encodeURIComponent('</text><image href="file:///etc/passwd"/>&amp;')}`);
    expect(await dims(out.data)).toEqual([300, 200]);
  });

  it('draws an image watermark at its gravity', async () => {
    const out = await run(await photoJpeg(600, 400), 'format=png&watermarkGravity=northwest', await watermarkPng());
    expect(near(await pixelAt(out.data, 10, 10), { r: 255, g: 0, b: 255 }, 2)).toBe(true);
    expect(near(await pixelAt(out.data, 590, 390), { r: 255, g: 0, b: 255 }, 2)).toBe(false);
    const se = await run(await photoJpeg(600, 400), 'format=png', await watermarkPng());
    expect(near(await pixelAt(se.data, 590, 390), { r: 255, g: 0, b: 255 }, 2)).toBe(true);
  });

  it('shrinks a watermark larger than the output to fit, after the resize', async () => {
    const out = await run(await photoJpeg(), 'width=50&format=png', await watermarkPng(600, 400));
    const plain = await run(await photoJpeg(), 'width=50&format=png');
    expect(await dims(out.data)).toEqual(await dims(plain.data));
    expect(near(await pixelAt(out.data, 25, 18), { r: 255, g: 0, b: 255 }, 2)).toBe(true);
  });

  it('combines image and text watermarks with other operations', async () => {
    const out = await run(await photoJpeg(), 'width=400&grayscale=true&text=hi&gravity=north&format=webp', await watermarkPng());
    expect(await dims(out.data)).toEqual([400, 300]);
  });

  it('rejects a watermark that is not an image', async () => {
    await expect(run(await photoJpeg(), 'width=100', Buffer.from('nope'))).rejects.toSatisfy(
      (e: unknown) => e instanceof BadImageError && e.message.includes('watermark image'),
    );
  });
});

describe('determinism', () => {
  it.each([
    'width=400&format=webp',
    'width=400&format=jpeg&quality=70',
    'width=300&format=avif',
    'width=300&format=png&quality=50',
    'rotate=33&background=ff000080&blur=1.5&format=png',
    'width=300&text=Hello&textColor=%23ff000080&format=webp',
  ])('%s gives the same bytes twice', async (query) => {
    const a = await run(await photoJpeg(), query, query.includes('text') ? await watermarkPng() : null);
    const b = await run(await photoJpeg(), query, query.includes('text') ? await watermarkPng() : null);
    expect(a.data.equals(b.data)).toBe(true);
  });
});

describe('bad input', () => {
  it('rejects an empty body', async () => {
    await expect(run(Buffer.alloc(0), 'width=10')).rejects.toSatisfy((e: unknown) => e instanceof BadImageError && e.message.includes('empty'));
  });

  it('rejects bytes that are no image, and SVG', async () => {
    await expect(run(Buffer.from('hello, world'), 'width=10')).rejects.toBeInstanceOf(BadImageError);
    await expect(run(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), '')).rejects.toBeInstanceOf(BadImageError);
  });

  it('rejects a truncated JPEG and a corrupt PNG', async () => {
    const jpeg = await photoJpeg();
    await expect(run(jpeg.subarray(0, jpeg.length >> 1), 'width=100')).rejects.toSatisfy(
      (e: unknown) => e instanceof BadImageError && /could not be decoded/.test(e.message),
    );
    const png = Buffer.from(await alphaPng());
    png.fill(0x55, 40, 200);
    await expect(run(png, 'width=100')).rejects.toBeInstanceOf(BadImageError);
  });

  it('refuses too many input pixels, and too many output pixels', async () => {
    const small = new Transformer({ ...DEFAULT_CONFIG, maxPixels: 100_000 });
    await expect(small.transform(await photoJpeg(), { operations: [] })).rejects.toSatisfy(
      (e: unknown) => e instanceof ImageTooLargeError && e.status === 413 && e.message.includes('1200x900'),
    );
    const plan = parseTransformQuery(new URLSearchParams('width=2000&height=2000&fit=fill'), null);
    await expect(small.transform(await photoJpeg(100, 100), plan)).rejects.toBeInstanceOf(ImageTooLargeError);
  });

  it('stops processing that takes longer than the time limit', async () => {
    const impatient = new Transformer({ ...DEFAULT_CONFIG, timeoutSeconds: 1 });
    const started = Date.now();
    const plan = parseTransformQuery(new URLSearchParams('blur=1000&format=png'), null);
    await expect(impatient.transform(await photoJpeg(), plan)).rejects.toSatisfy(
      (e: unknown) => e instanceof ProcessingTimeoutError && e.status === 422,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses a WebP output larger than WebP allows, naming format', async () => {
    const plan = parseTransformQuery(new URLSearchParams('width=16384&height=100&fit=fill&format=webp'), null);
    await expect(t.transform(await photoJpeg(100, 100), plan)).rejects.toSatisfy((e: unknown) => e instanceof BadParameterError && e.param === 'format');
  });
});

describe('splitStages', () => {
  const ops = (q: string, wm = false) => parseTransformQuery(new URLSearchParams(q), wm ? Buffer.from('x') : null).operations;
  const shape = (q: string, wm = false) => splitStages(ops(q, wm)).map((s) => s.map((o) => o.op));

  it('keeps common plans in one pipeline', () => {
    expect(shape('width=400&format=webp')).toEqual([['resize']]);
    expect(shape('crop=0,0,10,10&width=5&blur=1&grayscale=true')).toEqual([['crop', 'resize', 'blur', 'grayscale']]);
    expect(shape('rotate=90&width=5&sharpen=true')).toEqual([['rotate', 'resize', 'sharpen']]);
    expect(shape('flip=true&flop=true&width=5')).toEqual([['flip', 'flop', 'resize']]);
    expect(shape('text=a')).toEqual([['text']]);
  });

  it('cuts after a crop that is rotated or mirrored, and before watermarks', () => {
    expect(shape('crop=0,0,10,10&rotate=90&width=5')).toEqual([['crop'], ['rotate', 'resize']]);
    expect(shape('crop=0,0,10,10&flop=true')).toEqual([['crop'], ['flop']]);
    expect(shape('rotate=90&flip=true&width=5')).toEqual([['rotate'], ['flip', 'resize']]);
    expect(shape('crop=0,0,10,10&rotate=90&flop=true')).toEqual([['crop'], ['rotate'], ['flop']]);
    expect(shape('width=5&text=a', true)).toEqual([['resize'], ['watermark', 'text']]);
  });
});
