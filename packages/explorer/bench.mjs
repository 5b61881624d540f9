// Explorer benchmarks (DESIGN performance targets):
// - explorer_schedules_per_s: random schedules per second over the fixed variants of the
//   seed races 9a, 9b, 9c, 9d and 9e (every schedule rebuilds the machine and runs the invariant
//   checker after every step), the median of three timed batches;
// - explorer_vs_fastcheck: our runs per second on 9a against a fast-check fc.scheduler model
//   of the same race (promises standing for the same scheduling points, the same
//   assertion), run with fc.assert(fc.asyncProperty(fc.scheduler(), …)); each side first
//   runs for WARM_MS (both reach their steady rate well within it: fast-check needs some
//   20 000 runs, we some 10 000); the figure is the median of seven ratios, each of a batch
//   of ours and a batch of fast-check's run back to back;
// - explorer_time_to_bug_ms: wall time of `explore` (random, seed 1) on each buggy variant,
//   including shrinking and the report; the worst of the races.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from '../../bench/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const RACES = ['9a', '9b', '9c', '9d', '9e'];
/** Warm-up time of each side of explorer_vs_fastcheck. */
const WARM_MS = 1500;
/** Timed pairs of batches of explorer_vs_fastcheck. */
const PAIRS = 7;

/**
 * A timed batch of random schedules on the fixed variant of `name`: its schedules per
 * second. `seed` makes each batch a different set of schedules.
 */
function ourBatch(ex, name, runs, seed) {
  const t = performance.now();
  const r = ex.explore(name, { variant: 'fixed', strategy: 'random', runs, seed });
  const dt = performance.now() - t;
  if (r.failed) throw new Error(`fixed variant of ${name} failed: ${r.failure?.message}`);
  return (r.schedules * 1000) / dt;
}

/** Random schedules per second on the fixed variant of `name`: the median of three batches. */
function schedulesPerSecond(ex, name, runs) {
  ourBatch(ex, name, Math.min(runs, 2000), 1);
  return median([0, 1, 2].map((rep) => ourBatch(ex, name, runs, 1 + rep * runs)));
}

/** Runs `batch(i)` for i = 0, 1, … until `ms` milliseconds have passed. */
async function warm(ms, batch) {
  for (let i = 0, t0 = performance.now(); performance.now() - t0 < ms; i++) await batch(i);
}

/**
 * The 9a race as fast-check sees it: the scanner derives the head of tail T1, then takes a
 * reference; the owner frees the folio and reallocates its head as a published page. Each
 * await on s.schedule() is one scheduling point. Fixed variant: the reference is taken on
 * T1 itself (folio_get_nontail_page), so the property holds and every run completes.
 */
function fastCheckBatch(fc) {
  const H = 0;
  const T1 = 1;
  const property = fc.asyncProperty(fc.scheduler(), async (s) => {
    const ref = [1, 0, 0, 0];
    const head = [H, H, H, H];
    const published = [false, false, false, false];
    const locked = [false, false, false, false];
    let isolated = -1;
    const point = (label) => s.schedule(Promise.resolve(label), label);
    const scanner = (async () => {
      await point('folio_get_nontail_page');
      const page = T1;
      if (ref[page] === 0) return;
      ref[page]++;
      await point('__PageMovable');
      if (!published[page]) {
        ref[page]--;
        return;
      }
      await point('trylock_page');
      if (locked[page]) {
        ref[page]--;
        return;
      }
      locked[page] = true;
      isolated = page;
      await point('unlock_page');
      locked[page] = false;
    })();
    const owner = (async () => {
      await point('folio_put');
      ref[H]--;
      if (ref[H] === 0) for (let i = 0; i < 4; i++) head[i] = i;
      await point('alloc_pages');
      ref[H] = 1;
      published[H] = true;
    })();
    await s.waitIdle();
    await Promise.all([scanner, owner]);
    return isolated === -1 || isolated === T1;
  });
  // One timed batch: runs per second.
  return async (numRuns, seed) => {
    const t = performance.now();
    await fc.assert(property, { numRuns, seed });
    return (numRuns * 1000) / (performance.now() - t);
  };
}

/**
 * Our 9a rate ÷ fast-check's, after each side ran WARM_MS untimed: the median of PAIRS
 * ratios, each of one batch of ours and one of fast-check's run back to back, so that the
 * two sides of a ratio share the machine's state of the moment (on a shared host its speed
 * changes by tens of percent from one second to the next).
 */
async function versusFastCheck(ex, fc) {
  const theirs = fastCheckBatch(fc);
  await warm(WARM_MS, (i) => ourBatch(ex, '9a', 2000, 2001 + i * 2000));
  await warm(WARM_MS, (i) => theirs(2000, 1000 + i));
  const ratios = [];
  for (let i = 0; i < PAIRS; i++) {
    const ours = ourBatch(ex, '9a', 20000, 1 + i * 20000);
    const fcRate = await theirs(5000, 2 + i);
    if (process.env.MOPS_BENCH_DEBUG) console.log({ ours, fcRate });
    ratios.push(ours / fcRate);
  }
  return median(ratios);
}

/** @param {unknown} _core the built @mops/core (unused: the explorer imports its own) */
export async function run(_core) {
  const ex = await import(pathToFileURL(join(here, 'dist/index.js')).href);
  const require = createRequire(import.meta.url);
  const fc = require('fast-check');

  const perRace = RACES.map((name) => schedulesPerSecond(ex, name, 20000));
  const schedulesPerS = Math.min(...perRace);

  const versus = await versusFastCheck(ex, fc);
  if (process.env.MOPS_BENCH_DEBUG) console.log({ perRace, versus });

  let worst = 0;
  for (const name of RACES) {
    ex.explore(name, { variant: 'buggy', strategy: 'random', seed: 1 });
    const t = performance.now();
    const r = ex.explore(name, { variant: 'buggy', strategy: 'random', seed: 1 });
    const dt = performance.now() - t;
    if (!r.failed) throw new Error(`buggy variant of ${name} was not caught`);
    worst = Math.max(worst, dt);
  }

  return [
    {
      id: 'explorer_schedules_per_s',
      value: Math.round(schedulesPerS),
      unit: 'schedules/s',
      target: 20000,
      higherIsBetter: true,
    },
    {
      id: 'explorer_vs_fastcheck',
      value: versus,
      unit: 'ratio',
      target: 10,
      higherIsBetter: true,
    },
    { id: 'explorer_time_to_bug_ms', value: worst, unit: 'ms', target: 1000 },
  ];
}
