import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GFP } from '../../src/buddy/gfp.js';
import { MopsError } from '../../src/errors.js';
import { checkInvariants, createMachine, type Machine } from '../../src/machine.js';
import { MIGRATE, ZONE } from '../../src/memory/constants.js';
import { PG } from '../../src/page/flags.js';
import {
  buddyinfo,
  IMPORTED_OWNER,
  machineFromProc,
  pagetypeinfo,
  parsePagetypeinfo,
  parseZoneinfo,
  takeAllFree,
  vmstat,
  zoneinfo,
} from '../../src/proc/index.js';
import { PROFILE_NAMES, type ProfileName } from '../../src/profile.js';
import { buddyProblems, FIXTURES, fixture } from './helpers.js';

/** The free-count and block-count rows of a pagetypeinfo text. */
const ptiRows = (s: string) => s.split('\n').filter((l) => l.startsWith('Node'));

function texts(m: Machine) {
  return { buddyinfo: buddyinfo(m), pagetypeinfo: pagetypeinfo(m), zoneinfo: zoneinfo(m) };
}

/** Expects `fn` to throw MopsError E_PROC_PARSE whose message matches `re`. */
function parseError(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MopsError);
    expect((e as MopsError).code).toBe('E_PROC_PARSE');
    expect((e as MopsError).message).toMatch(re);
    return;
  }
  throw new Error('expected E_PROC_PARSE');
}

