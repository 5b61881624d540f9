import { describe, expect, it } from 'vitest';
import { freePagesInBlocks } from '../../src/buddy/free_page.js';
import { GFP } from '../../src/buddy/gfp.js';
import { createMachine, type Machine } from '../../src/machine.js';
import { MIGRATE, NR_PAGE_ORDERS, ZONE } from '../../src/memory/constants.js';
import {
  buddyinfo,
  dirtyThresholds,
  memmapBootPages,
  pagesetParams,
  pagetypeinfo,
  totalreservePages,
  vmstat,
  zoneBlockCounts,
  zoneinfo,
} from '../../src/proc/index.js';
import { PROFILE_NAMES, type ProfileName } from '../../src/profile.js';
import { fixedFields, fixture } from './helpers.js';

const lines = (s: string) => s.split('\n');

function fresh(profile: ProfileName = 'v6.3'): Machine {
  return createMachine({ memory: '8G', contents: false, profile });
}

/** A machine after a mix of allocations: unmovable, reclaimable, movable, several orders. */
function used(profile: ProfileName = 'v6.3'): Machine {
  const m = fresh(profile);
  for (let i = 0; i < 300; i++) m.allocPages(GFP.KERNEL, i % 4);
  for (let i = 0; i < 200; i++) m.allocPages(GFP.KERNEL_RECLAIMABLE, i % 3);
  for (let i = 0; i < 500; i++) m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
  m.allocPages(GFP.KERNEL | 0x01, 2); // __GFP_DMA
  return m;
}

/** buddyinfo lines: `Node 0, zone %8s ` + 11 × `%6lu `. */
function buddyRows(text: string): { zone: string; counts: number[] }[] {
  expect(text.endsWith('\n')).toBe(true);
  return lines(text)
    .slice(0, -1)
    .map((l) => {
      expect(l.slice(0, 13)).toBe('Node 0, zone ');
      expect(l.slice(13, 21)).toMatch(/^ *[A-Za-z0-9]+$/);
      expect(l[21]).toBe(' ');
      return {
        zone: l.slice(13, 21).trim(),
        counts: fixedFields(l, 22, 6, NR_PAGE_ORDERS).map(Number),
      };
    });
}

describe('/proc/buddyinfo', () => {
  it('the layout checker accepts the real sample', () => {
    expect(buddyRows(fixture('buddyinfo')).map((r) => r.zone)).toEqual(['DMA', 'DMA32', 'Normal']);
  });

  it('fresh 8G machine: populated zones with each order count in %6lu columns', () => {
    const m = fresh();
    const rows = buddyRows(buddyinfo(m));
    expect(rows.map((r) => r.zone)).toEqual(['DMA', 'DMA32', 'Normal']);
    // DMA spans pfn 1..4095: one block of each order 0..9 (the buddy split of 1..1023) and 3 × 1024.
    expect(rows[0].counts).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3]);
    expect(rows[1].counts[10]).toBe(1020);
    for (const [i, z] of m.mem.populatedZones.entries())
      expect(rows[i].counts).toEqual([...z.nrFree]);
  });

  it('follows allocations, and leaves out zones without present pages', () => {
    const m = used();
    const rows = buddyRows(buddyinfo(m));
    for (const [i, z] of m.mem.populatedZones.entries())
      expect(rows[i].counts).toEqual([...z.nrFree]);
    expect(
      rows.some((r, i) => r.counts.join() !== buddyRows(buddyinfo(fresh()))[i].counts.join()),
    ).toBe(true);
    const small = createMachine({ memory: '64M', zones: 'normal-only', contents: false });
    expect(buddyRows(buddyinfo(small)).map((r) => r.zone)).toEqual(['Normal']);
  });
});

