import { describe, expect, it } from 'vitest';
import { canSteal, moveFreepagesBlock } from '../../src/buddy/rmqueue.js';
import {
  __GFP,
  ALLOC,
  allocPages,
  checkInvariants,
  createMachine,
  firstFree,
  GFP,
  MIGRATE,
  PG,
  pageIsBuddy,
  traceRecorder,
  ZONE,
  zoneWatermarkOk,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, nrFree, smallMachine, topZone } from '../helpers.js';

describe('buddy allocator: split and merge (mm/page_alloc.c expand, __free_one_page)', () => {
  it('splits an order-10 block down to order 0, leaving one free block per order', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    expect(nrFree(z)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(pfn).toBe(0);
    expect(nrFree(z)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    // expand() frees the upper halves: 512 at order 9, 256 at order 8, …, 1 at order 0.
    for (let o = 0; o <= 9; o++) expect(pageIsBuddy(m.mem, 1 << o, o)).toBe(true);
    expect(z.nrFreePages).toBe(1023);
    expect(m.mem.pages.refcount[0]).toBe(1);
    expectInvariants(m);
  });

  it('merges a freed page with its free buddies back into one order-10 block', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    m.putPage(pfn);
    expect(nrFree(z)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(z.nrFreePages).toBe(1024);
    expectInvariants(m);
  });

  it('does not merge while the buddy is allocated, and merges when it is freed', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    const a = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    const b = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(b).toBe(a ^ 1);
    m.putPage(a);
    expect(pageIsBuddy(m.mem, a, 0)).toBe(true);
    expect(z.nrFree[10]).toBe(0);
    m.putPage(b);
    expect(z.nrFree[10]).toBe(1);
    expectInvariants(m);
  });

  it('allocates compound pages with __GFP_COMP: head, tails with refcount 0, freed whole', () => {
    const m = smallMachine('4M');
    const h = m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2);
    const p = m.mem.pages;
    expect(p.flags[h] & (1 << PG.head)).not.toBe(0);
    for (let i = 1; i < 4; i++) {
      expect(p.compound[h + i]).toBe(-i);
      expect(p.refcount[h + i]).toBe(0);
    }
    expectInvariants(m);
    m.putPage(h + 2); // put_page on a tail drops the head's reference
    expect(topZone(m).nrFree[10]).toBe(1);
    expectInvariants(m);
  });

  it('frees a non-compound high-order block with __free_pages, also while a reference remains on the first page', () => {
    const m = smallMachine('4M');
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 3);
    m.mem.pages.refcount[pfn]++; // a speculative reference taken by a walker
    m.freePages(pfn, 3);
    // The tail part is freed at once; the first page waits for the last reference.
    expect(topZone(m).nrFreePages).toBe(1024 - 1);
    m.putPage(pfn);
    expect(topZone(m).nrFreePages).toBe(1024);
    expectInvariants(m);
  });

  it('puts a freed block at the tail of its list when the next-order buddy is free (buddy_merge_likely)', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    // Take pages 0..3 (order 2), then free 2 and 3: block {2,3} at order 1; its order-2
    // buddy {0,1} is allocated, so no merge is likely and it goes to the head.
    const base = m.allocPages(GFP.HIGHUSER_MOVABLE, 2);
    expect(base).toBe(0);
    const first = firstFree(m.mem, z, 2, MIGRATE.MOVABLE);
    expect(first).toBe(4);
    expectInvariants(m);
  });
});