describe('machineFromProc on the Linux 6.18 sample', () => {
  const m = machineFromProc(FIXTURES);

  it('reproduces buddyinfo byte for byte', () => {
    expect(buddyinfo(m)).toBe(fixture('buddyinfo'));
  });

  it('reproduces pagetypeinfo: free-count rows, block-count rows, the whole file', () => {
    expect(ptiRows(pagetypeinfo(m))).toEqual(ptiRows(fixture('pagetypeinfo')));
    expect(pagetypeinfo(m)).toBe(fixture('pagetypeinfo'));
  });

  it('leaves a consistent buddy allocator: no mergeable buddies, lists match pageblocks', () => {
    expect(buddyProblems(m)).toEqual([]);
    expect(checkInvariants(m).violations).toEqual([]);
  });

  it('takes zone spans, managed pages and watermarks from zoneinfo', () => {
    const z = m.mem.node.zones;
    expect([
      z[ZONE.DMA].zoneStartPfn,
      z[ZONE.DMA32].zoneStartPfn,
      z[ZONE.NORMAL].zoneStartPfn,
    ]).toEqual([1, 4096, 1048576]);
    expect(z[ZONE.NORMAL].spannedPages).toBe(5505024);
    expect(z.map((x) => x.managedPages).slice(0, 3)).toEqual([3840, 772808, 688128]);
    // min_free_kbytes is recovered so every zone gets the sample's watermarks.
    expect(z.slice(0, 3).map((x) => x.watermark.join('/'))).toEqual([
      '44/55/66/77',
      '8914/11142/13370/15598',
      '7937/9921/11905/13889',
    ]);
    const zi = zoneinfo(m);
    expect(zi).toContain('protection: (0, 3018, 5706, 5706, 5706)');
    // v6.3 (the default profile) sets pcp->high itself; 6.7+ prints high_min and high_max.
    expect(zi).toContain('\n              high:  5571\n');
    const zi17 = zoneinfo(machineFromProc(FIXTURES, { profile: 'v6.17' }));
    expect(zi17).toContain('high_min: 5571\n');
    expect(zi17).toContain('high_max: 43008\n');
    // The Normal zone of the sample has only 1344 online pageblocks: mops's present pages.
    expect(z[ZONE.NORMAL].presentPages).toBe(1344 * 512);
  });

  it('marks the pages that were in use as allocated, and present-but-unmanaged ones reserved', () => {
    const p = m.mem.pages;
    const dma = m.mem.node.zones[ZONE.DMA];
    let reserved = 0;
    let imported = 0;
    const importedId = m.mem.owners.register(IMPORTED_OWNER);
    for (let pfn = dma.zoneStartPfn; pfn < dma.zoneStartPfn + dma.presentPages; pfn++) {
      if (p.flags[pfn] & (1 << PG.reserved)) reserved++;
      else if (p.refcount[pfn] === 1 && p.ownerOf(pfn) === importedId) imported++;
    }
    // DMA: 4095 present in mops, 3840 managed, 3840 free.
    expect(reserved).toBe(4095 - 3840);
    expect(imported).toBe(0);
    expect(dma.nrFreePages).toBe(3840);
  });

  it('copies the counters of vmstat and zoneinfo', () => {
    const v = vmstat(m);
    expect(v).toContain('\npgalloc_normal 19370788\n');
    expect(v).toContain('\nnr_slab_reclaimable 41062\n');
    expect(zoneinfo(m)).toContain('      numa_hit     17822530\n');
    const bare = machineFromProc(FIXTURES, { counters: false });
    expect(vmstat(bare)).toContain('\npgalloc_normal 0\n');
  });

  it("reads a 4.8 vmstat's workingset_refault and workingset_activate as the file counters", () => {
    const t = {
      buddyinfo: fixture('buddyinfo'),
      pagetypeinfo: fixture('pagetypeinfo'),
      vmstat: 'workingset_refault 31\nworkingset_activate 17\npgmigrate_success 5\n',
    };
    const n = machineFromProc(t);
    expect(n.mem.vmstat.get('workingset_refault_file')).toBe(31);
    expect(n.mem.vmstat.get('workingset_activate_file')).toBe(17);
    expect(n.mem.vmstat.get('workingset_refault_anon')).toBe(0);
    expect(n.mem.vmstat.get('pgmigrate_success')).toBe(5);
  });

  it('works from the texts, without zoneinfo (x86-64 zone layout)', () => {
    const t = { buddyinfo: fixture('buddyinfo'), pagetypeinfo: fixture('pagetypeinfo') };
    const n = machineFromProc(t);
    expect(buddyinfo(n)).toBe(t.buddyinfo);
    expect(pagetypeinfo(n)).toBe(t.pagetypeinfo);
    expect(buddyProblems(n)).toEqual([]);
    expect(n.mem.node.zones[ZONE.DMA].zoneStartPfn).toBe(1);
    expect(n.mem.node.zones[ZONE.DMA32].zoneStartPfn).toBe(4096);
    expect(n.mem.node.zones[ZONE.NORMAL].zoneStartPfn).toBe(1 << 20);
    expect(checkInvariants(n).violations).toEqual([]);
  });

  const shared = new URL('../../../../../shared/reference/proc-samples/', import.meta.url);
  // The fixtures are copies of the reference samples kept beside the checkout; the check
  // runs only where that directory exists (tests never need it).
  it.skipIf(!existsSync(shared))('the fixtures are the reference samples', () => {
    for (const f of ['buddyinfo', 'pagetypeinfo', 'vmstat', 'zoneinfo'])
      expect(fixture(f)).toBe(readFileSync(new URL(f, shared), 'utf8'));
  });
});

