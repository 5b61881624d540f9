/**
 * The invariant checker's page-level rules: each test builds a broken state by hand and
 * checks that `checkInvariants` names it, and that the legal neighbouring state passes.
 */
import { describe, expect, it } from 'vitest';
import {
  __ClearPageMovable,
  __GFP,
  addToFreeList,
  checkInvariants,
  createMachine,
  defineMovableOps,
  delFromFreeList,
  firstFree,
  freePages,
  GFP,
  hexPfn,
  ISOLATED,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  LOCKED,
  MAX_PAGE_ORDER,
  type Machine,
  MIGRATE,
  MIGRATE_TYPES,
  moveToFreeList,
  NS,
  PAGE_MAPPING_MOVABLE,
  PG,
  PGTY,
  PROFILE_NAMES,
  type ProfileName,
  putPage,
  SetPageMovableOps,
  setMovableOps,
  setPageType,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { TestDriver } from '../driver.js';
import { expectInvariants, topZone } from '../helpers.js';

function machine(profile: ProfileName, memory = '8M'): Machine {
  return createMachine({ memory, profile, seed: 1 });
}

function violations(m: Machine): string {
  return checkInvariants(m).violations.join('\n');
}

/** A driver with `n` published pages, the first `isolated` of them isolated by the VM. */
function isolatedPages(profile: ProfileName, n: number, isolated: number) {
  const m = machine(profile);
  const drv = new TestDriver(m);
  const pages = drv.alloc(n);
  const list = m.mem.pages.lists.newList();
  for (const pfn of pages.slice(0, isolated)) {
    const r = m.run(function* () {
      return yield* isolateMovablePage(drv.k, pfn, 0);
    });
    if (!isolatedOk(r)) throw new Error(`pfn ${pfn} was not isolated`);
    m.mem.pages.lists.addTail(list, pfn);
  }
  return { m, drv, pages, list };
}

describe('invariants: isolated and locked pages (spec §11, §3.1, §4)', () => {
  for (const profile of PROFILE_NAMES) {
    it(`${profile}: an isolated page without its movable marker is reported`, () => {
      const { m, pages } = isolatedPages(profile, 1, 1);
      const pfn = pages[0];
      expectInvariants(m);
      if (m.profile.movableMarker === 'page_type') m.mem.pages.flags[pfn] &= ~(1 << PG.movable_ops);
      else m.mem.pages.mapping[pfn] = 0;
      expect(violations(m)).toMatch(/isolated page is not a movable page/);
    });

    it(`${profile}: an isolated page whose reference is gone is reported`, () => {
      const { m, pages } = isolatedPages(profile, 1, 1);
      m.mem.pages.refcount[pages[0]] = 0;
      expect(violations(m)).toMatch(/isolated page has refcount 0/);
    });

    it(`${profile}: PG_isolated or PG_locked on a tail page is reported`, () => {
      const m = machine(profile);
      const head = m.allocPages(GFP.KERNEL | __GFP.COMP, 2, 'thp');
      expectInvariants(m);
      m.mem.pages.flags[head + 1] |= LOCKED;
      expect(violations(m)).toMatch(/tail page has PG_locked/);
      m.mem.pages.flags[head + 1] &= ~LOCKED;
      m.mem.pages.flags[head + 2] |= ISOLATED;
      expect(violations(m)).toMatch(/tail page has the isolated flag/);
    });

    it(`${profile}: PG_isolated on a page that was never movable is reported`, () => {
      const m = machine(profile);
      const pfn = m.allocPages(GFP.KERNEL, 0, 'kmalloc');
      m.mem.pages.flags[pfn] |= ISOLATED;
      expect(violations(m)).toMatch(/isolated page is not a movable page/);
    });
  }

  for (const profile of ['v4.8', 'v6.0', 'v6.3'] as const)
    it(`${profile}: an isolated page its owner released keeps the tag and passes`, () => {
      const { m, drv, pages } = isolatedPages(profile, 1, 1);
      const pfn = pages[0];
      trylockPage(m.mem, pfn);
      __ClearPageMovable(m.mem, pfn);
      unlockPage(drv.k, pfn);
      expectInvariants(m);
    });

  for (const profile of PROFILE_NAMES)
    it(`${profile}: an isolated page on no list once no task is left is reported`, () => {
      const { m, pages } = isolatedPages(profile, 1, 1);
      expectInvariants(m);
      m.mem.pages.lists.del(pages[0]);
      expect(violations(m)).toMatch(/isolated, but on no list: no putback can return it/);
    });

  for (const profile of ['v4.8', 'v6.0', 'v6.3'] as const)
    it(`${profile}: a movable tag whose ops pointer leads to no movable_ops is reported`, () => {
      const m = machine(profile);
      const pfn = m.allocPages(GFP.KERNEL, 0, 'kmalloc');
      expectInvariants(m);
      m.mem.pages.mapping[pfn] = (4000 << 2) | PAGE_MAPPING_MOVABLE;
      expect(violations(m)).toMatch(/tagged movable, but its ops pointer leads to no movable_ops/);
    });

  it('a locked page with a frozen refcount (0) is legal while a task is in the middle of it', () => {
    const m = machine('v6.3');
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'pagecache');
    const t = m.sched.spawn('freezer', function* (): KernelGen {
      trylockPage(m.mem, pfn);
      m.mem.pages.refcount[pfn] = 0;
      yield { op: 'page_ref_freeze', pfn };
      m.mem.pages.refcount[pfn] = 1;
      unlockPage(m, pfn);
    });
    m.sched.step(t);
    expectInvariants(m);
    m.sched.runToEnd(t);
    expectInvariants(m);
  });

  for (const profile of PROFILE_NAMES)
    it(`${profile}: a page left locked once no task is left is reported`, () => {
      const m = machine(profile);
      const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'pagecache');
      trylockPage(m.mem, pfn);
      expect(violations(m)).toMatch(
        new RegExp(`pfn ${hexPfn(pfn)}: locked, but no task is left to unlock it`),
      );
      unlockPage(m, pfn);
      expectInvariants(m);
    });

  it('v6.17: a PG_movable_ops page whose page type has no movable_ops registered is reported', () => {
    const m = machine('v6.17');
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'drv');
    setPageType(m.mem, pfn, PGTY.offline);
    SetPageMovableOps(m.mem, pfn);
    expect(violations(m)).toMatch(
      /marked PG_movable_ops, but its page type has no movable_ops registered/,
    );
    setMovableOps(
      m.mem,
      defineMovableOps('drv', {
        isolatePage: () => false,
        migratePage: () => -16,
        putbackPage: () => {},
      }),
      PGTY.offline,
    );
    expectInvariants(m);
  });
});

