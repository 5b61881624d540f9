/**
 * The direct compactions of the allocator's slow path (allocPagesSlowpathCompact): which
 * passes run, at which priority, for small and costly orders, movable or not, with and
 * without __GFP_NORETRY, per release.
 */
import { describe, expect, it } from 'vitest';
import {
  __GFP,
  allocPagesDirectCompact,
  allocPagesSlowpathCompact,
  COMPACT_PRIO,
  GFP,
  type Machine,
  PF_MEMALLOC,
  PROFILE_NAMES,
} from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { pinnedCheckerboard } from './layout.js';

const { ASYNC, SYNC_LIGHT, SYNC_FULL } = COMPACT_PRIO;

/** The priority of every try_to_compact_pages() of one failing allocation. */
function passes(m: Machine, gfp: number, order: number): number[] {
  const seen: number[] = [];
  const on = (e: { prio: number }) => {
    seen.push(e.prio);
  };
  m.trace.on('mm_compaction_try_to_compact_pages', on);
  expect(m.allocPages(gfp, order)).toBe(-1);
  m.trace.off('mm_compaction_try_to_compact_pages', on);
  return seen;
}

describe.each(PROFILE_NAMES)('the slow path’s direct compaction passes — %s', (profile) => {
  const v48 = profile === 'v4.8';

  it('a small movable order starts in the retry loop at SYNC_LIGHT, then SYNC_FULL (6.x)', () => {
    const m = pinnedCheckerboard(profile);
    expect(passes(m, GFP.HIGHUSER_MOVABLE, 3)).toEqual(
      v48 ? [SYNC_LIGHT] : [SYNC_LIGHT, SYNC_FULL],
    );
    expectInvariants(m);
  });

  it('a small non-movable order first tries ASYNC before reclaim (4.11 on)', () => {
    const m = pinnedCheckerboard(profile);
    expect(passes(m, GFP.KERNEL, 2)).toEqual(v48 ? [SYNC_LIGHT] : [ASYNC, SYNC_LIGHT, SYNC_FULL]);
  });

  it('a costly order: ASYNC first, then SYNC_LIGHT (MIN_COMPACT_COSTLY_PRIORITY)', () => {
    const m = pinnedCheckerboard(profile);
    expect(passes(m, GFP.HIGHUSER_MOVABLE, 4)).toEqual([ASYNC, SYNC_LIGHT]);
    expect(passes(m, GFP.HIGHUSER_MOVABLE | __GFP.RETRY_MAYFAIL, 4)).toEqual([ASYNC, SYNC_LIGHT]);
  });

  it('__GFP_NORETRY stops after the retry loop’s first pass', () => {
    const m = pinnedCheckerboard(profile);
    expect(passes(m, GFP.HIGHUSER_MOVABLE | __GFP.NORETRY, 3)).toEqual([SYNC_LIGHT]);
    expect(passes(m, GFP.KERNEL | __GFP.NORETRY, 2)).toEqual(
      v48 ? [SYNC_LIGHT] : [ASYNC, SYNC_LIGHT],
    );
  });

  it('a costly __GFP_NORETRY order stays at ASYNC when its first pass ran', () => {
    const m = pinnedCheckerboard(profile);
    expect(passes(m, GFP.HIGHUSER_MOVABLE | __GFP.NORETRY, 4)).toEqual([ASYNC, ASYNC]);
    // ASYNC passes never defer: the next request compacts again.
    expect(passes(m, GFP.HIGHUSER_MOVABLE | __GFP.NORETRY, 4)).toEqual([ASYNC, ASYNC]);
  });

  it('a costly __GFP_NORETRY order gives up when its first pass was deferred', () => {
    const m = pinnedCheckerboard(profile);
    // SYNC_LIGHT completing without success defers order 4.
    expect(passes(m, GFP.HIGHUSER_MOVABLE, 4)).toEqual([ASYNC, SYNC_LIGHT]);
    const stalls = m.mem.vmstat.get('compact_stall');
    expect(passes(m, GFP.HIGHUSER_MOVABLE | __GFP.NORETRY, 4)).toEqual([ASYNC]);
    // 6.x counts the deferred pass as a stall; v4.8 does not.
    expect(m.mem.vmstat.get('compact_stall') - stalls).toBe(v48 ? 0 : 1);
  });

  it('… and when it was skipped (too little free memory for order 9), in 6.x', () => {
    const m = pinnedCheckerboard(profile);
    expect(passes(m, GFP.HIGHUSER_MOVABLE | __GFP.NORETRY, 9)).toEqual(
      v48 ? [ASYNC, ASYNC] : [ASYNC],
    );
    expect(m.mem.vmstat.get('compact_stall')).toBe(0);
  });

  it('a task with a fatal signal pending gets no pass after the retry loop’s first', () => {
    const m = pinnedCheckerboard(profile);
    const seen: number[] = [];
    m.trace.on('mm_compaction_try_to_compact_pages', (e) => {
      seen.push(e.prio);
    });
    const t = m.sched.spawn('killed', function* () {
      return yield* allocPagesSlowpathCompact(m, {
        gfp: GFP.HIGHUSER_MOVABLE,
        order: 3,
        allocFlags: 0,
      });
    });
    m.sched.sendSigkill(t);
    expect(m.sched.runToEnd(t)).toBe(-1);
    expect(seen).toEqual([SYNC_LIGHT]);
  });

  /** The passes a PF_MEMALLOC task's failing allocation makes, and whether it keeps the flag. */
  function memallocPasses(gfp: number, order: number): { seen: number[]; kept: boolean } {
    const m = pinnedCheckerboard(profile);
    const seen: number[] = [];
    m.trace.on('mm_compaction_try_to_compact_pages', (e) => {
      seen.push(e.prio);
    });
    let kept = false;
    const t = m.sched.spawn(
      'memalloc',
      function* () {
        const pfn = yield* allocPagesSlowpathCompact(m, { gfp, order, allocFlags: 0 });
        kept = ((m.sched.current?.flags ?? 0) & PF_MEMALLOC) !== 0;
        return pfn;
      },
      { flags: PF_MEMALLOC },
    );
    expect(m.sched.runToEnd(t)).toBe(-1);
    expectInvariants(m);
    return { seen, kept };
  }

  it('a PF_MEMALLOC task compacts nothing (the slow path’s recursion guard)', () => {
    expect(memallocPasses(GFP.KERNEL, 4)).toEqual({ seen: [], kept: true });
    expect(memallocPasses(GFP.HIGHUSER_MOVABLE, 3)).toEqual({ seen: [], kept: true });
  });

  it('… but with __GFP_NOMEMALLOC it makes the first pass; v4.8’s clears the flag and goes on', () => {
    // A costly order: the first pass, then the guard (6.x); v4.8 lost the flag in that pass,
    // so its retry loop compacts at SYNC_LIGHT.
    expect(memallocPasses(GFP.KERNEL | __GFP.NOMEMALLOC, 4)).toEqual(
      v48 ? { seen: [ASYNC, SYNC_LIGHT], kept: false } : { seen: [ASYNC], kept: true },
    );
    // A small non-movable order has a first pass in 6.x only; then the guard stops it.
    expect(memallocPasses(GFP.KERNEL | __GFP.NOMEMALLOC, 2)).toEqual(
      v48 ? { seen: [], kept: true } : { seen: [ASYNC], kept: true },
    );
  });

  it('allocPagesDirectCompact gives a task its PF_MEMALLOC back, in 6.x; v4.8 clears it', () => {
    for (const before of [0, PF_MEMALLOC]) {
      const m = pinnedCheckerboard(profile);
      let during = 0;
      m.trace.on('mm_compaction_try_to_compact_pages', () => {
        during = (m.sched.current?.flags ?? 0) & PF_MEMALLOC;
      });
      const t = m.sched.spawn(
        'direct',
        function* () {
          yield* allocPagesDirectCompact(m, {
            gfp: GFP.KERNEL,
            order: 4,
            allocFlags: 0,
            prio: ASYNC,
          });
          return (m.sched.current?.flags ?? 0) & PF_MEMALLOC;
        },
        { flags: before },
      );
      expect(during).toBe(0);
      expect(m.sched.runToEnd(t)).toBe(v48 ? 0 : before);
      expect(during).toBe(PF_MEMALLOC);
    }
  });

  it('order 0 and requests without __GFP_DIRECT_RECLAIM compact nothing', () => {
    const m = pinnedCheckerboard(profile);
    const gen = (gfp: number, order: number) =>
      m.run(() => allocPagesSlowpathCompact(m, { gfp, order, allocFlags: 0 }));
    const seen: number[] = [];
    m.trace.on('mm_compaction_try_to_compact_pages', (e) => {
      seen.push(e.prio);
    });
    expect(gen(GFP.HIGHUSER_MOVABLE, 0)).toBe(-1);
    expect(gen(GFP.HIGHUSER_MOVABLE & ~__GFP.DIRECT_RECLAIM, 3)).toBe(-1);
    expect(seen).toEqual([]);
    expect(() => gen(GFP.KERNEL, 99)).toThrow(/order/);
  });
});