/** Splits pagetypeinfo into its header, free rows and block rows, checking each layout. */
function ptiParts(text: string) {
  const ls = lines(text);
  expect(ls.at(-1)).toBe('');
  const blank = ls.indexOf('', 3);
  const free = ls.slice(4, blank).map((l) => {
    const m = /^Node +(\d+), zone +(\S+), type +(\S+) /.exec(l)!;
    expect(l.slice(0, 5)).toBe('Node ');
    expect(l.slice(5, 9)).toBe('   0');
    expect(l.slice(9, 16)).toBe(', zone ');
    expect(l.slice(24, 31)).toBe(', type ');
    return { zone: m[2], type: m[3], counts: fixedFields(l, 44, 6, NR_PAGE_ORDERS) };
  });
  const blocksHeader = ls[blank + 1];
  const blocks = ls.slice(blank + 2, -1).map((l) => {
    expect(l.slice(0, 13)).toBe('Node 0, zone ');
    return { zone: l.slice(13, 21).trim(), counts: fixedFields(l, 22, 12, 5).map(Number) };
  });
  return { head: ls.slice(0, 4), free, blocksHeader, blocks };
}

describe('/proc/pagetypeinfo', () => {
  const sample = ptiParts(fixture('pagetypeinfo'));

  it('fresh machine: the same headers as the sample, rows in the same columns', () => {
    const m = fresh();
    const ours = ptiParts(pagetypeinfo(m));
    expect(ours.head).toEqual(sample.head);
    expect(ours.blocksHeader).toBe(sample.blocksHeader);
    expect(ours.free.map((r) => [r.zone, r.type])).toEqual(
      sample.free.map((r) => [r.zone, r.type]),
    );
    expect(ours.blocks.map((r) => r.zone)).toEqual(['DMA', 'DMA32', 'Normal']);
    // Every pageblock whose first pfn is in a zone starts MOVABLE at boot: DMA (pfn 1..4095)
    // begins inside pageblock 0, which memmap_init leaves UNMOVABLE, as in the sample.
    expect(ours.blocks[0].counts).toEqual(sample.blocks[0].counts);
    expect(ours.blocks.map((r) => r.counts)).toEqual([
      [1, 7, 0, 0, 0],
      [0, 2040, 0, 0, 0],
      [0, 2048, 0, 0, 0],
    ]);
  });

  it('after allocations the free rows sum to buddyinfo and the block rows to the zone', () => {
    const m = used();
    const ours = ptiParts(pagetypeinfo(m));
    const buddy = buddyRows(buddyinfo(m));
    for (const b of buddy) {
      const rows = ours.free.filter((r) => r.zone === b.zone);
      for (let o = 0; o < NR_PAGE_ORDERS; o++)
        expect(rows.reduce((s, r) => s + Number(r.counts[o]), 0)).toBe(b.counts[o]);
    }
    const normal = m.mem.node.zones[ZONE.NORMAL];
    const row = ours.blocks.find((r) => r.zone === 'Normal')!;
    expect(row.counts.reduce((a, b) => a + b, 0)).toBe(normal.nrPageblocks);
    expect(row.counts[MIGRATE.UNMOVABLE]).toBeGreaterThan(0);
    expect(row.counts[2]).toBeGreaterThan(0); // Reclaimable blocks were claimed
    expect(zoneBlockCounts(m.mem, normal).slice(0, 4)).toEqual(row.counts.slice(0, 4));
  });

  it('prints >100000 where the kernel stops counting a free list', () => {
    const m = fresh();
    const z = m.mem.node.zones[ZONE.NORMAL];
    z.nrFreeList[0 * 6 + MIGRATE.MOVABLE] += 123456; // counter only: a formatting check
    const row = lines(pagetypeinfo(m)).find((l) => l.includes('Normal, type      Movable'))!;
    expect(row.slice(44, 52)).toBe('>100000 ');
  });

  it('v4.8 counts a free list to its end (compaction-by-profile T11)', () => {
    const m = createMachine({ memory: '8G', contents: false, profile: 'v4.8' });
    const z = m.mem.node.zones[ZONE.NORMAL];
    const base = z.nrFreeList[0 * 6 + MIGRATE.MOVABLE];
    z.nrFreeList[0 * 6 + MIGRATE.MOVABLE] += 123456; // counter only: a formatting check
    const row = lines(pagetypeinfo(m)).find((l) => l.includes('Normal, type      Movable'))!;
    expect(row.slice(44, 51)).toBe(`${String(base + 123456).padStart(6)} `);
    expect(row).not.toContain('>');
  });

  it('counts a pageblock for the zone whose span holds the pfn the walk visits', () => {
    const m = fresh();
    m.mem.setPageblockMigratetype(0, MIGRATE.UNMOVABLE); // block 0 holds DMA's first pfn (1)
    m.mem.setPageblockMigratetype(4096, MIGRATE.RECLAIMABLE); // DMA32's first block
    const { blocks } = ptiParts(pagetypeinfo(m));
    expect(blocks[0].counts).toEqual([1, 7, 0, 0, 0]);
    expect(blocks[1].counts).toEqual([0, 2039, 1, 0, 0]);
  });
});