describe('invariants: list links', () => {
  for (const profile of ['v4.8', 'v6.3', 'v6.17'] as const) {
    it(`${profile}: a page freed while still on a migration list is reported`, () => {
      const { m, pages, list } = isolatedPages(profile, 3, 3);
      expectInvariants(m);
      // The owner's and the VM's references dropped without list_del().
      putPage(m.mem, pages[1]);
      putPage(m.mem, pages[1]);
      expect(violations(m)).toMatch(/lru\.next is \d+, which does not link back to it/);
      expect(m.mem.pages.lists.toArray(list)).not.toEqual(pages);
    });

    it(`${profile}: a free block with a stale lru.prev is reported`, () => {
      const m = machine(profile, '64M');
      const lists = m.mem.pages.lists;
      const z = topZone(m);
      const blocks = lists.toArray(z.freeList[MAX_PAGE_ORDER * MIGRATE_TYPES + MIGRATE.MOVABLE]);
      expect(blocks.length).toBeGreaterThan(2);
      lists.prev[blocks[1]] = 0;
      expect(violations(m)).toMatch(/lru\.prev is 0, which does not link back to it/);
    });

    it(`${profile}: a free list whose last block links to another list head is reported`, () => {
      const m = machine(profile);
      const lists = m.mem.pages.lists;
      const z = topZone(m);
      const last = lists.last(z.freeList[MAX_PAGE_ORDER * MIGRATE_TYPES + MIGRATE.MOVABLE]);
      lists.next[last] = -(z.freeList[MIGRATE.UNMOVABLE] + 1);
      expect(violations(m)).toMatch(/lru\.next is -\d+, which does not link back to it/);
    });

    it(`${profile}: a page merged into a free block while on a migration list is reported`, () => {
      const { m, drv, pages } = isolatedPages(profile, 4, 0);
      const even = pages.find((q) => q % 2 === 0 && pages.includes(q + 1)) ?? -1;
      expect(even).toBeGreaterThanOrEqual(0);
      const odd = even + 1;
      const other = pages.find((q) => q !== even && q !== odd) ?? -1;
      const list = m.mem.pages.lists.newList();
      for (const pfn of [odd, other]) {
        const r = m.run(function* () {
          return yield* isolateMovablePage(drv.k, pfn, 0);
        });
        expect(isolatedOk(r)).toBe(true);
        m.mem.pages.lists.addTail(list, pfn);
      }
      expectInvariants(m);
      putPage(m.mem, even);
      // The last put of `odd` while it is still on the list: it merges with `even`.
      putPage(m.mem, odd);
      putPage(m.mem, odd);
      expect(violations(m)).toMatch(
        new RegExp(
          `pfn 0x${odd.toString(16)}: page inside the free block at 0x${even.toString(16)} is on a list`,
        ),
      );
    });
  }
});

