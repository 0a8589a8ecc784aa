/**
 * The fairness properties of weighted DRF (Ghodsi et al., "Dominant Resource Fairness: Fair
 * Allocation of Multiple Resource Types", NSDI 2011, section 4), on small random cases: a pool of
 * three resources (capacities 1..40), one to five users with weights 1..4, per-task demands
 * 0..10 per resource (not all 0) and a cap of 0..30 tasks each.
 *
 * Notation: C = capacity, d_i = user i's per-task demand, w_i its weight, W = sum of weights,
 * m_i its task cap, x_i its tasks; "i could run k tasks with bundle B" means k <= B_r / d_ir for
 * every resource r with d_ir > 0. A user is *satisfied* when x_i = m_i (it wants nothing more).
 *
 * The paper proves the four properties for divisible tasks, and they are checked exactly (up to
 * float rounding) on `drfDivisible`. The scheduler hands out whole instances (`drf`, and `place`
 * through the same ShareQueue), where the paper's exact forms do not all hold (a task bigger than
 * a user's slice cannot be split), so the discrete checks state the slack precisely.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { drf, drfDivisible, type DrfUser } from './drf.js';
import { resources } from './resources.js';
import type { Resources } from './types.js';

const R = ['cpus', 'memoryMb', 'diskMb'] as const;
type Vec = [number, number, number];
const toRes = (v: Vec): Resources => resources({ cpus: v[0], memoryMb: v[1], diskMb: v[2] });

interface Case {
  cap: Vec;
  users: { d: Vec; w: number; m: number }[];
  liar: number;
  lie: Vec;
}

const vec = (max: number) => fc.tuple(fc.integer({ min: 0, max }), fc.integer({ min: 0, max }), fc.integer({ min: 0, max }));
const arbCase: fc.Arbitrary<Case> = fc.record({
  cap: fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 })),
  users: fc.array(fc.record({ d: vec(10).filter((d) => d.some((x) => x > 0)), w: fc.integer({ min: 1, max: 4 }), m: fc.integer({ min: 0, max: 30 }) }), { minLength: 1, maxLength: 5 }),
  liar: fc.nat(),
  lie: vec(12),
});

const usersOf = (c: Case, lie?: { i: number; d: Vec }): DrfUser[] =>
  c.users.map((u, i) => ({ id: `u${i}`, weight: u.w, demand: toRes(lie !== undefined && lie.i === i ? lie.d : u.d), maxTasks: u.m }));

/** Tasks of demand `d` that bundle `b` holds (fractional). */
const holds = (b: readonly number[], d: Vec) => Math.min(...d.map((x, r) => (x > 0 ? b[r]! / x : Infinity)));
const scale = (d: Vec, k: number): Vec => [d[0] * k, d[1] * k, d[2] * k];
const sumOthers = (c: Case, i: number): Vec => {
  const s: Vec = [0, 0, 0];
  c.users.forEach((u, j) => {
    if (j !== i) for (let r = 0; r < 3; r++) s[r] = s[r]! + u.d[r]!;
  });
  return s;
};

const RUNS = { numRuns: Number(process.env.SCHEDULER_PROPERTY_RUNS ?? 2000) };
const TOL = 1e-7;

