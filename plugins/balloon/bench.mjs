// balloon_migrate_ns: single-CPU isolate + migrate + putback of balloon pages through the
// virtio balloon driver (classic design, v6.3, metadata-only machine), per page.
//
// As in bench/cases/migrate.mjs: targets come from a pool isolated beforehand (the free
// scanner's job, not timed), migrate_pages runs on lists of 32 pages, and the machine is
// fragmented first so that freeing a migrated source costs one list insertion.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BATCH = 32;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function setup(core, balloon) {
  const { createMachine, GFP, allocPages, putPage } = core;
  const m = createMachine({ memory: '1G', contents: false, profile: 'v6.3', minFreeKbytes: 0 });
  const mem = m.mem;
  const all = [];
  for (let p = allocPages(mem, GFP.KERNEL, 0); p >= 0; p = allocPages(mem, GFP.KERNEL, 0))
    all.push(p);
  for (const p of all) if (p % 2 === 0) putPage(mem, p);
  const vb = new balloon.VirtioBalloon(m);
  const got = m.run(() => vb.fill(BATCH));
  if (got !== BATCH) throw new Error(`balloon fill got ${got} pages`);
  return { m, vb, pages: vb.dev.listPages(), list: mem.pages.lists.newList() };
}

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
        if (ok !== true) throw new Error(`isolation failed for pfn ${pages[i]}`);
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

/** Runs the case; `core` is the built @mops/core. */
export async function run(core) {
  const balloon = await import(pathToFileURL(join(here, 'dist/index.js')).href);
  const s = setup(core, balloon);
  runRounds(core, s, 300);
  const per = [];
  for (let b = 0; b < 15; b++) per.push(runRounds(core, s, 600) / (600 * BATCH));
  const { vb } = s;
  if (vb.numPages !== BATCH || vb.host.inflatedCount !== BATCH || vb.dev.isolatedPages !== 0)
    throw new Error('balloon state diverged during the benchmark');
  return [{ id: 'balloon_migrate_ns', value: median(per), unit: 'ns', target: 500 }];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const core = await import(pathToFileURL(join(here, '../../packages/core/dist/index.js')).href);
  console.log(await run(core));
}