describe('buddy allocator: fallback and pageblock stealing (compaction-by-profile T16)', () => {
  it('v6.3: an unmovable request in an all-movable zone takes a whole order-10 block and converts both pageblocks', () => {
    const m = smallMachine('8M');
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(pfn).toBeGreaterThanOrEqual(0);
    const mt = m.mem.pageblockMigratetype(pfn);
    expect(mt).toBe(MIGRATE.UNMOVABLE);
    expect(m.mem.pageblockMigratetype(pfn ^ 512)).toBe(MIGRATE.UNMOVABLE);
    // The other order-10 block stays movable.
    const other = pfn < 1024 ? 1024 : 0;
    expect(m.mem.pageblockMigratetype(other)).toBe(MIGRATE.MOVABLE);
    expectInvariants(m);
  });

  /** Fills an 8 MiB machine with movable pages, then frees `nfree` pages of pageblock 2. */
  function fragmented(profile: 'v4.8' | 'v6.3' | 'v6.17', nfree: number, lru: boolean) {
    const m = smallMachine('8M', { profile });
    const pfns: number[] = [];
    for (;;) {
      const p = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
      if (p < 0) break;
      pfns.push(p);
      if (lru) m.mem.pages.flags[p] |= 1 << PG.lru;
    }
    expect(pfns.length).toBe(2048);
    for (let i = 0; i < nfree; i++) {
      const p = 1024 + i;
      m.mem.pages.flags[p] &= ~(1 << PG.lru);
      m.putPage(p);
    }
    return m;
  }

  it('v6.3: claims a movable block for an unmovable request when free + alike pages reach half a block', () => {
    const m = fragmented('v6.3', 300, false);
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(pfn >> 9).toBe(2);
    expect(m.mem.pageblockMigratetype(1024)).toBe(MIGRATE.UNMOVABLE);
    expectInvariants(m);
  });

  it('v6.3: takes the free pages but leaves the block movable when most of it holds LRU pages', () => {
    const m = fragmented('v6.3', 100, true);
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(pfn >> 9).toBe(2);
    expect(m.mem.pageblockMigratetype(1024)).toBe(MIGRATE.MOVABLE);
    // The remaining free pages of the block moved to the unmovable lists.
    const z = topZone(m);
    let unmovable = 0;
    for (let o = 0; o <= 10; o++) unmovable += z.freeCount(o, MIGRATE.UNMOVABLE) << o;
    expect(unmovable).toBe(99);
    expectInvariants(m);
  });

  it('v4.8: claims by free pages alone (≥ 256), ignoring alike pages', () => {
    const a = fragmented('v4.8', 200, false);
    a.allocPages(GFP.KERNEL, 0);
    expect(a.mem.pageblockMigratetype(1024)).toBe(MIGRATE.MOVABLE);
    const b = fragmented('v4.8', 300, true);
    b.allocPages(GFP.KERNEL, 0);
    expect(b.mem.pageblockMigratetype(1024)).toBe(MIGRATE.UNMOVABLE);
    expectInvariants(a);
    expectInvariants(b);
  });

  it('v6.17: when a block cannot be claimed, steals one page and leaves the rest on the movable lists', () => {
    const m = fragmented('v6.17', 100, true);
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(pfn >> 9).toBe(2);
    expect(m.mem.pageblockMigratetype(1024)).toBe(MIGRATE.MOVABLE);
    const z = topZone(m);
    let movable = 0;
    for (let o = 0; o <= 10; o++) movable += z.freeCount(o, MIGRATE.MOVABLE) << o;
    expect(movable).toBe(99);
    expectInvariants(m);
  });

  it('v6.17: under ALLOC_NOFRAGMENT nothing is stolen; the retry without it claims a block first', () => {
    // Every page a driver page but the last 256 (one free order-8 block) and the odd pages
    // of block 0: an unmovable request in the Normal zone.
    const m = createMachine({
      memory: '8M',
      zones: 'normal-only',
      minFreeKbytes: 0,
      profile: 'v6.17',
    });
    const drv = new TestDriver(m);
    const pages = drv.alloc(m.nrPages - 256);
    for (const p of pages) if (p < 512 && p % 2) m.run(() => drv.freeOwned(p));
    const rec = traceRecorder(m, { events: ['mm_page_alloc_extfrag'] });
    const pfn = m.allocPages(GFP.KERNEL, 0);
    rec.stop();
    // Stealing (smallest first) would take an odd page of block 0; the claim takes the order-8
    // block and converts its pageblock.
    expect(pfn).toBeGreaterThanOrEqual(1792);
    expect(m.mem.pageblockMigratetype(1536)).toBe(MIGRATE.UNMOVABLE);
    expect(rec.lines).toEqual([expect.stringMatching(/fallback_order=8 .*change_ownership=1/)]);
    expectInvariants(m);
  });

  it('can_steal_fallback: a movable request may steal from order pageblock_order / 2 = 4 (integer division)', () => {
    expect(canSteal(3, MIGRATE.MOVABLE)).toBe(false);
    expect(canSteal(4, MIGRATE.MOVABLE)).toBe(true);
    expect(canSteal(0, MIGRATE.UNMOVABLE)).toBe(true);
    expect(canSteal(0, MIGRATE.RECLAIMABLE)).toBe(true);
  });

  it('a movable request falls back to reclaimable before unmovable', () => {
    const m = smallMachine('8M');
    const u = m.allocPages(GFP.KERNEL, 0); // converts block pair 0 or 1 to unmovable
    const r = m.allocPages(GFP.KERNEL_RECLAIMABLE, 0); // takes the other pair as reclaimable
    expect(m.mem.pageblockMigratetype(u)).toBe(MIGRATE.UNMOVABLE);
    expect(m.mem.pageblockMigratetype(r)).toBe(MIGRATE.RECLAIMABLE);
    // No movable pages left: a movable order-0 request must use the reclaimable block.
    const mv = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(m.mem.pageblockMigratetype(mv) === MIGRATE.RECLAIMABLE || mv >> 10 === r >> 10).toBe(
      true,
    );
    expectInvariants(m);
  });
});

