// balloon_migrate_ns: single-CPU isolate + migrate + putback of balloon pages through the
// virtio balloon driver (classic design, v6.3, metadata-only machine), per page.
//
// As in bench/cases/migrate.mjs: targets come from a pool isolated beforehand (the free
// scanner's job, not timed), migrate_pages runs on lists of 32 pages, and the machine is
// fragmented first so that freeing a migrated source costs one list insertion.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fragmentEveryOther, median, migrateRounds } from '../../bench/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const BATCH = 32;

function setup(core, balloon) {
  const { createMachine } = core;
  const m = createMachine({ memory: '1G', contents: false, profile: 'v6.3', minFreeKbytes: 0 });
  const mem = m.mem;
  fragmentEveryOther(core, mem);
  const vb = new balloon.VirtioBalloon(m);
  const got = m.run(() => vb.fill(BATCH));
  if (got !== BATCH) throw new Error(`balloon fill got ${got} pages`);
  return { m, vb, pages: vb.dev.listPages(), list: mem.pages.lists.newList() };
}

/** Runs the case; `core` is the built @mops/core. */
export async function run(core) {
  const balloon = await import(pathToFileURL(join(here, 'dist/index.js')).href);
  const s = setup(core, balloon);
  // Long enough for V8 to finish compiling the migration path (the first 600-round batch
  // after a 300-round warm-up still runs at twice the steady cost).
  migrateRounds(core, s, 2000, BATCH);
  const per = [];
  for (let b = 0; b < 15; b++) per.push(migrateRounds(core, s, 600, BATCH) / (600 * BATCH));
  const { vb } = s;
  if (vb.numPages !== BATCH || vb.host.inflatedCount !== BATCH || vb.dev.isolatedPages !== 0)
    throw new Error('balloon state diverged during the benchmark');
  return [{ id: 'balloon_migrate_ns', value: median(per), unit: 'ns', target: 500 }];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const core = await import(pathToFileURL(join(here, '../../packages/core/dist/index.js')).href);
  console.log(await run(core));
}
