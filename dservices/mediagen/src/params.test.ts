import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BadParameterError } from './errors.js';
import { parseInfoQuery, parseTransformQuery, TRANSFORM_PARAMS } from './params.js';

const parse = (q: string, watermark: Buffer | null = null) => parseTransformQuery(new URLSearchParams(q), watermark);

/** Asserts the query is refused with a BadParameterError naming `param` in `.param` and the detail. */
function refused(q: string, param: string, detail?: RegExp, watermark: Buffer | null = null): void {
  let caught: unknown;
  try {
    parse(q, watermark);
  } catch (err) {
    caught = err;
  }
  expect(caught, q).toBeInstanceOf(BadParameterError);
  const e = caught as BadParameterError;
  expect(e.param).toBe(param);
  expect(e.status).toBe(400);
  expect(e.message).toContain(param);
  if (detail) expect(e.message).toMatch(detail);
}

describe('parseTransformQuery', () => {
  it('parses a full query into operations in the documented order', () => {
    const plan = parse(
      'text=hi&grayscale=true&sharpen=1.5&blur=2&width=400&height=300&fit=contain&background=fff&flop=true&flip=true&rotate=-90&crop=1,2,3,4&format=webp&quality=70',
    );
    expect(plan.operations.map((o) => o.op)).toEqual(['crop', 'rotate', 'flip', 'flop', 'resize', 'blur', 'sharpen', 'grayscale', 'text']);
    expect(plan.operations[0]).toEqual({ op: 'crop', region: { left: 1, top: 2, width: 3, height: 4 } });
    expect(plan.operations[1]).toMatchObject({ op: 'rotate', angle: 270 });
    expect(plan.operations[4]).toMatchObject({ op: 'resize', width: 400, height: 300, fit: 'contain', background: { r: 255, g: 255, b: 255, alpha: 1 } });
    expect(plan.format).toBe('webp');
    expect(plan.quality).toBe(70);
  });

  it('has defaults: no operations, cover, centre, southeast text', () => {
    expect(parse('')).toEqual({ operations: [] });
    expect(parse('width=10').operations[0]).toEqual({
      op: 'resize', width: 10, fit: 'cover', position: 'centre', withoutEnlargement: false, background: { r: 0, g: 0, b: 0, alpha: 0 },
    });
    expect(parse('text=x').operations[0]).toMatchObject({ op: 'text', gravity: 'southeast', color: { r: 255, g: 255, b: 255 } });
  });

  it('drops no-op values: rotate=0/360, flip=false, sharpen=false, grayscale=false', () => {
    expect(parse('rotate=360&flip=false&flop=false&sharpen=false&grayscale=false').operations).toEqual([]);
    expect(parse('sharpen=true').operations).toEqual([{ op: 'sharpen' }]);
  });

  it.each([
    ['width=abc', 'width', /integer from 1 to 16384.*"abc"/],
    ['width=0', 'width', /1 to 16384/],
    ['width=16385', 'width', /1 to 16384/],
    ['width=1.5', 'width', /integer/],
    ['height=-3', 'height', /1 to 16384/],
    ['width=', 'width', /integer/],
    ['width=10&fit=weird', 'fit', /cover, contain, fill, inside, outside.*"weird"/],
    ['format=bmp', 'format', /jpeg, png, webp, avif.*"bmp"/],
    ['quality=0', 'quality', /1 to 100/],
    ['quality=101', 'quality', /1 to 100/],
    ['blur=0.1', 'blur', /0\.3 to 1000/],
    ['blur=x', 'blur', /number/],
    ['sharpen=11', 'sharpen', /true, false or a sigma/],
    ['sharpen=yes', 'sharpen', /true, false or a sigma/],
    ['flip=1', 'flip', /true or false/],
    ['grayscale=yes', 'grayscale', /true or false/],
    ['rotate=12.5', 'rotate', /integer/],
    ['crop=1,2,3', 'crop', /left,top,width,height/],
    ['crop=0,0,0,10', 'crop', /at least 1/],
    ['width=10&position=middle', 'position', /north.*entropy/],
    ['width=10&height=10&fit=fill&position=north', 'position', /only applies to fit=cover or fit=contain/],
    ['width=10&fit=contain&position=entropy', 'position', /one of/],
    ['width=10&withoutEnlargement=maybe', 'withoutEnlargement', /true or false/],
    ['fit=cover', 'fit', /without width or height/],
    ['withoutEnlargement=true', 'withoutEnlargement', /without width or height/],
    ['background=fff', 'background', /no effect/],
    ['rotate=90&background=fff', 'background', /no effect/],
    ['rotate=45&background=notacolour', 'background', /hex colour/],
    ['textColor=fff', 'textColor', /without text/],
    ['textSize=10', 'textSize', /without text/],
    ['gravity=north', 'gravity', /without text or a watermark image/],
    ['text=hi&gravity=up', 'gravity', /northeast/],
    ['text=', 'text', /empty/],
    ['text=a%00b', 'text', /control/],
    ['text=hi&textSize=0', 'textSize', /1 to 1000/],
    ['text=hi&textColor=%23ggg', 'textColor', /hex colour/],
    ['watermarkGravity=north', 'watermarkGravity', /watermark image/],
    ['bogus=1', 'bogus', /unknown query parameter "bogus"; allowed: width, height/],
    ['width=10&width=20', 'width', /more than once/],
  ])('%s is refused, naming %s', (q, param, detail) => refused(q, param, detail));

  it('names every unknown parameter', () => {
    refused('foo=1&width=10&bar=2', 'foo', /"foo", "bar"/);
  });

  it('refuses text longer than 200 characters', () => {
    refused(`text=${'a'.repeat(201)}`, 'text', /200/);
    expect(parse(`text=${'é'.repeat(200)}`).operations).toHaveLength(1);
  });

  it('places an image watermark by watermarkGravity, else gravity', () => {
    const wm = Buffer.from('png');
    expect(parse('', wm).operations).toEqual([{ op: 'watermark', image: wm, gravity: 'southeast' }]);
    expect(parse('gravity=north', wm).operations[0]).toMatchObject({ gravity: 'north' });
    expect(parse('gravity=north&watermarkGravity=center', wm).operations[0]).toMatchObject({ gravity: 'centre' });
    refused('watermarkGravity=up', 'watermarkGravity', /one of/, wm);
  });

  it('normalises any integer rotation into 1..359', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e9 }), (deg) => {
        const ops = parse(`rotate=${deg}${deg % 90 === 0 ? '' : '&background=000'}`).operations;
        const want = ((deg % 360) + 360) % 360;
        if (want === 0) expect(ops).toEqual([]);
        else expect(ops[0]).toMatchObject({ op: 'rotate', angle: want });
      }),
    );
  });

  it('property: every valid width/height pair parses to itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16384 }), fc.integer({ min: 1, max: 16384 }), (w, h) => {
        expect(parse(`width=${w}&height=${h}`).operations[0]).toMatchObject({ width: w, height: h });
      }),
    );
  });

  it('property: any other parameter name is refused by name', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !(TRANSFORM_PARAMS as readonly string[]).includes(s)),
        (name) => {
          const q = new URLSearchParams();
          q.set(name, '1');
          expect(() => parseTransformQuery(q, null)).toThrow(BadParameterError);
          try {
            parseTransformQuery(q, null);
          } catch (e) {
            expect((e as BadParameterError).param).toBe(name);
          }
        },
      ),
    );
  });
});

describe('parseInfoQuery', () => {
  it('takes no parameters', () => {
    expect(() => parseInfoQuery(new URLSearchParams(''))).not.toThrow();
    expect(() => parseInfoQuery(new URLSearchParams('width=1'))).toThrow(/unknown query parameter "width"; this endpoint takes no query parameters/);
  });
});
