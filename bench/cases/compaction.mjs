// compact_memory on a 32 GiB metadata-only machine with 25 % of its pages movable and
// scattered (every fourth page a movable filler page, the rest free), and the same on
// 16 GiB for the scaling ratio.
import { compactionVsCopies, median, settle, warmContents } from '../lib.mjs';

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
 * compact_memory on a fragmented 1 GiB machine with page contents against plain page copies
 * (see compactionVsCopies). The first WARM_REPS repetitions are not counted: the
 * page-copying part of the migration path is still being compiled during the first machine,
 * and V8 recompiles part of the allocator and compaction paths once the first machines are
 * collected (--trace-deopt).
 */
function contentVsMemcpy(core) {
  const { createMachine, fragmentWithFiller } = core;
  const build = (rep) => {
    const m = createMachine({ memory: '1G', contents: true, profile: 'v6.3', seed: 1 + rep });
    // Every page backed and copied into once first (see warmContents), on both sides of
    // the ratio.
    warmContents(m.mem.pages.contents);
    fragmentWithFiller(m, { fill: 0.9, free: 0.5 });
    return m;
  };
  return compactionVsCopies(core, build, WARM_REPS, COUNTED_REPS);
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