describe('watermarks (compaction-by-profile T17)', () => {
  it('computes min_free_kbytes, min/low/high/promo and lowmem_reserve as the kernel does', () => {
    const m = createMachine({ memory: '8G', contents: false });
    const zones = m.mem.node.zones;
    const managed = zones.reduce((s, z) => s + z.managedPages, 0);
    expect(m.minFreeKbytes).toBe(Math.floor(Math.sqrt(managed * 4 * 16)));
    const pagesMin = m.minFreeKbytes >> 2;
    for (const z of m.mem.populatedZones) {
      const min = Math.floor((pagesMin * z.managedPages) / managed);
      const gap = Math.max(min >> 2, Math.floor((z.managedPages * 10) / 10000));
      expect(z.watermark).toEqual([min, min + gap, min + 2 * gap, min + 3 * gap]);
    }
    // lowmem_reserve: DMA against DMA32 = DMA32 managed / 256; DMA32 against Normal = Normal / 256.
    expect(zones[0].lowmemReserve[1]).toBe(Math.floor(zones[1].managedPages / 256));
    expect(zones[0].lowmemReserve[2]).toBe(
      Math.floor((zones[1].managedPages + zones[2].managedPages) / 256),
    );
    expect(zones[1].lowmemReserve[2]).toBe(Math.floor(zones[2].managedPages / 256));
    expect(zones[2].lowmemReserve).toEqual([0, 0, 0, 0, 0]);
  });

  it.each(['v4.8', 'v6.3', 'v6.17'] as const)(
    'ZONE_MOVABLE shares min_free_kbytes before v6.17 and gets the highmem rule in it — %s',
    (profile) => {
      const m = createMachine({
        memory: '64M',
        contents: false,
        profile,
        minFreeKbytes: 4096,
        zones: [
          { idx: ZONE.NORMAL, startPfn: 0, spanned: 8192, present: 8192 },
          { idx: ZONE.MOVABLE, startPfn: 8192, spanned: 8192, present: 8192 },
        ],
      });
      const [normal, movable] = m.mem.populatedZones;
      expect(movable.idx).toBe(ZONE.MOVABLE);
      const mins = [normal.watermark[0], movable.watermark[0]];
      // 4096 kB = 1024 pages, split by managed pages; v6.17: Normal takes them all, Movable
      // gets managed / 1024 clamped to [32, 128].
      if (profile === 'v6.17') expect(mins).toEqual([1024, 32]);
      else
        expect(mins).toEqual([
          Math.floor((1024 * normal.managedPages) / (normal.managedPages + movable.managedPages)),
          Math.floor((1024 * movable.managedPages) / (normal.managedPages + movable.managedPages)),
        ]);
    },
  );

  it('page_zone: every pfn maps to the highest zone starting at or below it, boundaries unaligned too', () => {
    const m = createMachine({
      memory: '16M',
      contents: false,
      zones: [
        { idx: ZONE.DMA, startPfn: 0, spanned: 1000, present: 1000 },
        { idx: ZONE.NORMAL, startPfn: 1000, spanned: 2001, present: 2001 },
        { idx: ZONE.MOVABLE, startPfn: 3001, spanned: 1095, present: 1095 },
      ],
    });
    const [dma, normal, movable] = m.mem.populatedZones;
    const expected = (pfn: number) => (pfn >= 3001 ? movable : pfn >= 1000 ? normal : dma);
    for (let pfn = 0; pfn < m.nrPages; pfn++)
      if (m.mem.zoneOf(pfn) !== expected(pfn)) expect.fail(`pfn ${pfn}`);
    // Aligned layouts use one entry per pageblock.
    const x86 = createMachine({ memory: '64M', contents: false });
    for (const z of x86.mem.populatedZones) {
      expect(x86.mem.zoneOf(z.zoneStartPfn)).toBe(z);
      expect(x86.mem.zoneOf(z.zoneStartPfn + z.spannedPages - 1)).toBe(z);
    }
  });

  it('zone_watermark_ok: order-0 needs free pages above the mark, higher orders a free block', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    expect(zoneWatermarkOk(z, 0, 1023, 2, 0)).toBe(true);
    expect(zoneWatermarkOk(z, 0, 1024, 2, 0)).toBe(false);
    expect(zoneWatermarkOk(z, 10, 0, 2, 0)).toBe(true);
    m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(zoneWatermarkOk(z, 10, 0, 2, 0)).toBe(false);
    expect(zoneWatermarkOk(z, 9, 0, 2, 0)).toBe(true);
    // ALLOC_MIN_RESERVE halves the mark.
    expect(zoneWatermarkOk(z, 0, 1500, 2, ALLOC.MIN_RESERVE)).toBe(true);
  });

  it('a normal request stops at the min watermark; __GFP_HIGH digs deeper', () => {
    const m = createMachine({ memory: '16M', zones: 'normal-only' });
    const z = topZone(m);
    const min = z.watermark[0];
    let n = 0;
    while (m.allocPages(GFP.KERNEL, 0) >= 0) n++;
    // The slow path allocates while free pages stay above min: it stops at exactly min.
    expect(z.nrFreePages).toBe(min);
    expect(m.mem.allocFailures).toBe(1);
    let atomic = 0;
    while (m.allocPages(GFP.ATOMIC, 0) >= 0) atomic++;
    expect(atomic).toBeGreaterThan(0);
    expect(z.nrFreePages).toBeLessThan(min);
    expect(n).toBeGreaterThan(0);
    expectInvariants(m);
  });

  it('an allocation falls back to a lower zone when the preferred one is below its watermark', () => {
    const m = createMachine({ memory: '64M' });
    const [dma, dma32] = m.mem.populatedZones;
    while (dma32.nrFreePages > dma32.watermark[1]) allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    const before = dma.nrFreePages;
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(pfn).toBeGreaterThanOrEqual(dma.zoneStartPfn);
    expect(pfn).toBeLessThan(dma.zoneEndPfn);
    expect(dma.nrFreePages).toBe(before - 1);
    expectInvariants(m);
  });
});

