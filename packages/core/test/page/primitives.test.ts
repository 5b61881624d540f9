import { describe, expect, it } from 'vitest';
import {
  __GFP,
  compoundHead,
  Deadlock,
  folioGet,
  folioGetNontailPage,
  folioPutTestzero,
  folioRefFreeze,
  folioRefUnfreeze,
  folioTryGet,
  GFP,
  getPage,
  getPageUnlessZero,
  type KernelGen,
  lockPage,
  MmBug,
  MopsError,
  PG,
  PROFILE_NAMES,
  pageFolio,
  pageRefInc,
  putPage,
  testAndSetPageFlag,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { expectInvariants, smallMachine } from '../helpers.js';

describe('refcount primitives (spec §1.5)', () => {
  it('get_page_unless_zero fails on free pages and succeeds on allocated ones', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(getPageUnlessZero(m.mem, pfn)).toBe(true);
    expect(m.mem.pages.refcount[pfn]).toBe(2);
    expect(getPageUnlessZero(m.mem, pfn ^ 1)).toBe(false); // its free buddy
    expect(m.mem.pages.refcount[pfn ^ 1]).toBe(0);
  });

  it('folio_ref_freeze succeeds only at the expected count, and blocks speculative gets until unfreeze', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    getPage(m.mem, pfn);
    expect(folioRefFreeze(m.mem, pfn, 1)).toBe(false);
    expect(folioRefFreeze(m.mem, pfn, 2)).toBe(true);
    expect(getPageUnlessZero(m.mem, pfn)).toBe(false);
    expect(folioTryGet(m.mem, pfn)).toBe(false);
    folioRefUnfreeze(m.mem, pfn, 2);
    expect(getPageUnlessZero(m.mem, pfn)).toBe(true);
    expect(m.mem.pages.refcount[pfn]).toBe(3);
  });

  it.each([
    ['a count that is not frozen', 2, 1, 'VM_BUG_ON_PAGE(page_count(page) != 0)'],
    ['a new count of 0', 1, 0, 'VM_BUG_ON(count == 0)'],
  ])(
    "folio_ref_unfreeze of %s: page_ref_unfreeze()'s VM_BUG_ON, as every release words it",
    (_what, expected, count, reason) => {
      const m = smallMachine();
      const pfn = m.allocPages(GFP.KERNEL, 0);
      if (expected === 1) expect(folioRefFreeze(m.mem, pfn, 1)).toBe(true);
      else getPage(m.mem, pfn);
      try {
        folioRefUnfreeze(m.mem, pfn, count);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(MmBug);
        expect((e as MmBug).reason).toBe(reason);
      }
    },
  );

  it('folio_put_testzero reports the last reference; put_page frees on zero', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    getPage(m.mem, pfn);
    expect(folioPutTestzero(m.mem, pfn)).toBe(false);
    putPage(m.mem, pfn);
    expect(m.mem.pages.refcount[pfn]).toBe(0);
    expectInvariants(m);
  });

  it('a put on a zero refcount (double free) is an MmBug with the dump, and halts the machine', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    m.putPage(pfn);
    let err: unknown;
    try {
      m.putPage(pfn);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MmBug);
    const bug = err as MmBug;
    expect(bug.reason).toContain('page_ref_count(page) == 0');
    // v6.3's dump_page layout (the default profile); the other releases' are in dump_page.test.ts.
    expect(bug.dump).toMatch(
      new RegExp(
        `^page:[0-9a-f]{16} refcount:0 mapcount:-128 mapping:0000000000000000 index:0x0 pfn:0x${pfn.toString(16)}`,
      ),
    );
    expect(bug.dump).toContain('page_type: 0xffffff7f(buddy)');
    expect(bug.dump).toContain('page dumped because: VM_BUG_ON_PAGE(page_ref_count(page) == 0)');
    // The machine halted, and says so on the next call; nothing was half-updated.
    expect(() => m.allocPages(GFP.KERNEL, 0)).toThrowError(
      expect.objectContaining({ code: 'E_HALTED' }),
    );
    expectInvariants(m);
  });

  it('invariant T0: tail pages keep refcount 0; speculative gets on them fail harmlessly', () => {
    const m = smallMachine();
    const h = m.allocPages(GFP.KERNEL | __GFP.COMP, 2);
    for (let i = 1; i < 4; i++) {
      expect(getPageUnlessZero(m.mem, h + i)).toBe(false);
      expect(folioGetNontailPage(m.mem, h + i)).toBe(-1);
      expect(compoundHead(m.mem, h + i)).toBe(h);
      expect(pageFolio(m.mem, h + i)).toBe(h);
    }
    getPage(m.mem, h + 3); // get_page on a tail takes a reference on the folio
    expect(m.mem.pages.refcount[h]).toBe(2);
    expect(m.mem.pages.refcount[h + 3]).toBe(0);
    expectInvariants(m);
  });

  it.each([
    ['folio_get', (m: ReturnType<typeof smallMachine>, t: number) => folioGet(m.mem, t)],
    [
      'folio_ref_freeze',
      (m: ReturnType<typeof smallMachine>, t: number) => folioRefFreeze(m.mem, t, 0),
    ],
    [
      'folio_ref_unfreeze',
      (m: ReturnType<typeof smallMachine>, t: number) => folioRefUnfreeze(m.mem, t, 1),
    ],
    ['page_ref_inc', (m: ReturnType<typeof smallMachine>, t: number) => pageRefInc(m.mem, t)],
  ])('%s on a tail page is an MmBug and writes nothing', (_name, op) => {
    const m = smallMachine();
    const h = m.allocPages(GFP.KERNEL | __GFP.COMP, 1);
    expect(() => op(m, h + 1)).toThrow(MmBug);
    expect(m.mem.pages.refcount[h + 1]).toBe(0);
    expect(m.mem.pages.refcount[h]).toBe(1);
    expect(m.mem.halted).toBeInstanceOf(MmBug);
  });
});

