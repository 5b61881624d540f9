import { describe, expect, it } from 'vitest';
import {
  COMPACT_PRIO,
  compactMemory,
  createMachine,
  createMovableFiller,
  GFP,
  type Machine,
  PROFILE_NAMES,
  pageblockPfnToPage,
  tryToCompactPages,
  ZONE,
  type Zone,
} from '../../src/index.js';
import { machineFromProc } from '../../src/proc/index.js';
import { expectInvariants } from '../helpers.js';
import { FIXTURES } from '../proc/helpers.js';

const PB = 512;

/** The pageblocks of `z` that lie wholly in its hole (the end of its span). */
function holeBlocks(z: Zone): number[] {
  const out: number[] = [];
  const first = Math.ceil((z.zoneStartPfn + z.presentPages) / PB) * PB;
  for (let pfn = first; pfn < z.zoneEndPfn; pfn += PB) out.push(pfn);
  return out;
}

/** Whether `pfn` is a present pfn of some zone. */
function present(m: Machine, pfn: number): boolean {
  return m.mem.populatedZones.some(
    (z) => pfn >= z.zoneStartPfn && pfn < z.zoneStartPfn + z.presentPages,
  );
}

describe('pageblock_pfn_to_page: a zone hole has no memmap', () => {
  it('a block with a present pfn has one; a block wholly in the hole, or outside the zone, has none', () => {
    const m = createMachine({
      memory: '8M',
      zones: [{ idx: ZONE.NORMAL, startPfn: 0, spanned: 2048, present: 1100 }],
      minFreeKbytes: 0,
    });
    const z = m.mem.node.zones[ZONE.NORMAL];
    expect([0, 512, 1024, 1536].map((pfn) => pageblockPfnToPage(z, pfn))).toEqual([
      true,
      true,
      // The hole starts inside block 2: its memmap is there, the hole part reserved.
      true,
      false,
    ]);
    expect(pageblockPfnToPage(z, 2048)).toBe(false);
  });
});

// The sample's DMA32 zone spans 0x1000-0xfffff with 1528 pageblocks counted (0xc0000-0xfffff,
// below 4 GiB, is a hole), its Normal zone 0x100000-0x63ffff with 1344 counted (0x1a8000 on
// offline). Nothing is movable, so compact_memory's migrate scanner walks each zone up to the
// free scanner's start, the zone's last pageblock.
describe.each(PROFILE_NAMES)('migrate scanner on a machine from /proc — %s', (profile) => {
  it('scans and traces only the present pageblocks; the holes get no count, event or skip hint', () => {
    const m = machineFromProc(FIXTURES, { profile });
    const zones = m.mem.populatedZones;
    expect(zones.map((z) => holeBlocks(z).length)).toEqual([0, 512, 9408]);
    const events: { start: number; end: number; scanned: number }[] = [];
    m.trace.on('mm_compaction_isolate_migratepages', (e) =>
      events.push({
        start: Number(e.start_pfn),
        end: Number(e.end_pfn),
        scanned: Number(e.nr_scanned),
      }),
    );
    const before = m.mem.vmstat.get('compact_migrate_scanned');
    m.run(() => compactMemory(m));
    const scanned = m.mem.vmstat.get('compact_migrate_scanned') - before;

    const outside = events.filter((e) => !present(m, e.start) || !present(m, e.end - 1));
    expect(outside.slice(0, 3)).toEqual([]);
    // Every present block once, but each zone's last one (DMA's 8th; DMA32's and Normal's
    // last present blocks lie below their holes, so they are scanned too).
    expect(events.length).toBe(7 + 1528 + 1344);
    expect(scanned).toBe(events.reduce((n, e) => n + e.scanned, 0));
    for (const z of zones)
      expect(holeBlocks(z).filter((pfn) => m.mem.pageblockSkip(pfn))).toEqual([]);
    expectInvariants(m);
  });
});

/**
 * 32 MiB spanned by one Normal zone of which only the first 16 MiB are present (blocks
 * 8-15 a hole): 64 filler pages at the bottom to migrate, every other page of blocks 1-7
 * free, everything else unmovable.
 */
function holedMachine(profile: (typeof PROFILE_NAMES)[number]): Machine {
  const m = createMachine({
    memory: '32M',
    profile,
    zones: [{ idx: ZONE.NORMAL, startPfn: 0, spanned: 8192, present: 4096 }],
    minFreeKbytes: 0,
  });
  const filler = createMovableFiller(m);
  while (m.allocPages(GFP.HIGHUSER_MOVABLE, 0) >= 0);
  for (let p = 0; p < 64; p++) m.putPage(p);
  filler.alloc(64);
  for (let p = PB + 1; p < 4096; p += 2) m.putPage(p);
  return m;
}

describe.each(PROFILE_NAMES.filter((p) => p !== 'v4.8'))(
  'free scanner ignoring block suitability (direct compaction at SYNC_FULL) — %s',
  (profile) => {
    it('passes over the hole: no pfn of it scanned, no event, no skip hint', () => {
      const m = holedMachine(profile);
      const z = m.mem.node.zones[ZONE.NORMAL];
      const starts: number[] = [];
      m.trace.on('mm_compaction_isolate_freepages', (e) => starts.push(Number(e.start_pfn)));
      const migrated = m.mem.vmstat.get('pgmigrate_success');
      m.run(() =>
        tryToCompactPages(m, {
          gfp: GFP.HIGHUSER_MOVABLE,
          order: 3,
          allocFlags: 0,
          prio: COMPACT_PRIO.SYNC_FULL,
        }),
      );
      expect(starts.filter((pfn) => pfn >= 4096)).toEqual([]);
      expect(holeBlocks(z).filter((pfn) => m.mem.pageblockSkip(pfn))).toEqual([]);
      // The free scanner ran, from the top of the present part down, and found targets.
      expect(starts.length).toBeGreaterThan(0);
      expect(m.mem.vmstat.get('pgmigrate_success')).toBeGreaterThan(migrated);
      expectInvariants(m);
    });
  },
);