describe('/proc/vmstat', () => {
  const parse = (s: string) =>
    lines(s)
      .slice(0, -1)
      .map((l) => l.split(' '));

  // Each release's names and order: vmstat_releases.test.ts.
  it.each(PROFILE_NAMES)('%s prints one `name value` per line, each name once', (profile) => {
    const ours = parse(vmstat(fresh(profile)));
    for (const x of ours) {
      expect(x).toHaveLength(2);
      expect(x[1]).toMatch(/^\d+$/);
    }
    expect(new Set(ours.map((x) => x[0])).size).toBe(ours.length);
  });

  it.each([
    ['v4.8', false],
    ['v6.0', true],
    ['v6.3', true],
    ['v6.17', true],
  ] as const)(
    '%s: compact_daemon_*_scanned and thp_migration_* only from 6.x (T14)',
    (profile, has) => {
      const names = parse(vmstat(fresh(profile))).map((x) => x[0]);
      for (const n of [
        'compact_daemon_migrate_scanned',
        'compact_daemon_free_scanned',
        'thp_migration_success',
        'thp_migration_fail',
        'thp_migration_split',
      ])
        expect(names.includes(n), n).toBe(has);
      expect(names).toContain('compact_daemon_wake');
    },
  );

  it('sums the zone items and counts events after allocations', () => {
    const m = used('v6.17');
    const v = new Map(parse(vmstat(m)).map(([k, n]) => [k, Number(n)]));
    const zones = m.mem.node.zones;
    expect(v.get('nr_free_pages')).toBe(zones.reduce((s, z) => s + z.nrFreePages, 0));
    expect(v.get('nr_free_pages_blocks')).toBe(zones.reduce((s, z) => s + freePagesInBlocks(z), 0));
    expect(v.get('pgalloc_normal')).toBeGreaterThan(500);
    expect(v.get('pgalloc_dma')).toBe(4);
    const [thresh, bg] = dirtyThresholds(m.mem);
    expect(v.get('nr_dirty_threshold')).toBe(thresh);
    expect(v.get('nr_dirty_background_threshold')).toBe(bg);
    // 20 % and 10 % of the free memory above the reserves (no file pages yet).
    expect(thresh).toBeGreaterThan(0.19 * v.get('nr_free_pages')!);
    expect(thresh).toBeLessThan(0.2 * v.get('nr_free_pages')!);
    expect(bg).toBeLessThan(thresh);
    // 8 GiB of x86-64 memory: 64 sections of 128 MiB, 512 memmap pages each.
    expect(memmapBootPages(m.mem)).toBe(64 * 512);
    expect(v.get('nr_memmap_pages')).toBe(0);
  });

  it('clamps negative counters to 0 as %lu of a clamped counter', () => {
    const m = fresh();
    m.mem.vmstat.modNode('nr_dirty', -5);
    expect(vmstat(m)).toContain('\nnr_dirty 0\n');
  });
});

/** Replaces every number with N: the layout without the values. */
const skeleton = (s: string) => s.replace(/\d+/g, 'N');

/**
 * The 6.18 sample as 6.17 prints it: without the two per-node items 6.18 added
 * (pgpromote_candidate_nrl, nr_kernel_file_pages), as in /proc/vmstat.
 */
const SAMPLE_6_17 = fixture('zoneinfo')
  .split('\n')
  .filter((l) => !/^ {6}(pgpromote_candidate_nrl|nr_kernel_file_pages) /.test(l))
  .join('\n');