describe('page flags and the page lock (spec §1.2, §1.5)', () => {
  it('test-and-set is atomic: returns the old bit', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(testAndSetPageFlag(m.mem, pfn, PG.reclaim)).toBe(false);
    expect(testAndSetPageFlag(m.mem, pfn, PG.reclaim)).toBe(true);
  });

  it('trylock_page never sleeps; lock_page sleeps until unlock_page wakes it', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    const k = { mem: m.mem, sched: m.sched };
    const order: string[] = [];
    const owner = m.sched.spawn('owner', function* (): KernelGen {
      expect(trylockPage(m.mem, pfn)).toBe(true);
      expect(trylockPage(m.mem, pfn)).toBe(false);
      yield { op: 'work', pfn };
      order.push('owner unlocks');
      unlockPage(k, pfn);
    });
    const w = m.sched.spawn('waiter', function* (): KernelGen {
      yield* lockPage(k, pfn);
      order.push('waiter locked');
      unlockPage(k, pfn);
    });
    m.sched.step(owner); // owner holds the lock, stops at its work point
    m.sched.step(w); // lock_page point
    m.sched.step(w); // finds it locked: PG_waiters set, blocks
    expect(w.state).toBe('blocked');
    expect(m.mem.pages.flags[pfn] & (1 << PG.waiters)).not.toBe(0);
    m.sched.runToEnd(owner);
    expect(w.state).toBe('runnable');
    m.sched.runToEnd(w);
    expect(order).toEqual(['owner unlocks', 'waiter locked']);
    expect(m.mem.pages.flags[pfn] & ((1 << PG.locked) | (1 << PG.waiters))).toBe(0);
  });

  it('a lone task locking a page nobody will unlock is reported as a deadlock', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    const k = { mem: m.mem, sched: m.sched };
    trylockPage(m.mem, pfn);
    expect(() => m.run(() => lockPage(k, pfn))).toThrow(Deadlock);
  });

  it('unlock_page of an unlocked page is an MmBug', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(() => unlockPage({ mem: m.mem, sched: m.sched }, pfn)).toThrow(
      'VM_BUG_ON_FOLIO(!folio_test_locked(folio))',
    );
  });

  it('v4.8 asserts in the page words of its time: unlock_page, get_page', () => {
    const m = smallMachine('4M', { profile: 'v4.8' });
    const pfn = m.allocPages(GFP.KERNEL, 0);
    expect(() => unlockPage({ mem: m.mem, sched: m.sched }, pfn)).toThrow(
      'VM_BUG_ON_PAGE(!PageLocked(page))',
    );
    putPage(m.mem, pfn);
    expect(() => getPage(m.mem, pfn)).toThrow('VM_BUG_ON_PAGE(page_ref_count(page) <= 0)');
    const n = smallMachine();
    const q = n.allocPages(GFP.KERNEL, 0);
    putPage(n.mem, q);
    expect(() => getPage(n.mem, q)).toThrow(
      'VM_BUG_ON_FOLIO(folio_ref_zero_or_close_to_overflow(folio))',
    );
  });

  it('freeing a locked page is a bad page: reported, leaked, and the invariants still hold', () => {
    const m = smallMachine();
    const pfn = m.allocPages(GFP.KERNEL, 0);
    trylockPage(m.mem, pfn);
    m.putPage(pfn);
    expect(m.mem.warnings.map((w) => w.kind)).toEqual(['bad_page']);
    expect(m.mem.warnings[0].text).toContain('PAGE_FLAGS_CHECK_AT_FREE');
    expect(m.mem.leaked.has(pfn)).toBe(true);
    expect(m.mem.halted).toBeUndefined();
    expectInvariants(m);
  });

  it.each(PROFILE_NAMES)(
    'free-time flags (T18) — %s: PG_mlocked is a bad page up to v6.3 and cleared and counted in v6.17; PG_swapcache is bad in v4.8',
    (profile) => {
      const m = smallMachine('4M', { profile });
      const a = m.allocPages(GFP.KERNEL, 0);
      m.mem.pages.flags[a] |= 1 << PG.mlocked;
      m.putPage(a);
      expect(m.mem.leaked.has(a)).toBe(profile !== 'v6.17');
      expect(m.mem.vmstat.get('unevictable_pgs_cleared')).toBe(profile === 'v6.17' ? 1 : 0);
      const b = m.allocPages(GFP.KERNEL, 0);
      m.mem.pages.flags[b] |= 1 << PG.swapcache;
      m.putPage(b);
      expect(m.mem.leaked.has(b)).toBe(profile === 'v4.8');
      expectInvariants(m);
    },
  );

  it('freeing resets mapping only when a tag bit is set (v4.8-v6.3) and page types only in v6.17', () => {
    for (const profile of PROFILE_NAMES) {
      const m = smallMachine('4M', { profile });
      const a = m.allocPages(GFP.KERNEL, 0);
      m.mem.pages.mapping[a] = (5 << 2) | 2; // a movable tag + pointer
      m.putPage(a);
      expect(m.mem.leaked.has(a)).toBe(profile === 'v6.17'); // v6.17 only resets the ANON bit
      const b = m.allocPages(GFP.KERNEL, 0);
      m.mem.pages.type[b] = 0xf1 << 24; // PageOffline left set by its owner
      m.putPage(b);
      expect(m.mem.leaked.has(b)).toBe(profile !== 'v6.17');
      expectInvariants(m);
    }
  });
});

