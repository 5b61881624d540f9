import {
  __PageMovable,
  checkInvariants,
  GFP,
  ISOLATED,
  type Machine,
  MmBug,
  MopsError,
  PAGE_MAPPING_MOVABLE,
  PG,
  PGTY,
  page_has_movable_ops,
  putbackMovablePages,
  traceRecorder,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  adjustManagedPageCount,
  BALLOON_GFP,
  BalloonDevice,
  balloonPageDevice,
  balloonRules,
  Hypervisor,
  managedPages,
  VirtioBalloon,
} from '../src/index.js';
import {
  expectClean,
  expectRefused,
  isolate,
  machine,
  PROFILES,
  putback,
  run,
  warningsOf,
  withBalloon,
} from './helpers.js';

const ISO = 1 << PG.isolated;

describe('balloon page allocation flags by release', () => {
  it.each([
    ['v4.8', 'gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_NORETRY|__GFP_NOMEMALLOC'],
    ['v6.3', 'gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC'],
    ['v6.17', 'gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC'],
  ] as const)('%s: mm_page_alloc of a balloon page prints %s', (profile, want) => {
    const m = machine(profile);
    const rec = traceRecorder(m, { events: ['mm_page_alloc'] });
    const pfn = new BalloonDevice(m).balloonPageAlloc();
    rec.stop();
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0].endsWith(want)).toBe(true);
  });
});