describe('random churn keeps every buddy invariant', () => {
  it('500 seeded alloc/free operations of mixed orders and types', () => {
    const m = smallMachine('16M');
    const live: [number, number][] = [];
    const gfps = [GFP.KERNEL, GFP.HIGHUSER_MOVABLE, GFP.KERNEL_RECLAIMABLE];
    for (let i = 0; i < 500; i++) {
      if (live.length && m.prng.below(3) === 0) {
        const [pfn, order] = live.splice(m.prng.below(live.length), 1)[0];
        m.freePages(pfn, order);
      } else {
        const order = m.prng.below(4);
        const pfn = m.allocPages(gfps[m.prng.below(3)], order);
        if (pfn >= 0) live.push([pfn, order]);
      }
      if (i % 50 === 0) expectInvariants(m);
    }
    for (const [pfn, order] of live) m.freePages(pfn, order);
    expectInvariants(m);
    expect(topZone(m).nrFreePages).toBe(4096);
  });
});

describe('NR_FREE_PAGES leaves out MIGRATE_ISOLATE free lists (account_freepages)', () => {
  it('a block freed into an isolated pageblock is listed but not counted, and stays unmerged', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    const a = m.allocPages(GFP.HIGHUSER_MOVABLE, 9);
    const b = m.allocPages(GFP.HIGHUSER_MOVABLE, 9);
    expect([a, b]).toEqual([0, 512]);
    expect(z.nrFreePages).toBe(0);
    m.mem.setPageblockMigratetype(a, MIGRATE.ISOLATE);
    m.freePages(a, 9);
    expect(z.freeCount(9, MIGRATE.ISOLATE)).toBe(1);
    expect(z.nrFree[9]).toBe(1);
    expect(z.nrFreePages).toBe(0);
    // An isolated block never merges with its buddy across pageblocks.
    m.freePages(b, 9);
    expect(nrFree(z)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    expect(z.nrFreePages).toBe(512);
    expectInvariants(m);
    // Nothing is allocated from the isolated list; the Movable block goes first.
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 9)).toBe(512);
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, 0)).toBe(-1);
    expect(z.nrFreePages).toBe(0);
    expectInvariants(m);
  });

  it('moving free pages to and from the Isolate lists moves them out of and into the count', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    const before = z.nrFreePages;
    // set_migratetype_isolate(): the pageblock's free pages go to the Isolate lists.
    m.mem.setPageblockMigratetype(pfn, MIGRATE.ISOLATE);
    expect(moveFreepagesBlock(m.mem, z, pfn, MIGRATE.ISOLATE)?.free).toBe(511);
    expect(z.nrFreePages).toBe(before - 511);
    expectInvariants(m);
    m.mem.setPageblockMigratetype(pfn, MIGRATE.MOVABLE);
    expect(moveFreepagesBlock(m.mem, z, pfn, MIGRATE.MOVABLE)?.free).toBe(511);
    expect(z.nrFreePages).toBe(before);
    expectInvariants(m);
  });

  it('the invariant checker catches a count that includes the Isolate lists', () => {
    const m = smallMachine('4M');
    const z = topZone(m);
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 9);
    m.mem.setPageblockMigratetype(pfn, MIGRATE.ISOLATE);
    m.freePages(pfn, 9);
    z.nrFreePages += 512;
    expect(checkInvariants(m).violations.join('\n')).toMatch(
      /NR_FREE_PAGES is 1024, lists other than Isolate hold 512 pages/,
    );
  });
});

