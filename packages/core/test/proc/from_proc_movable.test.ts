import { describe, expect, it } from 'vitest';
import { compactMemory } from '../../src/compaction/entry.js';
import { checkInvariants, createMachine, type Machine } from '../../src/machine.js';
import { MIGRATE, PAGE_SIZE, pageblock_nr_pages, ZONE } from '../../src/memory/constants.js';
import { page_has_movable_ops } from '../../src/migrate/movable.js';
import { PG } from '../../src/page/flags.js';
import { buddyinfo, IMPORTED_OWNER, machineFromProc, pagetypeinfo } from '../../src/proc/index.js';
import { PROFILE_NAMES } from '../../src/profile.js';
import {
  allocAllFree,
  createMovableFiller,
  FILLER_NAME,
} from '../../src/workload/movable_filler.js';
import { FIXTURES, fixture } from './helpers.js';

/** The allocated pages that are not reserved, by whether their pageblock is MOVABLE. */
function allocated(m: Machine): { movable: number[]; other: number[] } {
  const mem = m.mem;
  const p = mem.pages;
  const out = { movable: [] as number[], other: [] as number[] };
  for (const z of mem.populatedZones)
    for (let pfn = z.zoneStartPfn; pfn < z.zoneStartPfn + z.presentPages; pfn++) {
      if (p.refcount[pfn] === 0 || p.flags[pfn] & (1 << PG.reserved)) continue;
      (mem.pageblockMigratetype(pfn) === MIGRATE.MOVABLE ? out.movable : out.other).push(pfn);
    }
  return out;
}

/** The pfns of `pfns` not owned by `name`. */
function notOwnedBy(m: Machine, pfns: number[], name: string): number[] {
  const id = m.mem.owners.register(name);
  return pfns.filter((pfn) => m.mem.pages.ownerOf(pfn) !== id);
}

describe('machineFromProc without `movable` (the default)', () => {
  it('imports every allocated page unmovable: compact_memory migrates nothing', () => {
    const m = machineFromProc(FIXTURES);
    const { movable, other } = allocated(m);
    expect(movable.length).toBeGreaterThan(0);
    expect(notOwnedBy(m, [...movable, ...other], IMPORTED_OWNER)).toEqual([]);
    const before = m.mem.vmstat.get('pgmigrate_success');
    m.run(() => compactMemory(m));
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(before);
    expect(buddyinfo(m)).toBe(fixture('buddyinfo'));
  });
});

describe.each(PROFILE_NAMES)('machineFromProc with `movable: true` — %s', (profile) => {
  it('makes the allocated pages of MOVABLE pageblocks movable, prints the sample back, and compaction migrates them', () => {
    const m = machineFromProc(FIXTURES, { profile, movable: true });
    // The free state is the sample's: both files byte for byte.
    expect(buddyinfo(m)).toBe(fixture('buddyinfo'));
    expect(pagetypeinfo(m)).toBe(fixture('pagetypeinfo'));
    const { movable, other } = allocated(m);
    const filler = createMovableFiller(m);
    // Every allocated page of a MOVABLE block, and nothing else, is a published filler page.
    expect(filler.pages.size).toBe(movable.length);
    expect(notOwnedBy(m, movable, FILLER_NAME)).toEqual([]);
    expect(movable.filter((pfn) => !page_has_movable_ops(m.mem, pfn))).toEqual([]);
    expect(notOwnedBy(m, other, IMPORTED_OWNER)).toEqual([]);
    // Normal: 1186 MOVABLE pageblocks, 573234 of their pages free.
    const normal = m.mem.node.zones[ZONE.NORMAL];
    const inNormal = movable.filter((pfn) => normal.spans(pfn)).length;
    expect(inNormal).toBe(1186 * pageblock_nr_pages - 573234);
    expect(checkInvariants(m).violations).toEqual([]);

    const before = m.mem.vmstat.get('pgmigrate_success');
    const order10 = normal.nrFree[10];
    m.run(() => compactMemory(m));
    expect(m.mem.vmstat.get('pgmigrate_success') - before).toBeGreaterThan(1000);
    expect(filler.migrations).toBe(m.mem.vmstat.get('pgmigrate_success') - before);
    expect(normal.nrFree[10]).toBeGreaterThan(order10);
    expect(checkInvariants(m).violations).toEqual([]);
  });
});

it('movable pages keep their contents through compaction on a machine with contents', () => {
  // A 64 MiB Normal zone with the upper half of every 64 pages above 32 MiB free.
  const src = createMachine({ memory: '64M', zones: 'normal-only' });
  const taken = allocAllFree(src);
  for (const pfn of taken) if (pfn >= 8192 && pfn % 64 >= 32) src.putPage(pfn);
  const m = machineFromProc(
    { buddyinfo: buddyinfo(src), pagetypeinfo: pagetypeinfo(src) },
    { movable: true, contents: true },
  );
  expect(m.mem.pages.contents?.length).toBe(m.mem.nrPages * PAGE_SIZE);
  const filler = createMovableFiller(m);
  expect(filler.pages.size).toBeGreaterThan(4096);
  m.run(() => compactMemory(m));
  expect(filler.migrations).toBeGreaterThan(0);
  // The filler's checker reads every page's tag back.
  expect(checkInvariants(m).violations).toEqual([]);
});