describe('machineFromProc round trips a mops machine', () => {
  function fragmented(): Machine {
    const m = createMachine({ memory: '512M', contents: false, seed: 7 });
    const held: [number, number][] = [];
    const gfps = [GFP.KERNEL, GFP.KERNEL_RECLAIMABLE, GFP.HIGHUSER_MOVABLE, GFP.HIGHUSER_MOVABLE];
    for (let i = 0; i < 20000; i++) {
      const order = m.prng.below(4);
      const pfn = m.allocPages(gfps[i % 4], order);
      if (pfn >= 0) held.push([pfn, order]);
    }
    for (let i = 0; i < held.length; i++)
      if (m.prng.below(3) === 0) m.freePages(held[i][0], held[i][1]);
    return m;
  }

  it('gives the same buddyinfo, pagetypeinfo and zoneinfo', () => {
    const orig = fragmented();
    const t = texts(orig);
    const copy = machineFromProc(t);
    expect(buddyinfo(copy)).toBe(t.buddyinfo);
    expect(pagetypeinfo(copy)).toBe(t.pagetypeinfo);
    expect(zoneinfo(copy)).toBe(t.zoneinfo);
    expect(buddyProblems(copy)).toEqual([]);
    expect(checkInvariants(copy).violations).toEqual([]);
    expect(copy.minFreeKbytes).toBe(orig.minFreeKbytes);
  });

  it('the rebuilt machine allocates and frees like any other', () => {
    const copy = machineFromProc(texts(fragmented()));
    const before = copy.mem.node.zones.map((z) => z.nrFreePages);
    const pfns = [0, 1, 2, 3].map((o) => copy.allocPages(GFP.HIGHUSER_MOVABLE, o));
    expect(pfns.every((p) => p >= 0)).toBe(true);
    for (const [o, p] of pfns.entries()) copy.freePages(p, o);
    expect(copy.mem.node.zones.map((z) => z.nrFreePages)).toEqual(before);
    expect(buddyProblems(copy)).toEqual([]);
  });

  it('resolves >100000 from buddyinfo and prints it back the same way', () => {
    const m = createMachine({ memory: '1G', zones: 'normal-only', contents: false });
    const pfns: number[] = [];
    for (
      let pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      pfn >= 0;
      pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0)
    )
      pfns.push(pfn);
    pfns.sort((a, b) => a - b);
    for (let i = 0; i < pfns.length; i += 2) m.putPage(pfns[i]);
    const t = texts(m);
    expect(t.pagetypeinfo).toContain('>100000');
    const copy = machineFromProc(t);
    expect(buddyinfo(copy)).toBe(t.buddyinfo);
    expect(pagetypeinfo(copy)).toBe(t.pagetypeinfo);
    const z = copy.mem.node.zones[ZONE.NORMAL];
    expect(z.freeCount(0, MIGRATE.MOVABLE)).toBe(
      m.mem.node.zones[ZONE.NORMAL].freeCount(0, MIGRATE.MOVABLE),
    );
    expect(buddyProblems(copy)).toEqual([]);
  });
});

describe('takeAllFree', () => {
  it('empties the buddy allocator and marks every page allocated by the owner', () => {
    const m = createMachine({ memory: '64M', contents: false });
    const free = m.mem.populatedZones.reduce((s, z) => s + z.nrFreePages, 0);
    expect(takeAllFree(m, 'test')).toBe(free);
    expect(
      m.mem.populatedZones.every((z) => z.nrFreePages === 0 && z.nrFree.every((n) => n === 0)),
    ).toBe(true);
    const id = m.mem.owners.register('test');
    expect(m.mem.pages.refcount[100]).toBe(1);
    expect(m.mem.pages.ownerOf(100)).toBe(id);
    expect(m.allocPages(GFP.KERNEL, 0)).toBe(-1);
    m.putPage(100);
    expect(m.mem.node.zones[ZONE.DMA].nrFreePages).toBe(1);
  });
});

