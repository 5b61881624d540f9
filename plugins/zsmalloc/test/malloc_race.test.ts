import {
  allocAllFree,
  checkInvariants,
  compactMemory,
  folioPut,
  PG,
  type ProfileName,
  page_has_movable_ops,
  ZS,
} from '@mops/core';
import { explore, registerScenario, type Scenario, unregisterScenario } from '@mops/explorer';
import { describe, expect, it } from 'vitest';
import { checkZsmalloc, type Zspage } from '../src/index.js';
import { expectClean, fill, PROFILES, pattern, rig } from './helpers.js';

const SEEDS = Number(process.env.ZS_MALLOC_RACE_SEEDS ?? 25);
if (!(Number.isInteger(SEEDS) && SEEDS >= 1))
  throw new Error(
    `ZS_MALLOC_RACE_SEEDS must be a positive integer, got ${process.env.ZS_MALLOC_RACE_SEEDS}`,
  );

/** What the allocating tasks ask for: [size, key]. No size's class has a zspage at first. */
const WANTS: Record<string, [number, number][]> = {
  a: [
    [2000, 300],
    [3600, 301],
    [2000, 302],
    [500, 303],
  ],
  b: [
    [2000, 400],
    [500, 401],
    [3600, 402],
    [2000, 403],
  ],
  c: [
    [3600, 500],
    [2000, 501],
  ],
};

interface Outcome {
  problems: string[];
  /** Live zspages gained while the tasks ran. */
  fresh: number;
  /** Steps taken while a zspage was under construction (its pages counted, it not yet). */
  window: number;
  /** Pages the VM migrated. */
  migrated: number;
}

/**
 * One seeded run (spec §7.3): three tasks call zs_malloc for classes that have no zspage
 * yet, so they allocate fresh zspages concurrently (several for the same class), and write
 * their objects, while another task frees older objects, the VM compacts the zone (its
 * migrate scanner walking the fresh pages) and, on odd seeds, zs_compact runs. The whole
 * invariant checker runs after every step.
 */
function mallocRace(profile: ProfileName, seed: number): Outcome {
  const r = rig(profile, '8M', seed);
  const { m, pool } = r;
  // One page kept in every pageblock, so that compaction finds free pages it may use as
  // targets (it leaves wholly free pageblocks alone).
  for (const pfn of allocAllFree(m, 'pin')) if (pfn % 512 !== 511) folioPut(m.mem, pfn);
  // Three full one-page zspages of 1000-byte objects and a partly used three-page one of
  // 1500-byte objects, for the free task, zs_compact and the VM to work on.
  const old = fill(pool, 12, 1000, 0);
  const mid = fill(pool, 5, 1500, 100);
  const before = pool.registry.zspages.filter(Boolean).length;
  const live = new Map<number, [number, number]>();
  for (const [i, h] of old.entries()) live.set(h, [i, 1000]);
  for (const [i, h] of mid.entries()) live.set(h, [100 + i, 1500]);
  const freed = [old[1], mid[0], old[5], old[6], mid[3]];
  const problems: string[] = [];
  const seen = new Set<string>();
  let fresh = 0;
  let window = 0;
  const zone = m.mem.populatedZones[0];
  m.sched.onStep = () => {
    if (zone.stat[ZS.nr_zspages] > pool.pagesAllocated) window++;
    for (const v of checkInvariants(m).violations)
      if (!seen.has(v) && seen.size < 8) {
        seen.add(v);
        problems.push(`step ${m.sched.steps}: ${v}`);
      }
  };
  for (const [name, wants] of Object.entries(WANTS))
    m.sched.spawn(name, function* () {
      for (const [size, key] of wants) {
        const h = yield* pool.zsMallocTask(size);
        if (h <= 0) {
          problems.push(`${name}: zs_malloc(${size}) returned ${h}`);
          continue;
        }
        yield* pool.objWriteTask(h, pattern(key, size));
        live.set(h, [key, size]);
      }
    });
  m.sched.spawn('free', function* () {
    for (const h of freed) {
      yield* pool.zsFreeTask(h);
      live.delete(h);
    }
  });
  m.sched.spawn('compact_memory', function* () {
    yield* compactMemory(m);
  });
  if (seed % 2 === 1)
    m.sched.spawn('zs_compact', function* () {
      yield* pool.zsCompactTask();
    });
  m.sched.runAll('random');
  m.sched.onStep = undefined;
  pool.flushDeferredFree();
  for (const zs of pool.registry.zspages) if (zs) fresh++;
  fresh -= before;
  for (const [h, [key, size]] of live) {
    const data = pool.objRead(h);
    if (!pattern(key, size).every((b, i) => b === data[i]))
      problems.push(`object ${h} (key ${key}) lost its bytes`);
  }
  try {
    expectClean(m);
  } catch (e) {
    problems.push((e as Error).message);
  }
  return {
    problems: problems.map((p) => `seed ${seed} (${profile}): ${p}`),
    fresh,
    window,
    migrated: m.mem.vmstat.get('pgmigrate_success'),
  };
}

