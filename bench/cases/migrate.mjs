// movable_ops migration figures (v6.3): per-page overhead with a trivial driver (metadata
// only), and migrating pages with contents against a plain copy of the same pages.
//
// As in compaction, targets come from a list of free pages isolated beforehand (the free
// scanner's job, not timed) and migrate_pages runs on lists of COMPACT_CLUSTER_MAX pages.
// The machine is fragmented first (every other page allocated), so freeing a migrated
// source costs one list insertion, as on a machine that needs compacting.
import { median } from '../lib.mjs';

const BATCH = 32;

function trivialDriver(core, m, copies) {
  const { defineMovableOps, __SetPageMovable, __ClearPageMovable, getPage, putPage, PAGE_SIZE } =
    core;
  const mem = m.mem;
  const data = mem.pages.contents;
  const ops = defineMovableOps('trivial', {
    isolatePage: () => true,
    migratePage(dst, src) {
      if (data) {
        data.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
        copies?.push(src, dst);
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

function setup(core, memory, contents, copies) {
  const { createMachine, GFP, trylockPage, unlockPage, __SetPageMovable, allocPages, putPage } =
    core;
  const m = createMachine({ memory, contents, profile: 'v6.3', minFreeKbytes: 0 });
  const mem = m.mem;
  const all = [];
  for (let p = allocPages(mem, GFP.KERNEL, 0); p >= 0; p = allocPages(mem, GFP.KERNEL, 0))
    all.push(p);
  for (const p of all) if (p % 2 === 0) putPage(mem, p);
  const ops = trivialDriver(core, m, copies);
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

/** Runs `rounds` rounds of isolate + migrate_pages + putback over the driver's pages. */
function runRounds(core, s, rounds) {
  const {
    isolateMovablePage,
    isolateMovablePageFast,
    ISOLATE_AS_TASK,
    migratePages,
    putbackMovablePages,
    allocPages,
    GFP,
  } = core;
  const { m, pages, list } = s;
  const mem = m.mem;
  const lists = mem.pages.lists;
  const pool = new Int32Array(rounds * BATCH);
  for (let i = 0; i < pool.length; i++) pool[i] = allocPages(mem, GFP.HIGHUSER_MOVABLE, 0);
  let next = 0;
  const getNew = () => pool[next++];
  const t0 = process.hrtime.bigint();
  m.run(function* () {
    for (let r = 0; r < rounds; r++) {
      const first = next;
      for (let i = 0; i < BATCH; i++) {
        let ok = isolateMovablePageFast(m, pages[i], 0);
        if (ok === ISOLATE_AS_TASK) ok = yield* isolateMovablePage(m, pages[i], 0);
        lists.addTail(list, pages[i]);
      }
      const res = yield* migratePages(m, list, getNew, undefined, 0, 0);
      if (res.rc !== 0) throw new Error(`migration failed: ${res.rc}`);
      yield* putbackMovablePages(m, list);
      for (let i = 0; i < BATCH; i++) pages[i] = pool[first + i];
    }
  });
  return Number(process.hrtime.bigint() - t0);
}

export async function run(core) {
  const out = [];
  {
    const s = setup(core, '1G', false);
    runRounds(core, s, 500);
    const per = [];
    for (let b = 0; b < 15; b++) per.push(runRounds(core, s, 1000) / (1000 * BATCH));
    out.push({ id: 'migrate_overhead_ns', value: median(per), unit: 'ns', target: 400 });
  }
  {
    const copies = [];
    const s = setup(core, '1G', true, copies);
    const data = s.m.mem.pages.contents;
    const { PAGE_SIZE } = core;
    const flush = new Uint8Array(64 << 20);
    runRounds(core, s, 200);
    const ratios = [];
    for (let rep = 0; rep < 9; rep++) {
      copies.length = 0;
      flush.fill(rep);
      const mig = runRounds(core, s, 1000);
      // The same copies, same pages, same order, from a cache state as cold as before.
      flush.fill(rep + 1);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < copies.length; i += 2)
        data.copyWithin(
          copies[i + 1] * PAGE_SIZE,
          copies[i] * PAGE_SIZE,
          (copies[i] + 1) * PAGE_SIZE,
        );
      const copy = Number(process.hrtime.bigint() - t0);
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
