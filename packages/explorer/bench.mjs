// Explorer benchmarks (DESIGN performance targets):
// - explorer_schedules_per_s: random schedules per second over the fixed variants of the
//   seed races 9a, 9d and 9e (every schedule rebuilds the machine and runs the invariant
//   checker after every step), the median of three timed batches;
// - explorer_vs_fastcheck: our runs per second on 9a against a fast-check fc.scheduler model
//   of the same race (promises standing for the same scheduling points, the same
//   assertion), run with fc.assert(fc.asyncProperty(fc.scheduler(), …)); each side first
//   runs for WARM_MS (both reach their steady rate well within it: fast-check needs some
//   20 000 runs, we some 10 000), then reports the median of five timed batches;
// - explorer_time_to_bug_ms: wall time of `explore` (random, seed 1) on each buggy variant,
//   including shrinking and the report; the worst of the races.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from '../../bench/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const RACES = ['9a', '9d', '9e'];
/** Warm-up time of each side of explorer_vs_fastcheck. */
const WARM_MS = 1500;

/**
 * Random schedules per second on the fixed variant of `name`: the median of `batches` timed
 * batches of `runs` schedules, after `warmMs` of untimed runs (or one short batch when 0).
 */
function schedulesPerSecond(ex, name, runs, batches = 3, warmMs = 0) {
  const explore = (n, seed) =>
    ex.explore(name, { variant: 'fixed', strategy: 'random', runs: n, seed });
  explore(Math.min(runs, 2000), 1);
  for (let seed = 2001, t0 = performance.now(); performance.now() - t0 < warmMs; seed += 2000)
    explore(2000, seed);
  const rates = [];
  for (let rep = 0; rep < batches; rep++) {
    const t = performance.now();
    const r = explore(runs, 1 + rep * runs);
    const dt = performance.now() - t;
    if (r.failed) throw new Error(`fixed variant of ${name} failed: ${r.failure?.message}`);
    rates.push((r.schedules * 1000) / dt);
  }
  return median(rates);
}

/**
 * The 9a race as fast-check sees it: the scanner derives the head of tail T1, then takes a
 * reference; the owner frees the folio and reallocates its head as a published page. Each
 * await on s.schedule() is one scheduling point. Fixed variant: the reference is taken on
 * T1 itself (folio_get_nontail_page), so the property holds and every run completes.
 */
async function fastCheckRunsPerSecond(fc, numRuns) {
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
  for (let seed = 1, t0 = performance.now(); performance.now() - t0 < WARM_MS; seed++)
    await fc.assert(property, { numRuns: 2000, seed: 1000 + seed });
  const rates = [];
  for (let rep = 0; rep < 5; rep++) {
    const t = performance.now();
    await fc.assert(property, { numRuns, seed: 2 + rep });
    rates.push((numRuns * 1000) / (performance.now() - t));
  }
  return median(rates);
}

/** @param {unknown} _core the built @mops/core (unused: the explorer imports its own) */
export async function run(_core) {
  const ex = await import(pathToFileURL(join(here, 'dist/index.js')).href);
  const require = createRequire(import.meta.url);
  const fc = require('fast-check');

  const perRace = RACES.map((name) => schedulesPerSecond(ex, name, 20000));
  const schedulesPerS = Math.min(...perRace);

  const ours9a = schedulesPerSecond(ex, '9a', 20000, 5, WARM_MS);
  const theirs9a = await fastCheckRunsPerSecond(fc, 5000);
  if (process.env.MOPS_BENCH_DEBUG) console.log({ perRace, ours9a, theirs9a });

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
      value: ours9a / theirs9a,
      unit: 'ratio',
      target: 10,
      higherIsBetter: true,
    },
    { id: 'explorer_time_to_bug_ms', value: worst, unit: 'ms', target: 1000 },
  ];
}