describe('scripted interleavings with the step-by-step scheduler', () => {
  /**
   * A PFN walker's first steps, as isolate_movable_page takes them (spec §3.1): the
   * profile's speculative get, then the page lock. Returns what happened.
   */
  function* scanner(m: ReturnType<typeof smallMachine>, pfn: number): KernelGen<string> {
    const { mem, sched } = m;
    const get = m.profile.isolationGet;
    if (sched.preemptible) yield { op: get, pfn };
    const ok =
      get === 'folio_get_nontail_page'
        ? folioGetNontailPage(mem, pfn) >= 0
        : getPageUnlessZero(mem, pfn);
    if (!ok) return 'no reference';
    if (sched.preemptible) yield { op: 'trylock_page', pfn };
    if (!trylockPage(mem, pfn)) {
      putPage(mem, pfn);
      return 'locked';
    }
    unlockPage(m, pfn);
    putPage(mem, pfn);
    return 'locked and released';
  }

  it.each(PROFILE_NAMES)(
    'S03 isolate a tail page: fails at the reference step, no lock, head untouched (%s)',
    (profile) => {
      const m = smallMachine('4M', { profile });
      m.sched.manual = true;
      const h = m.allocPages(GFP.KERNEL | __GFP.COMP, 2);
      const seen: string[] = [];
      m.sched.onStep = (_t, p) => seen.push(p.op);
      const t = m.sched.spawn('scanner', () => scanner(m, h + 1));
      expect(m.sched.runToEnd(t)).toBe('no reference');
      expect(seen).toEqual([m.profile.isolationGet]);
      expect(seen).not.toContain('trylock_page');
      expect(m.mem.pages.refcount[h]).toBe(1);
      expect(m.mem.pages.refcount[h + 1]).toBe(0);
      expect(m.mem.pages.flags[h] & (1 << PG.locked)).toBe(0);
      expectInvariants(m);
    },
  );

  /**
   * S30: a walker saw H as the head of folio F1; F1 is freed and a new folio F2 is
   * allocated with H as its tail page 1; the walker then does its speculative get on H.
   */
  function recycledHead(profile: (typeof PROFILE_NAMES)[number]) {
    const m = smallMachine('4M', { profile });
    // Fill the machine, then free H-1: the only free page is H's buddy, and H is F1.
    while (m.allocPages(GFP.KERNEL, 0) >= 0);
    const H = 101; // odd: it becomes tail 1 of an order-1 folio headed at 100
    m.putPage(H - 1);
    return { m, H };
  }

  it.each(PROFILE_NAMES)(
    'S30 speculative get on a recycled head fails because the page is now a tail (%s)',
    (profile) => {
      const { m, H } = recycledHead(profile);
      m.sched.manual = true;
      const walker = m.sched.spawn('walker', function* (): KernelGen<boolean> {
        const head = compoundHead(m.mem, H); // the walker sees H as a head
        if (m.sched.preemptible) yield { op: 'get_page_unless_zero', pfn: head };
        return getPageUnlessZero(m.mem, head);
      });
      const owner = m.sched.spawn('owner', function* (): KernelGen<number> {
        if (m.sched.preemptible) yield { op: 'put_page', pfn: H };
        putPage(m.mem, H); // F1 freed: merges with H-1 into an order-1 block
        if (m.sched.preemptible) yield { op: 'alloc_pages', note: 'order 1 __GFP_COMP' };
        return m.allocPages(GFP.KERNEL | __GFP.COMP, 1);
      });
      m.sched.runUntil(walker, (p) => p.op === 'get_page_unless_zero');
      const f2 = m.sched.runToEnd(owner);
      expect(f2).toBe(H - 1);
      expect(m.sched.runToEnd(walker)).toBe(false);
      // F2's metadata is intact: the head holds the only reference, the tail stays at 0.
      expect(m.mem.pages.refcount[H - 1]).toBe(1);
      expect(m.mem.pages.refcount[H]).toBe(0);
      expect(m.mem.pages.compound[H]).toBe(-1);
      expectInvariants(m);
    },
  );

  it('S30 with the historical mistake (an unconditional increment on H) is caught as an MmBug', () => {
    const { m, H } = recycledHead('v6.3');
    m.putPage(H);
    expect(m.allocPages(GFP.KERNEL | __GFP.COMP, 1)).toBe(H - 1);
    expect(() => pageRefInc(m.mem, H)).toThrow(/tail page/);
    expect(m.mem.pages.refcount[H]).toBe(0);
  });

  it('the machine rejects calls with a pfn outside it', () => {
    const m = smallMachine();
    expect(() => m.putPage(1 << 20)).toThrowError(MopsError);
  });
});