describe.each(PROFILES)('§6.2 operations, %s', (profile) => {
  it('balloon_page_alloc takes a movable page; enqueue publishes it and counts balloon_inflate', () => {
    const m = machine(profile);
    const dev = new BalloonDevice(m);
    const pfn = dev.balloonPageAlloc();
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(BALLOON_GFP & GFP.HIGHUSER_MOVABLE).toBe(GFP.HIGHUSER_MOVABLE);
    run(m, () => dev.enqueue(pfn));
    const p = m.mem.pages;
    expect(dev.listPages()).toEqual([pfn]);
    expect(p.type[pfn] >>> 24).toBe(PGTY.offline);
    expect(p.priv[pfn]).toBe(dev.id);
    expect(balloonPageDevice(m.mem, pfn)).toBe(dev);
    expect(p.flags[pfn] & (1 << PG.locked)).toBe(0);
    expect(page_has_movable_ops(m.mem, pfn)).toBe(true);
    const marker = balloonRules(m.profile).marker;
    if (marker === 'page_type') {
      expect(p.flags[pfn] & (1 << PG.movable_ops)).not.toBe(0);
      expect(p.mapping[pfn]).toBe(0);
    } else {
      expect(p.mapping[pfn] & 3).toBe(PAGE_MAPPING_MOVABLE);
      const target = m.mem.mappings.get<object>(p.mapping[pfn] >>> 2);
      expect(target).toBe(marker === 'address_space' ? dev.space : dev.ops);
    }
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(1);
    expect(m.mem.vmstat.get('nr_balloon_pages')).toBe(marker === 'page_type' ? 1 : 0);
  });

  it('list_enqueue and list_dequeue move several pages; dequeue unpublishes per profile', () => {
    const m = machine(profile);
    const dev = new BalloonDevice(m);
    const pfns = [dev.balloonPageAlloc(), dev.balloonPageAlloc(), dev.balloonPageAlloc()];
    expect(run(m, () => dev.listEnqueue(pfns))).toBe(3);
    expect(dev.listLength()).toBe(3);
    const order = dev.listPages();
    const got = run(m, () => dev.listDequeue(2));
    // Taken from the head of the balloon list; each goes to the head of the returned list.
    expect(got).toEqual([order[1], order[0]]);
    expect(dev.listLength()).toBe(1);
    expect(m.mem.vmstat.get('balloon_deflate')).toBe(2);
    const p = m.mem.pages;
    for (const pfn of got) {
      expect(p.priv[pfn]).toBe(0);
      expect(p.lists.isLinked(pfn)).toBe(false);
      if (profile === 'v6.17') {
        // balloon_page_finalize: PageOffline and PG_movable_ops are sticky until free.
        expect(p.type[pfn] >>> 24).toBe(PGTY.offline);
        expect(page_has_movable_ops(m.mem, pfn)).toBe(true);
      } else {
        // balloon_page_delete: type cleared, __ClearPageMovable keeps the bare tag.
        expect(p.type[pfn]).toBe(-1);
        expect(p.mapping[pfn]).toBe(PAGE_MAPPING_MOVABLE);
        expect(__PageMovable(m.mem, pfn)).toBe(true);
      }
      m.putPage(pfn);
      expect(p.refcount[pfn]).toBe(0);
    }
    expect(warningsOf(m, 'bad_page')).toEqual([]);
    // NR_BALLOON_PAGES exists only in v6.17 among the profiles (added in 2025, after 6.14).
    expect(m.mem.vmstat.get('nr_balloon_pages')).toBe(profile === 'v6.17' ? 1 : 0);
  });

  it('the dequeue walk skips a page whose trylock fails', () => {
    const m = machine(profile);
    const dev = new BalloonDevice(m);
    const a = dev.balloonPageAlloc();
    const b = dev.balloonPageAlloc();
    run(m, () => dev.listEnqueue([a, b]));
    const [first, second] = dev.listPages();
    expect(trylockPage(m.mem, first)).toBe(true);
    expect(run(m, () => dev.dequeue())).toBe(second);
    // Only the locked page is left, and it stays locked by its holder: NULL, no BUG.
    expect(run(m, () => dev.dequeue())).toBe(-1);
    expect(dev.stats.dequeueEmpty).toBe(1);
    unlockPage(m, first);
    expect(run(m, () => dev.dequeue())).toBe(first);
  });

  it('enqueue of a page someone else holds locked is a BUG (classic design)', () => {
    const m = machine(profile);
    const dev = new BalloonDevice(m);
    const pfn = dev.balloonPageAlloc();
    trylockPage(m.mem, pfn);
    expect(() => run(m, () => dev.enqueue(pfn))).toThrow(MmBug);
    expect(m.mem.halted?.reason).toMatch(/trylock_page/);
  });

  it('fill and leak account managed pages and nr_balloon_pages; leak frees the pages', () => {
    const { m, vb } = withBalloon(profile);
    const base = managedPages(m);
    const free0 = m.mem.populatedZones[0].nrFreePages;
    expect(run(m, () => vb.fill(8))).toBe(8);
    expect(vb.numPages).toBe(8);
    expect(managedPages(m)).toBe(base - 8);
    expect(vb.host.inflatedCount).toBe(8);
    expectClean(m);
    expect(run(m, () => vb.leak(5))).toBe(5);
    expect(vb.numPages).toBe(3);
    expect(managedPages(m)).toBe(base - 3);
    expect(m.mem.populatedZones[0].nrFreePages).toBe(free0 - 3);
    expect(m.mem.vmstat.get('balloon_inflate')).toBe(8);
    expect(m.mem.vmstat.get('balloon_deflate')).toBe(5);
    expect(m.mem.vmstat.get('nr_balloon_pages')).toBe(profile === 'v6.17' ? 3 : 0);
    expect(warningsOf(m, 'bad_page')).toEqual([]);
    expectClean(m);
  });

  it('deflate-on-OOM leaves managed pages alone', () => {
    const { m, vb } = withBalloon(profile, 0, { deflateOnOom: true });
    const base = managedPages(m);
    run(m, () => vb.fill(4));
    expect(managedPages(m)).toBe(base);
    run(m, () => vb.leak(4));
    expect(managedPages(m)).toBe(base);
    expectClean(m);
  });

  it('§6.4 a leak cut short by isolated pages gets them on a later call, after putback', () => {
    const { m, vb, dev } = withBalloon(profile, 3);
    const p = m.mem.pages;
    const list = p.lists.newList();
    const [a, b] = dev.listPages();
    isolate(m, list, a);
    isolate(m, list, b);
    expect(run(m, () => vb.leak(3))).toBe(1);
    expect(vb.stats.leakShort).toBe(1);
    expect(vb.numPages).toBe(2);
    expect(p.flags[a] & ISO).toBe(ISO);
    expect(vb.host.isInflated(a) && vb.host.isInflated(b)).toBe(true);
    expectClean(m);
    m.run(() => putbackMovablePages(m, list));
    expect(run(m, () => vb.leak(3))).toBe(2);
    expect(vb.numPages).toBe(0);
    expect(vb.host.inflatedCount).toBe(0);
    expectClean(m);
  });

  it('inflating more than the machine has ends with fewer pages, counted, never fatal', () => {
    const { m, vb } = withBalloon(profile);
    let total = 0;
    for (let i = 0; i < 8; i++) total += run(m, () => vb.fill(256));
    expect(total).toBeLessThanOrEqual(m.nrPages);
    expect(total).toBeGreaterThan(900);
    expect(run(m, () => vb.fill(1))).toBe(0);
    expect(vb.stats.allocFailures).toBeGreaterThan(0);
    expect(vb.numPages).toBe(total);
    expect(m.mem.allocFailures).toBeGreaterThan(0);
    expect(m.mem.halted).toBeUndefined();
    expectClean(m);
    expect(run(m, () => vb.leak(256))).toBe(256);
    expectClean(m);
  });

  it('deflating an empty balloon returns 0 and is counted; asking a balloon with pages for none is not', () => {
    const { m, vb } = withBalloon(profile);
    expect(run(m, () => vb.leak(4))).toBe(0);
    expect(vb.stats.emptyLeaks).toBe(1);
    expect(run(m, () => vb.fill(2))).toBe(2);
    expect(run(m, () => vb.leak(0))).toBe(0);
    expect(vb.stats.emptyLeaks).toBe(1);
    expect(run(m, () => vb.leak(2))).toBe(2);
    expect(m.mem.vmstat.get('balloon_deflate')).toBe(2);
    expectClean(m);
  });

  it('misuse raises MopsError: negative or fractional counts, pages that are not fresh', () => {
    const { m, vb, dev } = withBalloon(profile, 1);
    expect(() => run(m, () => vb.fill(-1))).toThrow(MopsError);
    expect(() => run(m, () => vb.leak(1.5))).toThrow(/non-negative integer/);
    expect(() => run(m, () => dev.listDequeue(-2))).toThrow(MopsError);
    const free = m.mem.pages.refcount.indexOf(0, 1);
    expect(() => run(m, () => dev.enqueue(free))).toThrow(/not an allocated/);
    const [a] = dev.listPages();
    expect(() => run(m, () => dev.enqueue(a))).toThrow(/in use/);
    expect(() => run(m, () => dev.enqueue(1 << 30))).toThrow(MopsError);
    const x = dev.balloonPageAlloc();
    expect(() => run(m, () => dev.listEnqueue([x, x]))).toThrow(/twice/);
    expect(() => new BalloonDevice(m, { design: 'nope' as never })).toThrow(MopsError);
    expect(m.mem.halted).toBeUndefined();
  });
});