describe('/proc/zoneinfo', () => {
  it('v6.17 has exactly the sample layout, value for value position (fresh 8G machine)', () => {
    expect(fixture('zoneinfo')).toMatch(/\n {6}pgpromote_candidate_nrl \d+\n/);
    expect(fixture('zoneinfo')).toMatch(/\n {6}nr_kernel_file_pages \d+\n/);
    expect(skeleton(zoneinfo(fresh('v6.17')))).toBe(skeleton(SAMPLE_6_17));
  });

  it('keeps the layout after allocations and reports the zone state', () => {
    const m = used('v6.17');
    const text = zoneinfo(m);
    expect(skeleton(text)).toBe(skeleton(SAMPLE_6_17));
    const normal = m.mem.node.zones[ZONE.NORMAL];
    const block = text.slice(
      text.indexOf('Node 0, zone   Normal'),
      text.indexOf('Node 0, zone  Movable'),
    );
    expect(block).toContain(`\n  pages free     ${normal.nrFreePages}\n`);
    expect(block).toContain(`\n        min      ${normal.watermark[0]}\n`);
    expect(block).toContain(`\n        protection: (${normal.lowmemReserve.join(', ')})\n`);
    expect(block).toContain(`\n      nr_free_pages_blocks ${freePagesInBlocks(normal)}\n`);
    expect(block).toContain('\n  start_pfn:           1048576\n');
  });

  it('computes pagesets as the kernel does from the zone size (sample zones)', () => {
    // DMA32 and Normal of the sample: managed 772808 / 688128, low 11142 / 9921.
    const z = createMachine({ memory: '8G', contents: false }).mem.node.zones[ZONE.DMA32];
    z.managedPages = 772808;
    z.watermark[1] = 11142;
    expect(pagesetParams(z)).toEqual({
      batch: 63,
      highMin: 5571,
      highMax: 48300,
      statThreshold: 24,
    });
    z.managedPages = 3840;
    z.watermark[1] = 55;
    expect(pagesetParams(z)).toEqual({ batch: 1, highMin: 27, highMax: 240, statThreshold: 4 });
  });

  it('prints only the short form for unpopulated zones', () => {
    const m = createMachine({ memory: '64M', zones: 'normal-only', contents: false });
    const text = zoneinfo(m);
    const heads = lines(text).filter((l) => l.startsWith('Node 0, zone'));
    expect(heads).toEqual([
      'Node 0, zone      DMA',
      'Node 0, zone    DMA32',
      'Node 0, zone   Normal',
      'Node 0, zone  Movable',
      'Node 0, zone   Device',
    ]);
    // Node stats go under the first populated zone, here Normal.
    expect(text.indexOf('per-node stats')).toBeGreaterThan(text.indexOf('zone   Normal'));
    const dma = text.slice(0, text.indexOf('Node 0, zone    DMA32'));
    expect(dma.split('\n').at(-2)).toMatch(/^ {8}protection: \(\d+(, \d+){4}\)$/);
    expect(dma).not.toContain('pagesets');
  });
});

describe('/proc/zoneinfo pagesets and totalreserve_pages at watermark setup', () => {
  it('v6.17: pageset high is 0 (per_cpu_pages_init; pageset_update sets only batch, high_min, high_max)', () => {
    const text = zoneinfo(fresh('v6.17'));
    const highs = lines(text).filter((l) => /^ {14}high: /.test(l));
    expect(highs.length).toBeGreaterThan(0);
    for (const l of highs) expect(l).toBe('              high:     0');
    expect(text).toMatch(/\n {14}high_min: [1-9]\d*\n/);
    // The sample's DMA zone, never used by a per-CPU list, shows the same.
    expect(fixture('zoneinfo')).toContain(
      '              high:     0\n              batch:    1\n              high_min: 27\n',
    );
  });

  it('totalreserve_pages and the dirty thresholds do not count a watermark boost', () => {
    const m = fresh();
    const reserve = totalreservePages(m.mem);
    const dirty = dirtyThresholds(m.mem);
    m.mem.node.zones[ZONE.NORMAL].watermarkBoost = 5000;
    expect(totalreservePages(m.mem)).toBe(reserve);
    expect(dirtyThresholds(m.mem)).toEqual(dirty);
  });
});
