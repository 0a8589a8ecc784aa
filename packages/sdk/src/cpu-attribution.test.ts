import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CpuAttribution } from './cpu-attribution.js';

describe('CPU attribution among overlapping requests', () => {
  it('a request alone gets the whole process time; overlapping ones share it', () => {
    let cpu = 1000;
    const a = new CpuAttribution(() => cpu);
    const x = a.start();
    cpu += 400;
    expect(a.end(x)).toBe(400);
    const y = a.start();
    cpu += 100; // y alone
    const z = a.start();
    cpu += 600; // y and z: 300 each
    expect(a.end(y)).toBe(400);
    cpu += 50; // z alone
    expect(a.end(z)).toBe(350);
  });

  it('property: the shares never add up to more than the CPU used while requests were in flight', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ op: fc.constantFrom('start', 'end'), pick: fc.nat(), burn: fc.nat({ max: 10_000 }) }), { maxLength: 200 }),
        (steps) => {
          let cpu = 0;
          let busy = 0;
          const a = new CpuAttribution(() => cpu);
          const open: number[] = [];
          let attributed = 0;
          for (const s of steps) {
            cpu += s.burn;
            if (open.length > 0) busy += s.burn;
            if (s.op === 'start' || open.length === 0) open.push(a.start());
            else attributed += a.end(open.splice(s.pick % open.length, 1)[0]!);
          }
          for (const id of open) attributed += a.end(id);
          // Whole-µs rounding may add at most half a µs per request.
          expect(attributed).toBeLessThanOrEqual(busy + steps.length);
          expect(a.inFlight).toBe(0);
        },
      ),
    );
  });
});