describe('machineFromProc errors (E_PROC_PARSE naming the file and line)', () => {
  const b = fixture('buddyinfo');
  const p = fixture('pagetypeinfo');

  it('a malformed buddyinfo line', () => {
    parseError(
      () => machineFromProc({ buddyinfo: `${b}garbage\n`, pagetypeinfo: p }),
      /^buddyinfo line 4: /,
    );
    parseError(
      () => machineFromProc({ buddyinfo: b.replace('   752 ', ''), pagetypeinfo: p }),
      /buddyinfo line 2: expected 11 free counts/,
    );
  });

  it('a second node, an unknown zone, another pageblock order', () => {
    parseError(
      () =>
        machineFromProc({
          buddyinfo: b.replace('Node 0, zone   Normal', 'Node 1, zone   Normal'),
          pagetypeinfo: p,
        }),
      /buddyinfo line 3: node 1: mops emulates a single node/,
    );
    parseError(
      () => machineFromProc({ buddyinfo: b.replace('   Normal', '  HighMem'), pagetypeinfo: p }),
      /buddyinfo line 3: unknown zone 'HighMem'/,
    );
    parseError(
      () =>
        machineFromProc({
          buddyinfo: b,
          pagetypeinfo: p.replace('Page block order: 9', 'Page block order: 10'),
        }),
      /pagetypeinfo line 1: page block order 10/,
    );
  });

  it('an unknown migrate type and a bad count', () => {
    parseError(
      () =>
        machineFromProc({
          buddyinfo: b,
          pagetypeinfo: p.replace('type  Reclaimable', 'type    Reclaimed'),
        }),
      /pagetypeinfo line 7: unknown migrate type 'Reclaimed'/,
    );
    parseError(
      () =>
        machineFromProc({
          buddyinfo: b,
          pagetypeinfo: p.replace(
            'Node 0, zone   Normal           62',
            'Node 0, zone   Normal           6x',
          ),
        }),
      /pagetypeinfo line 24: unexpected line/,
    );
  });

  it('files that disagree', () => {
    parseError(
      () => machineFromProc({ buddyinfo: b.replace('  2758 ', '  2757 '), pagetypeinfo: p }),
      /zone Normal order 0: 2757 free blocks, but pagetypeinfo's types add up to 2758/,
    );
  });

  it('counts that cannot be laid out', () => {
    // Three order-10 DMA blocks need six Movable pageblocks; give Movable only five.
    const tooFew = p.replace(
      'Node 0, zone      DMA            1            7',
      'Node 0, zone      DMA            3            5',
    );
    parseError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: tooFew }),
      /zone DMA: 5 Movable pageblocks cannot hold 3 free order-10/,
    );
    // 200 free order-0 Unmovable pages beside the order-8 block need two pageblocks.
    const crowded = p.replace(
      'zone      DMA, type    Unmovable      0',
      'zone      DMA, type    Unmovable    200',
    );
    const crowdedBuddy = b.replace('zone      DMA      0', 'zone      DMA    200');
    parseError(
      () => machineFromProc({ buddyinfo: crowdedBuddy, pagetypeinfo: crowded }),
      /zone DMA: 72 of the 200 free order-0 Unmovable blocks do not fit in its 1 pageblocks/,
    );
    // With zoneinfo, DMA manages 3840 pages, all already free.
    parseError(
      () =>
        machineFromProc({
          buddyinfo: crowdedBuddy,
          pagetypeinfo: crowded,
          zoneinfo: fixture('zoneinfo'),
        }),
      /zoneinfo line 62: zone DMA: 4040 free pages do not fit in 3840 managed pages/,
    );
  });

  it('a directory without the required files', () => {
    parseError(
      () => machineFromProc(new URL('./no-such-dir/', FIXTURES)),
      /buddyinfo: no such file/,
    );
  });
});

/** The sample's pagetypeinfo as a kernel with CONFIG_CMA prints it: a CMA row and column. */
function withCmaColumn(p: string): string {
  return p
    .split('\n')
    .map((l) => {
      const row = /^(Node {4}0, zone +\S+, type) +HighAtomic /.exec(l);
      if (row) return `${l}\n${row[1]} ${'CMA'.padStart(12)} ${'     0 '.repeat(11)}`;
      if (l.startsWith('Number of blocks type'))
        return l.replace('      Isolate ', '          CMA      Isolate ');
      // Block counts are %12lu columns: the CMA column goes before the last one.
      if (/^Node 0, zone +\S+ /.test(l))
        return `${l.slice(0, -13)}${'0'.padStart(12)} ${l.slice(-13)}`;
      return l;
    })
    .join('\n');
}

/** The sample's pagetypeinfo as a kernel without CONFIG_MEMORY_ISOLATION prints it. */
function withoutIsolate(p: string): string {
  return p
    .split('\n')
    .filter((l) => !/, type +Isolate /.test(l))
    .map((l) => {
      if (l.startsWith('Number of blocks type')) return l.slice(0, -13);
      if (/^Node 0, zone +\S+ /.test(l)) return l.slice(0, -13);
      return l;
    })
    .join('\n');
}