describe('weighted DRF on divisible tasks (the paper, exactly)', () => {
  const alloc = (c: Case, lie?: { i: number; d: Vec }) => {
    const a = drfDivisible(toRes(c.cap), usersOf(c, lie));
    return c.users.map((_, i) => a.get(`u${i}`)!);
  };
  const used = (c: Case, x: number[]) => R.map((_, r) => c.users.reduce((s, u, i) => s + x[i]! * u.d[r]!, 0));

  it('never hands out more than the capacity', () => {
    fc.assert(fc.property(arbCase, (c) => used(c, alloc(c)).every((u, r) => u <= c.cap[r]! * (1 + TOL))), RUNS);
  });

  // Sharing incentive: each user gets at least what it could run on its own weighted slice of
  // the pool (w_i / W of every resource), or its cap: x_i >= min(m_i, min_r (w_i/W) C_r / d_ir).
  it('sharing incentive: every user does at least as well as with a static slice of w_i / W', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const x = alloc(c);
        const W = c.users.reduce((s, u) => s + u.w, 0);
        return c.users.every((u, i) => x[i]! >= Math.min(u.m, holds(scale(c.cap, u.w / W), u.d)) * (1 - TOL) - TOL);
      }),
      RUNS,
    );
  });

  // Envy-freeness (weighted): no unsatisfied user i could run more tasks with another user j's
  // allocation scaled by w_i / w_j than with its own: holds((w_i/w_j) x_j d_j, d_i) <= x_i.
  it('envy-freeness: no user prefers another user’s weight-scaled allocation', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const x = alloc(c);
        return c.users.every(
          (u, i) => x[i]! >= u.m * (1 - TOL) || c.users.every((v, j) => i === j || holds(scale(v.d, (x[j]! * u.w) / v.w), u.d) <= x[i]! * (1 + TOL) + TOL),
        );
      }),
      RUNS,
    );
  });

  // Pareto efficiency: every unsatisfied user uses a resource that is exhausted, so it can only
  // get more by taking from someone else.
  it('Pareto efficiency: every user short of its cap is held by an exhausted resource', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const x = alloc(c);
        const u = used(c, x);
        return c.users.every((v, i) => x[i]! >= v.m * (1 - TOL) || v.d.some((d, r) => d > 0 && u[r]! >= c.cap[r]! * (1 - TOL)));
      }),
      RUNS,
    );
  });

  // Strategy-proofness: a user that reports a bigger demand (d_i + lie, lie >= 0 in every
  // resource) cannot run more true tasks with what it gets: min(m_i, holds(x'_i d'_i, d_i)) <= x_i.
  it('strategy-proofness: overstating the demand never gains true tasks', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const i = c.liar % c.users.length;
        const truth = c.users[i]!;
        const d2: Vec = [truth.d[0] + c.lie[0], truth.d[1] + c.lie[1], truth.d[2] + c.lie[2]];
        const honest = alloc(c)[i]!;
        const lied = alloc(c, { i, d: d2 })[i]!;
        return Math.min(truth.m, holds(scale(d2, lied), truth.d)) <= honest * (1 + TOL) + TOL;
      }),
      RUNS,
    );
  });
});