describe('invariants: free-list types against pageblock types', () => {
  /** Two order-9 buddies of types Movable and HighAtomic, left unmerged. */
  function unmergedBuddies(profile: ProfileName): Machine {
    const m = machine(profile);
    const mem = m.mem;
    const z = topZone(m);
    const pfn = firstFree(mem, z, MAX_PAGE_ORDER, MIGRATE.MOVABLE);
    delFromFreeList(mem, z, pfn);
    mem.setPageblockMigratetype(pfn + 512, MIGRATE.HIGHATOMIC);
    // As reserve_highatomic_pageblock() would have: every HighAtomic block is counted.
    z.nrReservedHighatomic += 512;
    addToFreeList(mem, z, pfn, 9, MIGRATE.MOVABLE, false);
    addToFreeList(mem, z, pfn + 512, 9, MIGRATE.HIGHATOMIC, false);
    return m;
  }

  it('v4.8 merges every type but Isolate: unmerged Movable and HighAtomic buddies are reported', () => {
    expect(violations(unmergedBuddies('v4.8'))).toMatch(
      /free block of order 9 and its free buddy 0x[0-9a-f]+ were not merged/,
    );
  });

  it('v6.3 keeps HighAtomic apart: the same buddies are legal', () => {
    expectInvariants(unmergedBuddies('v6.3'));
  });

  it('v6.17: a free block on a list of another type than its pageblocks is reported', () => {
    const m = machine('v6.17');
    const z = topZone(m);
    const pfn = firstFree(m.mem, z, MAX_PAGE_ORDER, MIGRATE.MOVABLE);
    moveToFreeList(m.mem, z, pfn, MIGRATE.UNMOVABLE);
    expect(violations(m)).toMatch(
      /free block of order 10 is on a type 0 list, its pageblock at 0x[0-9a-f]+ has type 1/,
    );
  });

  it('v6.17: a free block covering a pageblock of another type is reported', () => {
    const m = machine('v6.17');
    const z = topZone(m);
    const pfn = firstFree(m.mem, z, MAX_PAGE_ORDER, MIGRATE.MOVABLE);
    m.mem.setPageblockMigratetype(pfn + 512, MIGRATE.UNMOVABLE);
    expect(violations(m)).toMatch(
      new RegExp(`on a type 1 list, its pageblock at 0x${(pfn + 512).toString(16)} has type 0`),
    );
  });

  it('v6.3: the same free block is legal (merging keeps the buddy type)', () => {
    const m = machine('v6.3');
    const z = topZone(m);
    const pfn = firstFree(m.mem, z, MAX_PAGE_ORDER, MIGRATE.MOVABLE);
    m.mem.setPageblockMigratetype(pfn + 512, MIGRATE.UNMOVABLE);
    expectInvariants(m);
  });
});

