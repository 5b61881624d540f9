// movable_ops migration figures (v6.3): per-page overhead with a trivial driver (metadata
// only), and migrating pages with contents against a plain copy of the same pages.
//
// As in compaction, targets come from a list of free pages isolated beforehand (the free
// scanner's job, not timed) and migrate_pages runs on lists of COMPACT_CLUSTER_MAX pages.
// The machine is fragmented first (every other page allocated), so freeing a migrated
// source costs one list insertion, as on a machine that needs compacting.
import { fragmentEveryOther, median, migrateRounds, warmContents } from '../lib.mjs';

const BATCH = 32;

function trivialDriver(core, m, rec) {
  const { defineMovableOps, __SetPageMovable, __ClearPageMovable, getPage, putPage, PAGE_SIZE } =
    core;
  const mem = m.mem;
  const data = mem.pages.contents;
  const ops = defineMovableOps('trivial', {
    isolatePage: () => true,
    migratePage(dst, src) {
      if (data) {
        data.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
        // The copies are recorded in a preallocated array: a growing JS array would cost
        // the migration a few hundred nanoseconds per page of the harness's own bookkeeping.
        if (rec) {
          const n = rec.n;
          rec.pairs[n] = src;
          rec.pairs[n + 1] = dst;
          rec.n = n + 2;
        }
      }
      __SetPageMovable(mem, dst, ops);
      getPage(mem, dst);
      __ClearPageMovable(mem, src);
      putPage(mem, src);
      return 0;
    },
    putbackPage() {},
  });
  return ops;
}

function setup(core, memory, contents, rec) {
  const { createMachine, GFP, trylockPage, unlockPage, __SetPageMovable, allocPages } = core;
  const m = createMachine({ memory, contents, profile: 'v6.3', minFreeKbytes: 0 });
  const mem = m.mem;
  // Every page backed and copied into once first (see warmContents): otherwise the first
  // copy into a target costs more inside the migration than in the plain copy after it.
  if (mem.pages.contents) warmContents(mem.pages.contents);
  fragmentEveryOther(core, mem);
  const ops = trivialDriver(core, m, rec);
  const pages = [];
  for (let i = 0; i < BATCH; i++) {
    const pfn = allocPages(mem, GFP.HIGHUSER_MOVABLE, 0);
    trylockPage(mem, pfn);
    __SetPageMovable(mem, pfn, ops);
    unlockPage(m, pfn);
    pages.push(pfn);
  }
  return { m, pages, list: mem.pages.lists.newList() };
}

export async function run(core) {
  const out = [];
  {
    const s = setup(core, '1G', false);
    migrateRounds(core, s, 500, BATCH);
    const per = [];
    for (let b = 0; b < 15; b++) per.push(migrateRounds(core, s, 1000, BATCH) / (1000 * BATCH));
    out.push({ id: 'migrate_overhead_ns', value: median(per), unit: 'ns', target: 400 });
  }
  {
    const rec = { pairs: new Int32Array(2 * 1000 * BATCH), n: 0 };
    const s = setup(core, '1G', true, rec);
    const data = s.m.mem.pages.contents;
    const { PAGE_SIZE } = core;
    const flush = new Uint8Array(64 << 20);
    migrateRounds(core, s, 200, BATCH);
    const ratios = [];
    for (let rep = 0; rep < 9; rep++) {
      rec.n = 0;
      flush.fill(rep);
      const mig = migrateRounds(core, s, 1000, BATCH);
      // The same copies, same pages, same order, from a cache state as cold as before.
      flush.fill(rep + 1);
      const t0 = process.hrtime.bigint();
      const copies = rec.pairs;
      for (let i = 0; i < rec.n; i += 2)
        data.copyWithin(
          copies[i + 1] * PAGE_SIZE,
          copies[i] * PAGE_SIZE,
          (copies[i] + 1) * PAGE_SIZE,
        );
      const copy = Number(process.hrtime.bigint() - t0);
      const pages = rec.n / 2;
      if (process.env.MOPS_BENCH_DEBUG)
        console.log({ rep, migNsPerPage: mig / pages, copyNsPerPage: copy / pages });
      ratios.push(mig / copy);
    }
    out.push({
      id: 'migrate_content_vs_memcpy',
      value: median(ratios),
      unit: 'ratio',
      target: 1.5,
    });
  }
  return out;
}