describe('machineFromProc: zoneinfo min watermarks and the ZONE_MOVABLE rule', () => {
  for (const profile of PROFILE_NAMES)
    it(`${profile}: a populated Movable zone round-trips min_free_kbytes and every watermark`, () => {
      const orig = createMachine({
        memory: '640M',
        contents: false,
        profile,
        zones: [
          { idx: ZONE.DMA, startPfn: 1, spanned: 4095, present: 4095 },
          { idx: ZONE.DMA32, startPfn: 4096, spanned: 61440, present: 61440 },
          { idx: ZONE.NORMAL, startPfn: 65536, spanned: 65536, present: 65536 },
          { idx: ZONE.MOVABLE, startPfn: 131072, spanned: 32768, present: 32768 },
        ],
      });
      for (let i = 0; i < 3000; i++) orig.allocPages(GFP.HIGHUSER_MOVABLE, i % 3);
      const t = texts(orig);
      const copy = machineFromProc(t, { profile });
      expect(copy.mem.node.zones.map((z) => z.watermark.join('/'))).toEqual(
        orig.mem.node.zones.map((z) => z.watermark.join('/')),
      );
      // min_free_kbytes is recovered as the smallest value giving these watermarks.
      expect(copy.minFreeKbytes).toBeLessThanOrEqual(orig.minFreeKbytes);
      expect(zoneinfo(copy)).toBe(t.zoneinfo);
    });
});

describe('machineFromProc: MIGRATE_ISOLATE free pages are not in NR_FREE_PAGES', () => {
  it("an Isolate pageblock's free block is listed but not counted", () => {
    // One of the DMA's Movable pageblocks, with its free order-9 block, becomes Isolate.
    const p = fixture('pagetypeinfo')
      .replace(
        'zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      1      3',
        'zone      DMA, type      Movable      0      0      0      0      0      0      0      0      0      0      3',
      )
      .replace(
        'zone      DMA, type      Isolate      0      0      0      0      0      0      0      0      0      0      0',
        'zone      DMA, type      Isolate      0      0      0      0      0      0      0      0      0      1      0',
      )
      .replace(
        'Node 0, zone      DMA            1            7            0            0            0',
        'Node 0, zone      DMA            1            6            0            0            1',
      );
    const m = machineFromProc({ buddyinfo: fixture('buddyinfo'), pagetypeinfo: p });
    expect(pagetypeinfo(m)).toBe(p);
    expect(buddyinfo(m)).toBe(fixture('buddyinfo'));
    const dma = m.mem.node.zones[ZONE.DMA];
    expect(dma.nrFreePages).toBe(3840 - 512);
    expect(zoneinfo(m)).toContain('Node 0, zone      DMA\n  per-node stats');
    expect(zoneinfo(m)).toContain('\n  pages free     3328\n');
    expect(zoneinfo(m)).toContain('\n      nr_free_pages 3328\n');
    expect(buddyProblems(m)).toEqual([]);
    expect(checkInvariants(m).violations).toEqual([]);
  });
});

describe('machineFromProc: mops has no CMA', () => {
  const b = fixture('buddyinfo');
  const cma = withCmaColumn(fixture('pagetypeinfo'));

  it('free CMA blocks or CMA pageblocks are rejected, naming the line', () => {
    const freeCma = cma.replace(/(zone {4}DMA32, type {10}CMA(?: {6}0){10}) {6}0/, '$1      4');
    expect(freeCma).not.toBe(cma);
    parseError(
      () => parsePagetypeinfo(freeCma),
      /^pagetypeinfo line 15: zone DMA32 has free CMA blocks; mops has no CMA/,
    );
    const cmaBlocks = cma.replace(
      'Node 0, zone    DMA32            0         1528            0            0            0',
      'Node 0, zone    DMA32            0         1520            0            0            8',
    );
    expect(cmaBlocks).not.toBe(cma);
    parseError(
      () => parsePagetypeinfo(cmaBlocks),
      /^pagetypeinfo line 26: zone DMA32 has 8 CMA pageblocks; mops has no CMA/,
    );
  });

  it("zoneinfo's cma and nr_free_cma other than 0 are rejected, naming the line", () => {
    const zi = fixture('zoneinfo');
    parseError(
      () =>
        parseZoneinfo(
          zi.replace(
            'managed  772808\n        cma      0',
            'managed  772808\n        cma      4096',
          ),
        ),
      /^zoneinfo line 109: zone DMA32 has 4096 CMA pages; mops has no CMA/,
    );
    parseError(
      () => parseZoneinfo(zi.replace(/nr_free_cma {2}0/, 'nr_free_cma  12')),
      /^zoneinfo line 75: zone DMA has 12 free CMA pages; mops has no CMA/,
    );
  });

  it('zoneinfo prints cma 0 and nr_free_cma 0', () => {
    const m = machineFromProc({ buddyinfo: b, pagetypeinfo: cma, zoneinfo: fixture('zoneinfo') });
    const zi = zoneinfo(m);
    expect(zi.match(/\n {8}cma {6}0\n/g)?.length).toBe(5);
    expect(zi.match(/\n {6}nr_free_cma {2}0\n/g)?.length).toBe(3);
  });
});