/** What a refused call must leave as it was: the device's list, counts and the zones. */
function balloonState(m: Machine, dev: BalloonDevice) {
  return {
    list: dev.listPages(),
    isolated: dev.isolatedPages,
    counted: [...dev.countedIsolated()],
    stats: { ...dev.stats },
    managed: m.mem.populatedZones.map((z) => z.managedPages),
  };
}

describe.each(PROFILES)('misuse of the device helpers, %s', (profile) => {
  it('isolateLocked refuses a page that is not on the balloon list and changes nothing', () => {
    const { m, vb, dev } = withBalloon(profile, 4);
    const plain = m.allocPages(GFP.KERNEL, 0);
    const [a] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    expect(isolate(m, list, a)).toBe(true);
    const before = balloonState(m, dev);
    const hex = (pfn: number) => new RegExp(`pfn 0x${pfn.toString(16)} is not a page on the list`);
    expectRefused(() => dev.isolateLocked(plain), 'E_STATE', 'pfn', hex(plain));
    expectRefused(() => dev.isolateLocked(a), 'E_STATE', 'pfn', hex(a));
    expectRefused(() => dev.isolateLocked(-1), 'E_RANGE', 'pfn', /pfn -1 is outside/);
    expectRefused(() => dev.isolateLocked(m.mem.nrPages), 'E_RANGE', 'pfn', /outside/);
    expect(balloonState(m, dev)).toEqual(before);
    expect(m.mem.pages.lists.toArray(list)).toEqual([a]);
    putback(m, list);
    expect(dev.isolatedPages).toBe(0);
    expect(vb.numPages).toBe(4);
    expect(m.mem.halted).toBeUndefined();
    expectClean(m);
  });

  it('putbackLocked and uncountIsolated refuse a page not counted isolated and change nothing', () => {
    const { m, dev } = withBalloon(profile, 4);
    const plain = m.allocPages(GFP.KERNEL, 0);
    const [a] = dev.listPages();
    const before = balloonState(m, dev);
    for (const f of [
      (pfn: number) => dev.putbackLocked(pfn),
      (pfn: number) => dev.uncountIsolated(pfn),
    ]) {
      expectRefused(() => f(plain), 'E_STATE', 'pfn', /is not an isolated page of balloon/);
      expectRefused(() => f(a), 'E_STATE', 'pfn', new RegExp(`pfn 0x${a.toString(16)} `));
      expectRefused(() => f(Number.NaN), 'E_RANGE', 'pfn', /pfn NaN is outside/);
    }
    expect(balloonState(m, dev)).toEqual(before);
    expect(m.mem.pages.lists.isLinked(plain)).toBe(false);
    expect(m.mem.halted).toBeUndefined();
    expectClean(m);
  });

  it('adjustManagedPageCount refuses a bad pfn or delta and changes nothing; above the present pages is allowed, as in the kernel', () => {
    const { m, dev } = withBalloon(profile, 4);
    const [a] = dev.listPages();
    const zone = m.mem.zoneOf(a);
    const before = balloonState(m, dev);
    for (const delta of [Number.NaN, 0.5, Number.POSITIVE_INFINITY, '1' as unknown as number])
      expectRefused(() => adjustManagedPageCount(m.mem, a, delta), 'E_RANGE', 'delta', /delta/);
    const below = -zone.managedPages - 1;
    expectRefused(() => adjustManagedPageCount(m.mem, a, below), 'E_RANGE', 'delta', /-1 managed/);
    const above = zone.presentPages - zone.managedPages + 1;
    adjustManagedPageCount(m.mem, a, above);
    expect(zone.managedPages).toBe(zone.presentPages + 1);
    adjustManagedPageCount(m.mem, a, -above);
    expectRefused(() => adjustManagedPageCount(m.mem, -3, 1), 'E_RANGE', 'pfn', /pfn -3/);
    expect(balloonState(m, dev)).toEqual(before);
    adjustManagedPageCount(m.mem, a, -1);
    adjustManagedPageCount(m.mem, a, 1);
    expect(balloonState(m, dev)).toEqual(before);
    expectClean(m);
  });
});

