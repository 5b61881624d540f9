// compact_memory on a 32 GiB metadata-only machine with 25 % of its pages movable and
// scattered (every fourth page a movable filler page, the rest free), and the same on
// 16 GiB for the scaling ratio.
import { median } from '../lib.mjs';

function setup(core, memory) {
  const { createMachine, createMovableFiller } = core;
  const m = createMachine({ memory, contents: false, profile: 'v6.3' });
  const filler = createMovableFiller(m);
  const pages = filler.alloc(Number.MAX_SAFE_INTEGER, { reserves: true });
  for (const p of pages) if (p % 4 !== 0) filler.free(p);
  return m;
}

function timeCompact(core, memory, reps) {
  const times = [];
  let migrated = 0;
  for (let i = 0; i < reps; i++) {
    const m = setup(core, memory);
    const t0 = performance.now();
    m.run(() => core.compactMemory(m));
    times.push(performance.now() - t0);
    migrated = m.mem.vmstat.get('pgmigrate_success');
  }
  return { ms: median(times), migrated };
}

export async function run(core) {
  const big = timeCompact(core, '32G', 3);
  const half = timeCompact(core, '16G', 3);
  return [
    { id: 'compact_32g_ms', value: big.ms, unit: 'ms', target: 1000 },
    { id: 'compact_32g_pages_migrated', value: big.migrated, unit: 'pages' },
    { id: 'compact_scaling_32g_vs_16g', value: big.ms / half.ms, unit: 'ratio', target: 2.2 },
  ];
}
