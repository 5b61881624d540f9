// compact_memory on a 32 GiB metadata-only machine with 25 % of its pages movable and
// scattered (every fourth page a movable filler page, the rest free), and the same on
// 16 GiB for the scaling ratio.
import { median, recordPageCopies, replayPageCopies, settle, warmContents } from '../lib.mjs';

function setup(core, memory) {
  const { createMachine, createMovableFiller } = core;
  const m = createMachine({ memory, contents: false, profile: 'v6.3' });
  const filler = createMovableFiller(m);
  const pages = filler.alloc(Number.MAX_SAFE_INTEGER, { reserves: true });
  for (const p of pages) if (p % 4 !== 0) filler.free(p);
  return m;
}

/**
 * Median time of `reps` compactions, each on a fresh machine, after `warmup` untimed ones
 * (the first compaction of a process runs about 10 % slower than the next, even after a
 * smaller machine was compacted first).
 */
function timeCompact(core, memory, reps, warmup = 0) {
  const times = [];
  let migrated = 0;
  for (let i = -warmup; i < reps; i++) {
    const m = setup(core, memory);
    settle();
    const t0 = performance.now();
    m.run(() => core.compactMemory(m));
    if (i >= 0) times.push(performance.now() - t0);
    migrated = m.mem.vmstat.get('pgmigrate_success');
  }
  return { ms: median(times), migrated };
}

/** Untimed repetitions of compact_content_vs_memcpy, then the counted ones (the median). */
const WARM_REPS = 3;
const COUNTED_REPS = 9;

/**
 * compact_memory on a fragmented 1 GiB machine with page contents, divided by a plain copy
 * of the same number of 4 KiB pages between scattered pfns of the same buffer, from a cache
 * state as cold (a 64 MiB sweep before each): `vsMemcpy`.
 *
 * `vsReplayed` divides the same compaction by the very page copies it made, replayed alone
 * in the same order from an equally cold cache (recorded on an untimed twin machine of the
 * same seed). The compaction's copies go mostly from one pfn to a nearby one, which the
 * hardware prefetches far better than scattered copies: this ratio is the larger, and says
 * how much the emulation adds to the data movement it cannot avoid.
 */
function contentVsMemcpy(core) {
  const { createMachine, fragmentWithFiller, compactMemory } = core;
  const build = (rep) => {
    const m = createMachine({ memory: '1G', contents: true, profile: 'v6.3', seed: 1 + rep });
    // Every page backed and copied into once first (see warmContents), on both sides of
    // the ratio.
    warmContents(m.mem.pages.contents);
    fragmentWithFiller(m, { fill: 0.9, free: 0.5 });
    return m;
  };
  const vsMemcpy = [];
  const vsReplayed = [];
  // The first WARM_REPS repetitions are not counted: the page-copying part of the migration
  // path is still being compiled during the first machine, and V8 recompiles part of the
  // allocator and compaction paths once the first machines are collected (--trace-deopt).
  for (let rep = 0; rep < WARM_REPS + COUNTED_REPS; rep++) {
    const counted = rep >= WARM_REPS;
    let pairs;
    if (counted) {
      const twin = build(rep);
      pairs = recordPageCopies(twin, () => twin.run(() => compactMemory(twin)));
    }
    const m = build(rep);
    const flush = new Uint8Array(64 << 20);
    settle();
    flush.fill(rep);
    let t = process.hrtime.bigint();
    m.run(() => compactMemory(m));
    const compactNs = Number(process.hrtime.bigint() - t);
    const n = m.mem.vmstat.get('pgmigrate_success');
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
    if (!counted) continue;
    if (pairs.length !== 2 * n)
      throw new Error(`the twin made ${pairs.length / 2} page copies, the timed run migrated ${n}`);
    flush.fill(rep + 2);
    const replayNs = replayPageCopies(bytes, pairs);
    if (process.env.MOPS_BENCH_DEBUG) console.log({ rep, compactNs, copyNs, replayNs, n });
    vsMemcpy.push(compactNs / copyNs);
    vsReplayed.push(compactNs / replayNs);
  }
  return { vsMemcpy: median(vsMemcpy), vsReplayed: median(vsReplayed) };
}

export async function run(core) {
  const big = timeCompact(core, '32G', 3, 1);
  const half = timeCompact(core, '16G', 3);
  // The 64 GiB figure is a median of three as well: a single run is at the mercy of the
  // shared host's speed of the moment, which moves by tens of percent.
  const huge = timeCompact(core, '64G', 3);
  const content = contentVsMemcpy(core);
  return [
    { id: 'compact_32g_ms', value: big.ms, unit: 'ms', target: 1000 },
    { id: 'compact_32g_pages_migrated', value: big.migrated, unit: 'pages' },
    { id: 'compact_scaling_32g_vs_16g', value: big.ms / half.ms, unit: 'ratio', target: 2.2 },
    { id: 'compact_scaling_ratio', value: huge.ms / big.ms, unit: 'ratio', target: 2.2 },
    { id: 'compact_content_vs_memcpy', value: content.vsMemcpy, unit: 'ratio', target: 1.5 },
    { id: 'compact_content_vs_replayed_copies', value: content.vsReplayed, unit: 'ratio' },
  ];
}