describe('constructors and list calls given the wrong kind of value', () => {
  it.each([
    ['BalloonDevice', (m: unknown, o?: unknown) => new BalloonDevice(m as never, o as never)],
    ['VirtioBalloon', (m: unknown, o?: unknown) => new VirtioBalloon(m as never, o as never)],
    ['Hypervisor', (m: unknown, o?: unknown) => new Hypervisor(m as never, o as never)],
  ])('%s: a machine and an options object, or E_USAGE saying what was given', (what, make) => {
    const m = machine('v6.3');
    expect(() => make(m.mem)).toThrow(
      new RegExp(
        `^${what}: the first argument must be a machine \\(createMachine\\).*, got a Memory$`,
      ),
    );
    expect(() => make(null)).toThrow(
      expect.objectContaining({ code: 'E_USAGE', field: 'machine' }),
    );
    expect(() => make(m, null)).toThrow(`${what}: options must be an object, got null`);
    expect(() => make(m, 5)).toThrow(
      expect.objectContaining({ code: 'E_USAGE', field: 'options' }),
    );
    // A misspelt option would leave its default without a word.
    expect(() => make(m, { nmae: 'x' })).toThrow(
      expect.objectContaining({
        code: 'E_USAGE',
        field: 'nmae',
        message: expect.stringMatching(
          new RegExp(`^${what}: unknown option 'nmae' \\(given "x"\\); the options are `),
        ),
      }),
    );
    expectClean(m);
  });

  it('a BalloonDevice also takes a kernel context { mem, sched }, as its type says', () => {
    const m = machine('v6.3');
    const dev = new BalloonDevice({ mem: m.mem, sched: m.sched });
    const pfn = dev.balloonPageAlloc();
    run(m, () => dev.enqueue(pfn));
    expect(dev.listPages()).toEqual([pfn]);
    expect(() => new BalloonDevice({ mem: m.mem, sched: null } as never)).toThrow(
      expect.objectContaining({ code: 'E_USAGE', field: 'machine' }),
    );
  });

  it.each([
    ['VirtioBalloon', 'hypervisor', { hypervisor: {} }, 'an object'],
    ['VirtioBalloon', 'name', { name: Symbol('n') }, 'Symbol(n)'],
    ['VirtioBalloon', 'deflateOnOom', { deflateOnOom: 'yes' }, '"yes"'],
    ['VirtioBalloon', 'hypervisorOptions', { hypervisorOptions: 5 }, '5'],
    ['BalloonDevice', 'name', { name: 5 }, '5'],
    ['BalloonDevice', 'adjustManagedPageCount', { adjustManagedPageCount: 1 }, '1'],
    ['BalloonDevice', 'mistakes', { mistakes: 'all' }, '"all"'],
  ])(
    '%s option %s of the wrong type is E_USAGE before anything changes',
    (what, field, opts, shown) => {
      const m = machine('v6.3');
      const free = m.mem.populatedZones.map((z) => z.nrFreePages);
      const make = () =>
        what === 'VirtioBalloon'
          ? new VirtioBalloon(m, opts as never)
          : new BalloonDevice(m, opts as never);
      expect(make).toThrow(
        expect.objectContaining({
          code: 'E_USAGE',
          field,
          message: expect.stringContaining(`got ${shown}`),
        }),
      );
      expect(m.mem.populatedZones.map((z) => z.nrFreePages)).toEqual(free);
      expectClean(m);
    },
  );

  it('listEnqueue of something that is not an array is E_USAGE, and nothing is enqueued', () => {
    const m = machine('v6.3');
    const dev = new BalloonDevice(m);
    for (const bad of [null, 5, 'abc', new Set([1])])
      expect(() => run(m, () => dev.listEnqueue(bad as never))).toThrow(
        expect.objectContaining({ code: 'E_USAGE', field: 'pfns' }),
      );
    expect(dev.listLength()).toBe(0);
    expectClean(m);
  });
});