describe('weighted DRF on whole tasks (what place() does)', () => {
  const run = (c: Case, lie?: { i: number; d: Vec }) => drf(toRes(c.cap), usersOf(c, lie));
  const xs = (c: Case, a: ReturnType<typeof drf>) => c.users.map((_, i) => a.tasks.get(`u${i}`)!);

  // Pareto efficiency, exactly: capacity is respected and every user short of its cap has a next
  // task that does not fit in what is left (no user can get another task without taking one away).
  it('Pareto efficiency: no user short of its cap has a task that still fits', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const a = run(c);
        const x = xs(c, a);
        const left = [a.free.cpus, a.free.memoryMb, a.free.diskMb];
        if (left.some((f) => f < 0)) return false;
        return c.users.every((u, i) => x[i] === u.m || u.d.some((d, r) => d > left[r]!));
      }),
      RUNS,
    );
  });

  // Sharing incentive up to one task of every user: with D = the sum of one task of every user,
  // each user reaches its cap or gets a weighted dominant share above its slice of the pool less D:
  //   x_i * max_r(d_ir / C_r) / w_i  >  (1 - max_r D_r / C_r) / W
  // (When i's next task stopped fitting, the others had each got their last task at a share no
  // higher than i's, and the resource that ran out was used up to within d_i.)
  it('sharing incentive, up to one task of every user', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const x = xs(c, run(c));
        const W = c.users.reduce((s, u) => s + u.w, 0);
        const D = R.map((_, r) => c.users.reduce((s, u) => s + u.d[r]!, 0));
        const slack = Math.max(...D.map((d, r) => d / c.cap[r]!));
        return c.users.every((u, i) => {
          if (x[i] === u.m) return true;
          const share = (x[i]! * Math.max(...u.d.map((d, r) => d / c.cap[r]!))) / u.w;
          return share > (1 - slack) / W - TOL;
        });
      }),
      RUNS,
    );
  });

  // Envy-freeness up to one task (EF1): for each user i short of its cap and each other user j,
  // take the tasks j had been granted when i's next task stopped fitting, less one, scaled by
  // w_i / w_j: i could not run more than x_i tasks with that bundle. (Tasks j gets after i is
  // blocked come from room i cannot use.)
  it('envy-freeness up to one task, among the grants made while the user was still asking', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const a = run(c);
        const x = xs(c, a);
        return c.users.every((u, i) => {
          if (x[i] === u.m) return true;
          const cut = a.blockedAfter.get(`u${i}`);
          if (cut === undefined) return false; // short of its cap means blocked
          return c.users.every((v, j) => {
            if (i === j) return true;
            const before = a.grants.slice(0, cut).filter((g) => g === `u${j}`).length;
            return Math.floor(holds(scale(v.d, (Math.max(0, before - 1) * u.w) / v.w), u.d) + TOL) <= x[i]!;
          });
        });
      }),
      RUNS,
    );
  });

  // Strategy-proofness does not survive whole tasks: by overstating its demand a user can grab a
  // chunk that makes another user's next task stop fitting, and then collect the rest. What is
  // checked is the bound on that gain: the true tasks a liar can run exceed its honest x_i by at
  // most what fits in (the honest run's leftover + one task of every other user), plus what one
  // overstated task holds. Exact strategy-proofness is checked on the divisible rule above.
  it('strategy-proofness up to indivisibility: a lie gains at most the leftover, one task of each other user and one overstated task', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const i = c.liar % c.users.length;
        const truth = c.users[i]!;
        const d2: Vec = [truth.d[0] + c.lie[0], truth.d[1] + c.lie[1], truth.d[2] + c.lie[2]];
        const honest = run(c);
        const lied = run(c, { i, d: d2 }).tasks.get(`u${i}`)!;
        const gained = Math.min(truth.m, Math.floor(holds(scale(d2, lied), truth.d) + TOL)) - honest.tasks.get(`u${i}`)!;
        const others = sumOthers(c, i);
        const room = [honest.free.cpus + others[0], honest.free.memoryMb + others[1], honest.free.diskMb + others[2]];
        return gained <= Math.floor(holds(room, truth.d) + TOL) + Math.floor(holds(d2, truth.d) + TOL);
      }),
      RUNS,
    );
  });

  it('a lie can gain with whole tasks (why the bound above is needed)', () => {
    // Pool 10 CPUs. Honest: A (1 CPU + 8 GB) and B (9 CPUs) each run one task, A's next does not fit.
    // A claims 2 CPUs + 10 GB + 4 disk: it goes first at share 0, B's 9 CPUs no longer fit, A takes 3.
    const cap = resources({ cpus: 10, memoryMb: 35, diskMb: 13 });
    const b: DrfUser = { id: 'b', weight: 4, demand: resources({ cpus: 9, memoryMb: 10, diskMb: 9 }), maxTasks: 23 };
    const honest = drf(cap, [{ id: 'a', weight: 1, demand: resources({ cpus: 1, memoryMb: 8, diskMb: 1 }), maxTasks: 12 }, b]);
    const lied = drf(cap, [{ id: 'a', weight: 1, demand: resources({ cpus: 2, memoryMb: 10, diskMb: 4 }), maxTasks: 12 }, b]);
    expect(honest.tasks.get('a')).toBe(1);
    expect(lied.tasks.get('a')).toBe(3); // 3 x (2, 10, 4) holds 3 true tasks
    expect(lied.tasks.get('b')).toBe(0);
  });

  it('is deterministic whatever the order of the users', () => {
    fc.assert(
      fc.property(arbCase, fc.nat(), (c, seed) => {
        const users = usersOf(c);
        const shuffled = [...users].sort((p, q) => ((p.id.charCodeAt(1) * 31 + seed) % 7) - ((q.id.charCodeAt(1) * 31 + seed) % 7));
        const a = drf(toRes(c.cap), users);
        const b = drf(toRes(c.cap), shuffled);
        return users.every((u) => a.tasks.get(u.id) === b.tasks.get(u.id));
      }),
      RUNS,
    );
  });

  it('weights: with one resource and unlimited wants, tasks follow the weights', () => {
    const a = drf(resources({ cpus: 90 }), [
      { id: 'gold', weight: 2, demand: resources({ cpus: 1 }), maxTasks: 1000 },
      { id: 'free', weight: 1, demand: resources({ cpus: 1 }), maxTasks: 1000 },
    ]);
    expect(a.tasks.get('gold')).toBe(60);
    expect(a.tasks.get('free')).toBe(30);
  });

  it('the paper’s example: <1 CPU, 4 GB> and <3 CPUs, 1 GB> on 9 CPUs and 18 GB get 3 and 2 tasks', () => {
    const a = drf(resources({ cpus: 9, memoryMb: 18 }), [
      { id: 'A', weight: 1, demand: resources({ cpus: 1, memoryMb: 4 }), maxTasks: 100 },
      { id: 'B', weight: 1, demand: resources({ cpus: 3, memoryMb: 1 }), maxTasks: 100 },
    ]);
    expect([a.tasks.get('A'), a.tasks.get('B')]).toEqual([3, 2]);
    const f = drfDivisible(resources({ cpus: 9, memoryMb: 18 }), [
      { id: 'A', weight: 1, demand: resources({ cpus: 1, memoryMb: 4 }), maxTasks: 100 },
      { id: 'B', weight: 1, demand: resources({ cpus: 3, memoryMb: 1 }), maxTasks: 100 },
    ]);
    expect(f.get('A')).toBeCloseTo(3, 9);
    expect(f.get('B')).toBeCloseTo(2, 9);
  });

  it('refuses a bad weight with a message naming the user', () => {
    expect(() => drf(resources({ cpus: 1 }), [{ id: 'x', weight: 0, demand: resources({ cpus: 1 }), maxTasks: 1 }])).toThrow(/weight of x/);
  });
});