describe('zs_malloc allocating fresh zspages concurrently (random scheduler)', () => {
  it.each(PROFILES)(
    `%s: the invariant checker stays green after every step over ${SEEDS} seeds`,
    (profile) => {
      const problems: string[] = [];
      let fresh = 0;
      let window = 0;
      let migrated = 0;
      for (let seed = 1; seed <= SEEDS && problems.length < 10; seed++) {
        const o = mallocRace(profile, seed);
        problems.push(...o.problems);
        fresh += o.fresh;
        window += o.window;
        migrated += o.migrated;
      }
      expect(problems).toEqual([]);
      // The tasks did allocate fresh zspages (three classes, at least one zspage each), other
      // tasks ran while one was under construction, and the VM migrated zsmalloc pages.
      expect(fresh).toBeGreaterThanOrEqual(3 * SEEDS);
      expect(window).toBeGreaterThan(0);
      expect(migrated).toBeGreaterThan(0);
    },
    Math.max(60_000, SEEDS * 1000),
  );
});

describe('a zspage under construction (spec §7.3)', () => {
  it.each(PROFILES)(
    '%s: stays private to zs_malloc until inserted, and the checker holds it to its own rules',
    (profile) => {
      const { m, pool } = rig(profile, '4M', 1);
      const reg = pool.registry;
      const cls = pool.classFor(2000);
      let seen: Zspage | undefined;
      const clean: string[] = [];
      const found: string[] = [];
      let movable = false;
      let listed = false;
      m.sched.onStep = () => {
        const zs = [...reg.building][0];
        if (!zs || seen) return;
        seen = zs;
        clean.push(...checkInvariants(m).violations);
        movable = zs.pages.some((pfn) => page_has_movable_ops(m.mem, pfn));
        listed = cls.heads.some((h) => h === zs) || reg.zspages[zs.id] !== undefined;
        // A broken sub-page is still reported while the zspage is being built...
        const first = zs.pages[0];
        m.mem.pages.flags[first] &= ~(1 << PG.private);
        found.push(...checkZsmalloc(reg, false));
        m.mem.pages.flags[first] |= 1 << PG.private;
        // ...and so is a zspage lost between alloc_zspage and its insertion.
        reg.building.delete(zs);
        found.push(...checkZsmalloc(reg, false));
        reg.building.add(zs);
      };
      const handles: number[] = [];
      for (const name of ['a', 'b'])
        m.sched.spawn(name, function* () {
          handles.push(yield* pool.zsMallocTask(2000));
        });
      m.sched.runAll('round-robin');
      m.sched.onStep = undefined;
      expect(seen).toBeDefined();
      const zs = seen as Zspage;
      expect(clean).toEqual([]);
      expect(movable).toBe(false);
      expect(listed).toBe(false);
      expect(found).toEqual([
        `zspage ${zs.id} (class ${cls.index}, under construction): page 0x${zs.pages[0].toString(16)} PG_private does not mark the first page`,
        expect.stringMatching(/^zone \w+: nr_zspages (\d+), zspages hold (\d+)$/),
      ]);
      // Once inserted it is an ordinary zspage of its class, its pages movable.
      expect(reg.building.size).toBe(0);
      expect(reg.zspages[zs.id]).toBe(zs);
      expect(zs.pages.every((pfn) => page_has_movable_ops(m.mem, pfn))).toBe(true);
      expect(handles.every((h) => h > 0)).toBe(true);
      expectClean(m);
    },
  );
});

describe('the explorer on concurrent zs_malloc (it checks invariants after every step)', () => {
  const scenario: Scenario = {
    name: 'zsmalloc-test-malloc-vs-malloc',
    description: 'two tasks allocate fresh zspages of one class while a third frees',
    variants: ['plain'],
    profiles: PROFILES,
    setup({ profile }) {
      const { m, pool } = rig(profile, '2M', 1);
      const old = fill(pool, 4, 1000, 0);
      return {
        machine: m,
        state: [pool, pool.registry],
        start: () => {
          for (const [name, key] of [
            ['a', 10],
            ['b', 20],
          ] as const)
            m.sched.spawn(name, function* () {
              for (let i = 0; i < 2; i++) {
                const h = yield* pool.zsMallocTask(2000);
                yield* pool.objWriteTask(h, pattern(key + i, 2000));
              }
            });
          m.sched.spawn('free', function* () {
            yield* pool.zsFreeTask(old[0]);
            yield* pool.zsFreeTask(old[1]);
          });
        },
      };
    },
  };
  registerScenario(scenario, { replace: true });

  it.each(PROFILES)(
    '%s: random, PCT and DFS runs find nothing',
    (profile) => {
      try {
        for (const strategy of ['random', 'pct', 'dfs'] as const) {
          const r = explore(scenario.name, { strategy, profile, runs: 100 });
          expect(r.failure).toBeUndefined();
          expect(r.failed).toBe(false);
        }
      } finally {
        if (profile === PROFILES[PROFILES.length - 1]) unregisterScenario(scenario.name);
      }
    },
    30_000,
  );
});
