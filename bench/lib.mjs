// Shared measuring helpers for bench cases.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc');

/**
 * A full garbage collection, run before a timed section: the machines of earlier repetitions
 * (a 1 GiB contents buffer, 32 GiB of page metadata) are collected now rather than in the
 * middle of the next measurement. What the measured code allocates is still collected, and
 * counted, inside it.
 */
export function settle() {
  fullGc();
}

/** Median of an array of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * Median nanoseconds per iteration of `body(iterations)` over `batches` batches, after one
 * warm-up batch. `body` runs `iterations` operations and returns nothing.
 */
export function nsPerOp(body, iterations, batches = 15) {
  body(iterations);
  const per = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    body(iterations);
    per.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return median(per);
}

/**
 * Fragments a fresh machine: allocates every free page (GFP_KERNEL) and frees every other
 * one, so that freeing a page later costs one free-list insertion and no merge.
 */
export function fragmentEveryOther(core, mem) {
  const { allocPages, putPage, GFP } = core;
  const all = [];
  for (let p = allocPages(mem, GFP.KERNEL, 0); p >= 0; p = allocPages(mem, GFP.KERNEL, 0))
    all.push(p);
  for (const p of all) if (p % 2 === 0) putPage(mem, p);
}

/**
 * Runs `rounds` rounds of isolate + migrate_pages (ASYNC) + putback over `s.pages`, `batch`
 * pages per round, on a single CPU; returns the elapsed nanoseconds. Targets come from a
 * pool allocated beforehand (the free scanner's job, not timed); after each round the
 * migrated copies become the pages of the next.
 */
export function migrateRounds(core, s, rounds, batch) {
  const {
    isolateMovablePage,
    isolateMovablePageFast,
    ISOLATE_AS_TASK,
    ISOLATE_PENDING,
    isolateMovablePageResume,
    migratePages,
    putbackMovablePages,
    allocPages,
    GFP,
  } = core;
  const { m, pages, list } = s;
  const mem = m.mem;
  const lists = mem.pages.lists;
  const pool = new Int32Array(rounds * batch);
  for (let i = 0; i < pool.length; i++) pool[i] = allocPages(mem, GFP.HIGHUSER_MOVABLE, 0);
  // One allocation callback for every call on `s`, as compaction passes one callback for a
  // whole zone: a new closure per call would make V8 throw away its compiled migration path.
  s.targets = pool;
  s.next = 0;
  s.getNew ??= () => s.targets[s.next++];
  const getNew = s.getNew;
  const t0 = process.hrtime.bigint();
  m.run(function* () {
    for (let r = 0; r < rounds; r++) {
      const first = s.next;
      for (let i = 0; i < batch; i++) {
        let ok = isolateMovablePageFast(m, pages[i], 0);
        if (ok === ISOLATE_AS_TASK) ok = yield* isolateMovablePage(m, pages[i], 0);
        else if (ok === ISOLATE_PENDING) ok = yield* isolateMovablePageResume(m, pages[i]);
        if (ok !== true) throw new Error(`isolation failed for pfn ${pages[i]}`);
        lists.addTail(list, pages[i]);
      }
      const res = yield* migratePages(m, list, getNew, undefined, 0, 0);
      if (res.rc !== 0) throw new Error(`migration failed: ${res.rc}`);
      yield* putbackMovablePages(m, list);
      for (let i = 0; i < batch; i++) pages[i] = pool[first + i];
    }
  });
  return Number(process.hrtime.bigint() - t0);
}

/**
 * Prepares a contents buffer (all zero) for timing: every page is copied into once, from a
 * neighbour, and stays zero. On the machines these figures are taken on, the first page
 * copy into a page of a fresh buffer costs two to four times a later one, even when the
 * page was written with plain stores before (a page fault, for pages never touched, costs
 * more still). A ratio against a plain copy would charge that to whichever side copies
 * into a page first; after this pass neither side pays it.
 */