describe('invariants: v4.8 nr_isolated_file', () => {
  it('counts exactly the pages in countedIsolated, each held and tagged', () => {
    const { m, pages } = isolatedPages('v4.8', 2, 1);
    const mem = m.mem;
    mem.countedIsolated.add(pages[0]);
    mem.vmstat.node[NS.nr_isolated_file]++;
    expectInvariants(m);
    mem.vmstat.node[NS.nr_isolated_file] += 32;
    expect(violations(m)).toMatch(/nr_isolated_file is 33, 1 isolated pages are counted in it/);
    mem.vmstat.node[NS.nr_isolated_file] -= 32;
    const free = firstFree(mem, topZone(m), 3, MIGRATE.MOVABLE);
    mem.countedIsolated.add(free);
    mem.vmstat.node[NS.nr_isolated_file]++;
    const v = violations(m);
    expect(v).toMatch(/counted in nr_isolated_file with refcount 0/);
    expect(v).toMatch(/counted in nr_isolated_file but has no MOVABLE tag/);
  });
});

describe('invariants: compound pages from the head side', () => {
  for (const profile of ['v6.3', 'v6.17'] as const) {
    it(`${profile}: a page inside a compound page that is not its tail is reported`, () => {
      const m = machine(profile);
      const p = m.mem.pages;
      const head = m.allocPages(GFP.KERNEL | __GFP.COMP, 2, 'thp');
      expectInvariants(m);
      // A half-done split: the third page became a page of its own.
      p.compound[head + 2] = 0;
      p.refcount[head + 2] = 1;
      p.setOwner(head + 2, p.ownerOf(head));
      expect(violations(m)).toMatch(
        new RegExp(`pfn 0x${(head + 2).toString(16)}: inside the order-2 compound page`),
      );
    });

    it(`${profile}: a misaligned compound head is reported`, () => {
      const m = machine(profile);
      const p = m.mem.pages;
      const g = m.allocPages(GFP.KERNEL, 2, 'x');
      freePages(m.mem, g, 2);
      const q = m.allocPages(GFP.KERNEL, 2, 'y');
      p.flags[q + 1] |= 1 << PG.head;
      p.compound[q + 1] = 1;
      p.compound[q + 2] = -1;
      expect(violations(m)).toMatch(
        new RegExp(`pfn 0x${(q + 1).toString(16)}: compound head of order 1 is misaligned`),
      );
    });
  }
});

