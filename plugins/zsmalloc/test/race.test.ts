import {
  allocPages,
  folioPut,
  GFP,
  isolatedOk,
  isolateMovablePage,
  MIGRATE_MODE,
  migratePages,
  putbackMovablePages,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { checkZsmalloc } from '../src/index.js';
import { expectClean, fill, PROFILES, pattern, pfnOf, rig } from './helpers.js';

const SEEDS = Number(process.env.ZS_RACE_SEEDS ?? 1000);
if (!(Number.isInteger(SEEDS) && SEEDS >= 1))
  throw new Error(`ZS_RACE_SEEDS must be a positive integer, got ${process.env.ZS_RACE_SEEDS}`);
const t0 = Date.now();
let migrated = 0;

/**
 * One seeded run: the VM isolates sub-pages of two zspages and migrates them (putting back
 * what fails) while users free and read objects and, on every other seed, zs_compact runs.
 * The zsmalloc checker runs after every scheduling point, and in full at the end.
 */
function raceOnce(seed: number): string[] {
  const profile = PROFILES[seed % PROFILES.length];
  const r = rig(profile, '4M', seed);
  const { m, pool } = r;
  const small = fill(pool, 8, 1000, 0); // two one-page zspages
  const big = fill(pool, 6, 3600, 100); // one eight-page zspage, objects spanning pages
  const all = [...small.map((h, i) => [h, i, 1000]), ...big.map((h, i) => [h, 100 + i, 3600])];
  const victims = [pfnOf(pool, small[1]), pfnOf(pool, small[5]), pfnOf(pool, big[2])];
  const freed = new Set([small[0], small[1], big[3], small[6]]);
  const readers = [small[2], big[2], small[5], big[4]];
  const problems: string[] = [];
  const reg = pool.registry;
  m.sched.onStep = () => {
    const v = checkZsmalloc(reg, false);
    if (v.length && problems.length < 5) problems.push(...v);
  };
  const mode = seed % 3 === 0 ? MIGRATE_MODE.SYNC_LIGHT : MIGRATE_MODE.ASYNC;
  m.sched.spawn('vm', function* () {
    for (const pfn of victims) {
      const res = yield* isolateMovablePage(m, pfn, 0);
      if (isolatedOk(res)) m.mem.pages.lists.addTail(r.list, pfn);
    }
    const getNew = () => allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    const res = yield* migratePages(m, r.list, getNew, (d) => folioPut(m.mem, d), mode, 0);
    migrated += res.nrSucceeded;
    if (res.rc !== 0) yield* putbackMovablePages(m, r.list);
  });
  m.sched.spawn('free', function* () {
    for (const h of freed) yield* pool.zsFreeTask(h);
  });
  m.sched.spawn('read', function* () {
    for (const h of readers) {
      const [, key, size] = all.find((e) => e[0] === h) as number[];
      const data = yield* pool.objReadTask(h);
      if (!pattern(key, size).every((b, i) => b === data[i]))
        problems.push(`seed ${seed}: read of ${h} returned wrong bytes`);
    }
  });
  if (seed % 2 === 1)
    m.sched.spawn('compact', function* () {
      yield* pool.zsCompactTask();
    });
  m.sched.runAll('random');
  m.sched.onStep = undefined;
  pool.flushDeferredFree();
  for (const [h, key, size] of all) {
    if (freed.has(h)) continue;
    const data = pool.objRead(h);
    if (!pattern(key, size).every((b, i) => b === data[i]))
      problems.push(`seed ${seed}: object ${h} lost its bytes`);
  }
  try {
    expectClean(m);
  } catch (e) {
    problems.push(`seed ${seed} (${profile}): ${(e as Error).message}`);
  }
  return problems.map((p) => `seed ${seed} (${profile}): ${p}`);
}

describe('zsmalloc races with isolation, migration and putback (random scheduler)', () => {
  it(`keeps the invariant checker green over ${SEEDS} seeds`, () => {
    const problems: string[] = [];
    for (let seed = 1; seed <= SEEDS && problems.length < 10; seed++)
      problems.push(...raceOnce(seed));
    expect(problems).toEqual([]);
    // The races ran: the VM migrated zsmalloc pages while the users and zs_compact worked.
    expect(migrated).toBeGreaterThan(0);
    console.log(`race: ${SEEDS} seeds in ${Date.now() - t0} ms`);
  }, 120_000);
});
