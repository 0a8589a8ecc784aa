/** The small pure modules: format sniffing, body framing, colours, geometry, text SVG, config. */
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { parseColour } from './colour.js';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from './config.js';
import { BadImageError, BadParameterError } from './errors.js';
import { splitBody } from './framing.js';
import { planGeometry } from './geometry.js';
import { parseTransformQuery } from './params.js';
import { requireSupported, sniffFormat } from './sniff.js';
import { escapeXml, textOverlaySvg } from './text.js';
import { alphaPng, photoJpeg } from '../test/fixtures.js';

describe('sniffFormat', () => {
  it('recognises the accepted formats from their first bytes', async () => {
    const png = await alphaPng();
    expect(sniffFormat(await photoJpeg(40, 30))).toBe('jpeg');
    expect(sniffFormat(png)).toBe('png');
    expect(sniffFormat(await sharp(png).webp().toBuffer())).toBe('webp');
    expect(sniffFormat(await sharp(png).gif().toBuffer())).toBe('gif');
    expect(sniffFormat(await sharp(png).tiff().toBuffer())).toBe('tiff');
    expect(sniffFormat(await sharp(png).avif({ effort: 0 }).toBuffer())).toBe('avif');
  });

  it('refuses SVG, text, empty and short input', () => {
    expect(sniffFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(sniffFormat(Buffer.from('hello'))).toBeNull();
    expect(sniffFormat(Buffer.alloc(0))).toBeNull();
    expect(sniffFormat(Buffer.from([0xff, 0xd8]))).toBeNull();
    expect(() => requireSupported(Buffer.alloc(0), 'image')).toThrow(BadImageError);
    expect(() => requireSupported(Buffer.from('GIF80a'), 'watermark image')).toThrow(/watermark image is not a supported image; send one of jpeg, png/);
  });
});

describe('splitBody', () => {
  const body = Buffer.from('WWWWIIIIII');

  it('without the header the whole body is the image', () => {
    expect(splitBody(body, undefined)).toEqual({ image: body, watermark: null });
  });

  it('splits off the first N bytes as the watermark, without copying', () => {
    const { image, watermark } = splitBody(body, '4');
    expect(watermark?.toString()).toBe('WWWW');
    expect(image.toString()).toBe('IIIIII');
    expect(image.buffer).toBe(body.buffer);
  });

  it.each([['0'], ['-1'], ['abc'], [''], ['10'], ['11'], [['1', '2']]])('refuses x-watermark-length %j', (value) => {
    expect(() => splitBody(body, value)).toThrow(BadParameterError);
    try {
      splitBody(body, value);
    } catch (e) {
      expect((e as BadParameterError).param).toBe('x-watermark-length');
    }
  });
});

describe('parseColour', () => {
  it('reads hex forms and names', () => {
    expect(parseColour('#f00')).toEqual({ r: 255, g: 0, b: 0, alpha: 1 });
    expect(parseColour('00ff0080')).toEqual({ r: 0, g: 255, b: 0, alpha: 0.502 });
    expect(parseColour('ABCDEF')).toEqual({ r: 0xab, g: 0xcd, b: 0xef, alpha: 1 });
    expect(parseColour('fff8')).toEqual({ r: 255, g: 255, b: 255, alpha: 0.533 });
    expect(parseColour('Transparent')).toEqual({ r: 0, g: 0, b: 0, alpha: 0 });
    for (const bad of ['', '#', 'ff', 'fffff', 'rgb(1,2,3)', 'zzz', 'reddish']) expect(parseColour(bad), bad).toBeNull();
  });
});

describe('planGeometry', () => {
  const ops = (q: string) => parseTransformQuery(new URLSearchParams(q), null).operations;
  const input = { width: 1200, height: 900 };

  it('follows crop, rotation and each fit mode', () => {
    expect(planGeometry(input, ops('crop=0,0,100,50&rotate=90')).output).toEqual({ width: 50, height: 100 });
    expect(planGeometry(input, ops('width=400')).output).toEqual({ width: 400, height: 300 });
    expect(planGeometry(input, ops('width=400&height=400&fit=inside')).output).toEqual({ width: 400, height: 300 });
    expect(planGeometry(input, ops('width=400&height=400&fit=outside')).output).toEqual({ width: 533, height: 400 });
    expect(planGeometry(input, ops('width=400&height=400&fit=contain')).output).toEqual({ width: 400, height: 400 });
    expect(planGeometry(input, ops('width=4000&withoutEnlargement=true')).output).toEqual(input);
  });

  it('counts the largest image along the way', () => {
    const g = planGeometry({ width: 1000, height: 1000 }, ops('rotate=45&width=10'));
    expect(g.largestPixels).toBeGreaterThan(1.99e6);
    expect(g.output.width).toBe(10);
    expect(planGeometry({ width: 10, height: 10 }, ops('width=16384&height=16384&fit=fill')).largestPixels).toBe(16384 * 16384);
  });

  it('refuses a crop that leaves the image', () => {
    expect(() => planGeometry(input, ops('crop=1100,0,101,10'))).toThrow(/does not fit in the 1200x900 image/);
    expect(() => planGeometry(input, ops('crop=0,800,10,101'))).toThrow(BadParameterError);
    expect(planGeometry(input, ops('crop=1100,800,100,100')).output).toEqual({ width: 100, height: 100 });
  });
});

describe('textOverlaySvg', () => {
  it('escapes markup and anchors by gravity', () => {
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
    const svg = (gravity: 'northwest' | 'south' | 'east') =>
      textOverlaySvg({ op: 'text', text: '<b>', color: { r: 1, g: 2, b: 3, alpha: 0.5 }, size: 20, gravity }, { width: 200, height: 100 }).toString();
    expect(svg('northwest')).toContain('text-anchor="start"');
    expect(svg('south')).toContain('text-anchor="middle"');
    expect(svg('east')).toContain('text-anchor="end"');
    expect(svg('east')).toContain('&lt;b&gt;');
    expect(svg('east')).toContain('fill="rgb(1,2,3)" fill-opacity="0.5"');
    expect(svg('east')).toContain('font-family="sans-serif"');
  });
});

describe('loadConfig', () => {
  it('reads the environment, with defaults', () => {
    expect(loadConfig({})).toEqual(DEFAULT_CONFIG);
    expect(loadConfig({ MEDIAGEN_MAX_PIXELS: '1000', MEDIAGEN_TIMEOUT_SECONDS: '5' })).toEqual({ maxPixels: 1000, timeoutSeconds: 5 });
    expect(() => loadConfig({ MEDIAGEN_MAX_PIXELS: '1e6' })).toThrow(ConfigError);
    expect(() => loadConfig({ MEDIAGEN_TIMEOUT_SECONDS: '0' })).toThrow(/MEDIAGEN_TIMEOUT_SECONDS/);
  });
});