export function warmContents(data) {
  const PS = 4096;
  const pages = Math.floor(data.length / PS);
  for (let p = 0; p + 1 < pages; p += 2) data.copyWithin(p * PS, (p + 1) * PS, (p + 2) * PS);
  for (let p = 1; p < pages; p += 2) data.copyWithin(p * PS, (p - 1) * PS, p * PS);
}

/** Nanoseconds to make the page copies `pairs` ((src, dst) pfn pairs, in order) in `data`. */
function replayPageCopies(data, pairs) {
  const PS = 4096;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < pairs.length; i += 2)
    data.copyWithin(pairs[i + 1] * PS, pairs[i] * PS, pairs[i] * PS + PS);
  return Number(process.hrtime.bigint() - t0);
}

/**
 * compact_memory on machines with page contents, `build(rep)` making repetition `rep`'s,
 * against page copies from a cache state as cold (a 64 MiB sweep before each), after
 * `warmReps` uncounted repetitions:
 * - `vsMemcpy`: ÷ the same number of 4 KiB copies between scattered pfns of the same buffer;
 * - `vsReplayed`: ÷ the very page copies the compaction made, replayed alone in the same
 *   order. The compaction's copies go mostly from one pfn to a nearby one, which the
 *   hardware prefetches far better than scattered copies: this ratio is the larger, and
 *   says how much the emulation adds to the data movement it cannot avoid.
 * The copies are recorded as the compaction asks drivers for them (every `migrate_page`
 * call, through the machine's `onDriverCall` hook, into a preallocated array): a few
 * nanoseconds per page of the timed run, against a microsecond or so per page. Medians
 * over `countedReps`, and the pages the last one migrated.
 */
export function compactionVsCopies(core, build, warmReps, countedReps) {
  const vsMemcpy = [];
  const vsReplayed = [];
  let migrated = 0;
  for (let rep = 0; rep < warmReps + countedReps; rep++) {
    const m = build(rep);
    const pairs = new Int32Array(2 * m.nrPages);
    let calls = 0;
    m.mem.onDriverCall = (callback, dst, src) => {
      if (callback !== 'migrate_page') return;
      pairs[calls] = src;
      pairs[calls + 1] = dst;
      calls += 2;
    };
    const flush = new Uint8Array(64 << 20);
    settle();
    flush.fill(rep);
    const before = m.mem.vmstat.get('pgmigrate_success');
    let t = process.hrtime.bigint();
    m.run(() => core.compactMemory(m));
    const compactNs = Number(process.hrtime.bigint() - t);
    m.mem.onDriverCall = undefined;
    const n = m.mem.vmstat.get('pgmigrate_success') - before;
    migrated = n;
    const bytes = m.mem.pages.contents;
    const half = m.nrPages >> 1;
    flush.fill(rep + 1);
    t = process.hrtime.bigint();
    for (let i = 0, s = 7, d = 11; i < n; i++) {
      s = (s * 1103515245 + 12345) % half;
      d = (d * 69069 + 1) % half;
      bytes.copyWithin((half + d) * 4096, s * 4096, s * 4096 + 4096);
    }
    const copyNs = Number(process.hrtime.bigint() - t);
    if (rep < warmReps) continue;
    // A call that failed copied nothing: then the replay would copy more than the run.
    if (calls !== 2 * n)
      throw new Error(
        `the compaction made ${calls / 2} migrate_page calls for ${n} pages migrated`,
      );
    flush.fill(rep + 2);
    const replayNs = replayPageCopies(bytes, pairs.subarray(0, calls));
    if (process.env.MOPS_BENCH_DEBUG) console.log({ rep, compactNs, copyNs, replayNs, n });
    vsMemcpy.push(compactNs / copyNs);
    vsReplayed.push(compactNs / replayNs);
  }
  return { vsMemcpy: median(vsMemcpy), vsReplayed: median(vsReplayed), migrated };
}