describe('machineFromProc: pagetypeinfo prints back the column set it was given', () => {
  const b = fixture('buddyinfo');

  it('an all-zero CMA column (CONFIG_CMA) stays', () => {
    const p = withCmaColumn(fixture('pagetypeinfo'));
    expect(p).toContain('   HighAtomic          CMA      Isolate \n');
    expect(pagetypeinfo(machineFromProc({ buddyinfo: b, pagetypeinfo: p }))).toBe(p);
  });

  it('no Isolate column (no CONFIG_MEMORY_ISOLATION) stays without it', () => {
    const p = withoutIsolate(fixture('pagetypeinfo'));
    expect(p).not.toContain('Isolate');
    expect(pagetypeinfo(machineFromProc({ buddyinfo: b, pagetypeinfo: p }))).toBe(p);
  });

  it('a machine mops built keeps its columns (Isolate, CMA only with CMA memory)', () => {
    const m = createMachine({ memory: '64M', contents: false });
    expect(m.mem.procMigratetypes).toBeUndefined();
    expect(pagetypeinfo(m)).toContain('   HighAtomic      Isolate \n');
  });
});

describe('machineFromProc: free order-9 blocks of types that never merge', () => {
  /** A 4 MiB machine whose two pageblocks hold free order-9 blocks of Movable and `mt`. */
  function twoBlocks(profile: ProfileName, mt: number): Machine {
    const m = createMachine({
      memory: '4M',
      zones: 'normal-only',
      contents: false,
      profile,
      minFreeKbytes: 0,
    });
    const a = m.allocPages(GFP.HIGHUSER_MOVABLE, 9);
    const c = m.allocPages(GFP.HIGHUSER_MOVABLE, 9);
    m.mem.setPageblockMigratetype(c, mt);
    m.freePages(a, 9);
    m.freePages(c, 9);
    expect(m.mem.node.zones[ZONE.NORMAL].nrFree[9]).toBe(2);
    return m;
  }

  for (const profile of ['v6.3', 'v6.17'] as const)
    it(`${profile}: Movable beside HighAtomic is rebuilt as it was`, () => {
      const t = texts(twoBlocks(profile, MIGRATE.HIGHATOMIC));
      const copy = machineFromProc(t, { profile });
      expect(pagetypeinfo(copy)).toBe(t.pagetypeinfo);
      expect(buddyinfo(copy)).toBe(t.buddyinfo);
      expect(buddyProblems(copy)).toEqual([]);
      expect(checkInvariants(copy).violations).toEqual([]);
    });

  it('v4.8: Movable beside Isolate is rebuilt; beside HighAtomic it would have merged', () => {
    const t = texts(twoBlocks('v4.8', MIGRATE.ISOLATE));
    const copy = machineFromProc(t, { profile: 'v4.8' });
    expect(pagetypeinfo(copy)).toBe(t.pagetypeinfo);
    expect(buddyProblems(copy)).toEqual([]);
    const h = texts(twoBlocks('v6.3', MIGRATE.HIGHATOMIC));
    parseError(
      () => machineFromProc(h, { profile: 'v4.8' }),
      /zone Normal: 2 free order-9 blocks need whole pageblocks whose buddy pageblock holds no free order-9 block they would merge with; its 2 whole pageblocks left \(after the order-10 blocks\) hold at most 1 of them/,
    );
  });
});

