/**
 * Test images made with sharp. Noise comes from a seeded generator, so every run of the tests
 * sees the same bytes.
 */
import sharp from 'sharp';

function seededNoise(width: number, height: number, channels: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(width * height * channels);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < buf.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    buf[i] = s & 0xff;
  }
  return buf;
}

const memo = new Map<string, Promise<Buffer>>();
const once = (key: string, make: () => Promise<Buffer>): Promise<Buffer> => {
  let p = memo.get(key);
  if (p === undefined) memo.set(key, (p = make()));
  return p;
};

/** A photo-like JPEG: diagonal gradient and a disc, with blurred noise, quality 85. */
export function photoJpeg(width = 1200, height = 900): Promise<Buffer> {
  return once(`photo-${width}x${height}`, async () => {
    const noise = await sharp(seededNoise(width, height, 3, 42), { raw: { width, height, channels: 3 } }).blur(2).png().toBuffer();
    const svg = Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
        `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#204080"/><stop offset="1" stop-color="#f0c060"/></linearGradient></defs>` +
        `<rect width="${width}" height="${height}" fill="url(#g)"/><circle cx="${width / 2}" cy="${height / 2}" r="${Math.min(width, height) / 4}" fill="#c03030"/></svg>`,
    );
    return sharp(svg).composite([{ input: noise, blend: 'overlay' }]).jpeg({ quality: 85 }).toBuffer();
  });
}

/** 300x200 PNG with alpha: transparent background, a half-opaque green disc. */
export function alphaPng(): Promise<Buffer> {
  return once('alpha', () =>
    sharp(
      Buffer.from(
        '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><circle cx="150" cy="100" r="80" fill="#00c000" fill-opacity="0.5"/></svg>',
      ),
    )
      .png()
      .toBuffer(),
  );
}

export const RED = { r: 255, g: 0, b: 0 };
export const GREEN = { r: 0, g: 255, b: 0 };
export const BLUE = { r: 0, g: 0, b: 255 };
export const WHITE = { r: 255, g: 255, b: 255 };

/** A PNG in four solid quadrants: red top-left, green top-right, blue bottom-left, white bottom-right. */
export function quadrantsPng(width = 200, height = 100): Promise<Buffer> {
  return once(`quadrants-${width}x${height}`, () => {
    const w = width / 2;
    const h = height / 2;
    const q = (x: number, y: number, c: string) => `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${c}"/>`;
    return sharp(
      Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" shape-rendering="crispEdges">` +
          q(0, 0, '#ff0000') + q(w, 0, '#00ff00') + q(0, h, '#0000ff') + q(w, h, '#ffffff') + '</svg>',
      ),
    )
      .flatten({ background: '#000000' })
      .png()
      .toBuffer();
  });
}

/** A small opaque magenta PNG, for image watermarks. */
export function watermarkPng(width = 60, height = 40): Promise<Buffer> {
  return once(`wm-${width}x${height}`, () =>
    sharp({ create: { width, height, channels: 4, background: { r: 255, g: 0, b: 255, alpha: 1 } } }).png().toBuffer(),
  );
}

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** The colour of one pixel of an encoded image (alpha dropped). */
export async function pixelAt(image: Buffer, x: number, y: number): Promise<Rgb> {
  const { data, info } = await sharp(image).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return { r: data[i]!, g: data[i + 1]!, b: data[i + 2]! };
}

/** Whether two colours are within `tolerance` per channel (lossy codecs, resampling). */
export function near(a: Rgb, b: Rgb, tolerance = 40): boolean {
  return Math.abs(a.r - b.r) <= tolerance && Math.abs(a.g - b.g) <= tolerance && Math.abs(a.b - b.b) <= tolerance;
}

/** Colours at the centres of the four quadrants: [top-left, top-right, bottom-left, bottom-right]. */
export async function quadrantColours(image: Buffer): Promise<Rgb[]> {
  const { width, height } = await sharp(image).metadata();
  const xs = [Math.floor(width / 4), Math.floor((3 * width) / 4)];
  const ys = [Math.floor(height / 4), Math.floor((3 * height) / 4)];
  return Promise.all([pixelAt(image, xs[0]!, ys[0]!), pixelAt(image, xs[1]!, ys[0]!), pixelAt(image, xs[0]!, ys[1]!), pixelAt(image, xs[1]!, ys[1]!)]);
}

/** Names a colour among the quadrant colours (for readable assertions). */
export function colourName(c: Rgb): string {
  const named: [string, Rgb][] = [['red', RED], ['green', GREEN], ['blue', BLUE], ['white', WHITE], ['black', { r: 0, g: 0, b: 0 }]];
  return named.find(([, v]) => near(c, v, 60))?.[0] ?? `rgb(${c.r},${c.g},${c.b})`;
}