describe('invariants: pageblocks, compound heads and managed pages', () => {
  it('a pageblock with a migratetype that does not exist is named', () => {
    const m = machine('v6.3');
    expectInvariants(m);
    const zone = topZone(m);
    m.mem.pageblock[zone.zoneStartPfn >> 9] |= 7;
    expect(violations(m)).toMatch(/pageblock has migratetype 7/);
  });

  it('a compound order on a page that is not a head is named', () => {
    const m = machine('v6.3');
    const pfn = m.allocPages(GFP.KERNEL, 0);
    m.mem.pages.compound[pfn] = 3;
    expect(violations(m)).toMatch(/compound order 3 recorded on a page that is not a head/);
  });

  it('more free pages than the zone manages (a page outside them freed) is named', () => {
    const m = machine('v6.3');
    const zone = topZone(m);
    zone.managedPages = zone.nrFreePages - 1;
    expect(violations(m)).toMatch(/free pages, more than its \d+ managed/);
  });

  it('a known kernel miscount allows that many free pages above the managed count, no more', () => {
    const m = machine('v4.8');
    const zone = topZone(m);
    zone.managedPages = zone.nrFreePages - 2;
    zone.managedMiscount = 2;
    expectInvariants(m);
    zone.managedMiscount = 1;
    expect(violations(m)).toMatch(
      /free pages, more than its \d+ managed and the 1 a known kernel miscount leaves out of them/,
    );
    // A zone counted over (negative) allows nothing more.
    zone.managedMiscount = -1;
    expect(violations(m)).toMatch(/free pages, more than its \d+ managed$/m);
  });
});

describe('invariants: the high-atomic reserve count', () => {
  /** A machine whose zone counts one reserved block that is no longer HighAtomic. */
  function lostReserve(profile: ProfileName) {
    const m = machine(profile);
    const zone = topZone(m);
    const block = zone.zoneStartPfn + 512;
    m.mem.setPageblockMigratetype(block, MIGRATE.HIGHATOMIC);
    zone.nrReservedHighatomic = 512;
    expectInvariants(m);
    // What a fallback claiming a merged order-10 block does to its pageblocks (v4.8).
    m.mem.setPageblockMigratetype(block, MIGRATE.UNMOVABLE);
    return m;
  }

  it('v4.8: a reserved block that lost its type by merging and being claimed is legal', () => {
    expect(checkInvariants(lostReserve('v4.8')).ok).toBe(true);
  });

  it('v6.3: HighAtomic blocks never merge away, so the same count is a violation', () => {
    expect(violations(lostReserve('v6.3'))).toMatch(
      /HighAtomic pageblocks hold 0 pages, nr_reserved_highatomic is 512/,
    );
  });

  it.each(['v6.3', 'v4.8'] as const)(
    '%s: a HighAtomic block shared by two zones is counted by one of them, either one',
    (profile) => {
      // DMA [0, 1000), Normal [1000, 2048): block 1 ([512, 1024)) holds pages of both.
      const m = createMachine({
        memory: '8M',
        profile,
        seed: 1,
        zones: [
          { idx: 0, startPfn: 0, spanned: 1000, present: 1000 },
          { idx: 2, startPfn: 1000, spanned: 1048, present: 1048 },
        ],
      });
      const [dma, normal] = m.mem.populatedZones;
      m.mem.setPageblockMigratetype(512, MIGRATE.HIGHATOMIC);
      for (const [a, b] of [
        [512, 0],
        [0, 512],
      ]) {
        dma.nrReservedHighatomic = a;
        normal.nrReservedHighatomic = b;
        expect(violations(m)).toBe('');
      }
      dma.nrReservedHighatomic = 512;
      normal.nrReservedHighatomic = 512;
      // v4.8 lets a block lose its type while counted, not gain one uncounted.
      if (profile === 'v6.3')
        expect(violations(m)).toMatch(/the zones' nr_reserved_highatomic add up to 1024/);
      else expect(violations(m)).toBe('');
      dma.nrReservedHighatomic = 0;
      normal.nrReservedHighatomic = 0;
      const uncounted =
        /HighAtomic pageblocks hold 512 pages, the zones' nr_reserved_highatomic add up to 0/;
      expect(violations(m)).toMatch(uncounted);
    },
  );

  it('v4.8: more HighAtomic blocks than counted is still a violation', () => {
    const m = machine('v4.8');
    m.mem.setPageblockMigratetype(topZone(m).zoneStartPfn, MIGRATE.HIGHATOMIC);
    expect(violations(m)).toMatch(
      /HighAtomic pageblocks hold 512 pages, nr_reserved_highatomic is 0/,
    );
  });
});