describe.each(PROFILES)('the checker and the VM’s isolation of balloon pages — %s', (profile) => {
  const violations = (m: Machine) => checkInvariants(m).violations.join('\n');
  const setup = () => {
    const { m, dev } = withBalloon(profile, 2);
    const [a, b] = dev.listPages();
    const list = m.mem.pages.lists.newList();
    expect(isolate(m, list, a)).toBe(true);
    expectClean(m);
    return { m, dev, a, b, list };
  };

  it('an isolated page without the VM’s isolated flag is reported once no task is left', () => {
    const { m, a, list } = setup();
    m.mem.pages.flags[a] &= ~ISOLATED;
    expect(violations(m)).toMatch(/isolated balloon pfn 0x[0-9a-f]+ lacks the VM's isolated flag/);
    m.mem.pages.flags[a] |= ISOLATED;
    putback(m, list);
    expectClean(m);
  });

  it('an isolated page without the VM’s reference is reported', () => {
    const { m, a } = setup();
    m.putPage(a);
    expect(violations(m)).toMatch(
      /isolated balloon pfn 0x[0-9a-f]+ has refcount 1 \(the balloon's and the VM's references make 2\)/,
    );
  });

  it('a page on the balloon list with a stale isolated flag is reported', () => {
    const { m, b } = setup();
    m.mem.pages.flags[b] |= ISOLATED;
    expect(violations(m)).toMatch(
      /pfn 0x[0-9a-f]+ is on the balloon list but the VM's isolated flag is set/,
    );
  });
});
