/**
 * Benchmark: cost of a 5-deep chain of kernel generator functions in a task running alone.
 *
 * Each level announces a scheduling point (`if (sched.preemptible) yield …`) and performs a
 * trivial primitive, then delegates to the next level with `yield*`. With one task the
 * scheduler is not preemptible, so nothing is ever yielded: what is measured is the five
 * generator creations and delegations a migrated page pays for (DESIGN decision 1). The
 * whole measurement runs inside one task, so task spawning is not part of it.
 */

const BATCHES = 15;
const ITERATIONS = 100_000;

/** @param {typeof import('@mops/core')} core the built `@mops/core` module namespace */
export async function run(core) {
  const sched = new core.Scheduler({ seed: 1 });
  const point = Object.freeze({ op: 'bench_point' });
  const page = { refcount: 1 };

  function* f5() {
    if (sched.preemptible) yield point;
    page.refcount++;
    return page.refcount;
  }
  function* f4() {
    if (sched.preemptible) yield point;
    page.refcount--;
    return yield* f5();
  }
  function* f3() {
    if (sched.preemptible) yield point;
    page.refcount++;
    return yield* f4();
  }
  function* f2() {
    if (sched.preemptible) yield point;
    page.refcount--;
    return yield* f3();
  }
  function* f1() {
    if (sched.preemptible) yield point;
    return yield* f2();
  }

  const perChain = [];
  let sink = 0;
  sched.run(function* () {
    // Warm-up: let the JIT settle on the chain before timing it.
    for (let i = 0; i < ITERATIONS * 2; i++) sink += yield* f1();
    for (let b = 0; b < BATCHES; b++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ITERATIONS; i++) sink += yield* f1();
      perChain.push(Number(process.hrtime.bigint() - t0) / ITERATIONS);
    }
  });
  if (sink === 0 || sched.steps !== 0) throw new Error('sched bench: the chain did not run alone');
  perChain.sort((a, b) => a - b);
  const median = perChain[Math.floor(perChain.length / 2)];
  return [{ id: 'sched_chain5_ns', value: Math.round(median * 10) / 10, unit: 'ns', target: 250 }];
}