describe('machineFromProc: zoneinfo lines are checked', () => {
  const zi = fixture('zoneinfo');

  it('a line that is not a kernel line, or a malformed value, is an error naming the line', () => {
    parseError(
      () =>
        parseZoneinfo(
          zi.replace('  pages free     3840\n', '  pages free     3840\nthis is garbage\n'),
        ),
      /^zoneinfo line 55: .*found 'this is garbage'/,
    );
    parseError(
      () => parseZoneinfo(zi.replace('managed  772808', 'managed  77x808')),
      /^zoneinfo line 108: .*found 'managed {2}77x808'/,
    );
    parseError(
      () => parseZoneinfo(zi.replace('start_pfn:           4096', 'start_pfn:           4O96')),
      /^zoneinfo line 144: /,
    );
    parseError(
      () => parseZoneinfo(zi.replace('protection: (0, 0, 2688', 'protection: (0, 0; 2688')),
      /^zoneinfo line 110: /,
    );
  });

  it('accepts a 4.8 layout: node_scanned, old pagesets, node_inactive_ratio, populated zones only', () => {
    const z48 = zi
      .split(/(?=^Node 0, zone)/m)
      .filter((s) => !/zone\s+(Movable|Device)/.test(s))
      .map((s) => {
        let t = s
          .replace(/\n {8}boost.*$/m, '')
          .replace(/\n {8}promo.*$/m, '')
          .replace(/\n {8}cma .*$/m, '')
          .replace(/(\n {8}high .*)/, '$1\n   node_scanned  0')
          .replace(/protection: \((.*), \d+\)/, 'protection: ($1)')
          .replace(/ +high_(min|max): .*\n/g, '')
          .replace(/count: {4}/g, 'count: ')
          .replace(/high: {5}/g, 'high:  ')
          .replace(/batch: {4}/g, 'batch: ')
          .replace(/(start_pfn: .*)/, '$1\n  node_inactive_ratio: 0');
        // 4.8 prints protection after the zone stats.
        const prot = /\n {8}protection: .*/.exec(t)![0];
        t = t.replace(prot, '').replace('\n  pagesets', `${prot}\n  pagesets`);
        return t;
      })
      .join('');
    expect(z48).toContain('node_scanned');
    const parsed = parseZoneinfo(z48);
    expect(parsed.zones.get(ZONE.DMA32)).toMatchObject({
      startPfn: 4096,
      spanned: 1044480,
      managed: 772808,
      min: 8914,
    });
    const m = machineFromProc(
      { buddyinfo: fixture('buddyinfo'), pagetypeinfo: fixture('pagetypeinfo'), zoneinfo: z48 },
      { profile: 'v4.8' },
    );
    expect(m.mem.node.zones[ZONE.NORMAL].watermark.join('/')).toBe('7937/9921/11905/13889');
  });

  it('accepts CRLF line ends in all four files', () => {
    const crlf = (s: string) => s.replace(/\n/g, '\r\n');
    const f = ['buddyinfo', 'pagetypeinfo', 'zoneinfo', 'vmstat'] as const;
    const lf = Object.fromEntries(f.map((n) => [n, fixture(n)]));
    const m = machineFromProc(Object.fromEntries(f.map((n) => [n, crlf(fixture(n))])) as never);
    const n = machineFromProc(lf as never);
    for (const v of [buddyinfo, pagetypeinfo, zoneinfo, vmstat]) expect(v(m)).toBe(v(n));
  });
});

describe('machineFromProc options', () => {
  it('contents: the rebuilt machine can hold page contents (default: metadata only)', () => {
    const orig = createMachine({ memory: '64M', contents: false });
    const t = texts(orig);
    expect(machineFromProc(t).mem.pages.contents).toBeUndefined();
    const m = machineFromProc(t, { contents: true });
    expect(m.mem.pages.contents?.length).toBe(m.mem.nrPages * 4096);
  });
});