describe('machine allocation calls: bad input', () => {
  it.each([-1, 11, Number.NaN, 1.5, '2', Symbol('order'), Object.create(null)])(
    'allocPages and freePages with order %s are E_RANGE, and nothing changes',
    (order) => {
      const m = smallMachine('4M');
      const pfn = m.allocPages(GFP.KERNEL, 2);
      const free = topZone(m).nrFreePages;
      for (const call of [
        () => m.allocPages(GFP.KERNEL, order as number),
        () => m.freePages(pfn, order as number),
      ]) {
        expect(call).toThrow(/order must be an integer 0\.\.10, got/);
        try {
          call();
        } catch (e) {
          expect(e).toMatchObject({ code: 'E_RANGE', field: 'order' });
        }
      }
      expect(topZone(m).nrFreePages).toBe(free);
      expect(m.mem.pages.refcount[pfn]).toBe(1);
      m.freePages(pfn, 2);
      expectInvariants(m);
    },
  );
});

describe('gfp masks: bad input', () => {
  it.each([
    ['a string', 'x', '"x"'],
    ['undefined', undefined, 'undefined'],
    ['NaN', Number.NaN, 'NaN'],
    ['a negative number', -1, '-1'],
    ['a fraction', 1.5, '1.5'],
    ['a bit mops does not model', GFP.KERNEL | 0x200, '0xec0'],
    ['a bit above 32', 2 ** 40, '0x10000000000'],
    ['an object without a prototype', Object.create(null), 'an object'],
    ['a symbol', Symbol('gfp'), 'Symbol(gfp)'],
  ])('%s is E_RANGE naming gfp, and nothing is allocated', (_what, gfp, shown) => {
    const m = smallMachine('4M');
    const free = topZone(m).nrFreePages;
    expect(() => m.allocPages(gfp as never, 0)).toThrow(
      expect.objectContaining({ code: 'E_RANGE', field: 'gfp' }),
    );
    expect(() => allocPages(m.mem, gfp as never, 0)).toThrow(
      `gfp must be a mask of __GFP bits (the GFP and __GFP constants), got ${shown}`,
    );
    expect(topZone(m).nrFreePages).toBe(free);
    expectInvariants(m);
  });

  it.each([
    __GFP.DMA | __GFP.DMA32,
    __GFP.DMA | __GFP.DMA32 | __GFP.HIGHMEM,
    __GFP.DMA | __GFP.HIGHMEM,
    __GFP.DMA32 | __GFP.HIGHMEM,
    GFP.HIGHUSER_MOVABLE | __GFP.DMA,
  ])('two zone modifiers (0x%s) are the MmBug of gfp_zone()', (gfp) => {
    const m = smallMachine('4M');
    expect(() => m.allocPages(GFP.KERNEL | gfp, 0)).toThrow(
      /VM_BUG_ON\(\(GFP_ZONE_BAD >> bit\) & 1\): gfp_zone\(0x[0-9a-f]+\) names more than one zone/,
    );
  });

  it('one zone modifier, with or without __GFP_MOVABLE, is fine', () => {
    const m = smallMachine('64M', { zones: 'x86_64' });
    for (const gfp of [
      __GFP.DMA,
      __GFP.DMA32,
      __GFP.DMA | __GFP.MOVABLE,
      __GFP.DMA32 | __GFP.MOVABLE,
    ])
      expect(m.allocPages(GFP.KERNEL | gfp, 0)).toBeGreaterThanOrEqual(0);
    expectInvariants(m);
  });
});
