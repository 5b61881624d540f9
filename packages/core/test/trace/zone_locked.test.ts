import { describe, expect, it } from 'vitest';
import { moveFreepagesBlock } from '../../src/buddy/rmqueue.js';
import {
  ALLOC,
  allocAllFree,
  createMachine,
  GFP,
  getPageFromFreelist,
  type Machine,
  MIGRATE,
  type MmPageAllocZoneLocked,
  PROFILE_NAMES,
  type ProfileName,
  pagePointer,
  TraceFilterError,
  traceRecorder,
} from '../../src/index.js';
import { smallMachine, topZone } from '../helpers.js';

/** The payloads of mm_page_alloc_zone_locked fired while `run` runs. */
function zoneLocked(m: Machine, run: () => void): MmPageAllocZoneLocked[] {
  const seen: MmPageAllocZoneLocked[] = [];
  const on = (e: MmPageAllocZoneLocked) => seen.push({ ...e });
  m.trace.on('mm_page_alloc_zone_locked', on);
  run();
  m.trace.off('mm_page_alloc_zone_locked', on);
  return seen;
}

const event = (pfn: number, order: number, migratetype: number, percpu_refill: number) => ({
  pfn,
  order,
  migratetype,
  percpu_refill,
});

describe('mm_page_alloc_zone_locked', () => {
  it.each(PROFILE_NAMES)('%s: the line of an order-0 movable allocation', (p) => {
    const m = smallMachine('4M', { profile: p });
    const rec = traceRecorder(m, { events: ['mm_page_alloc_zone_locked'] });
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    // "page=%p pfn=0x%lx order=%u migratetype=%d percpu_refill=%d" (v4.8: pfn=%lu)
    const shown = p === 'v4.8' ? String(pfn) : `0x${pfn.toString(16)}`;
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0].split('mm_page_alloc_zone_locked: ')[1]).toBe(
      `page=${pagePointer(pfn)} pfn=${shown} order=0 migratetype=1 percpu_refill=1`,
    );
  });

  it('is recorded with the other kmem events, before mm_page_alloc', () => {
    const m = smallMachine('4M');
    const rec = traceRecorder(m);
    m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(rec.lines.map((l) => /: (\w+): /.exec(l)?.[1])).toEqual([
      'mm_page_alloc_zone_locked',
      'mm_page_alloc',
    ]);
  });

  // 6.x: pcp_allowed_order(order) && migratetype < MIGRATE_PCPTYPES (orders up to 3, and
  // pageblock_order with THP); v4.8 prints order == 0.
  it.each([
    ['v4.8', [1, 0, 0, 0, 0]],
    ['v6.0', [1, 1, 0, 1, 0]],
    ['v6.3', [1, 1, 0, 1, 0]],
    ['v6.17', [1, 1, 0, 1, 0]],
  ] as const)('%s: percpu_refill at orders 0, 3, 4, 9, 10 is %j', (p, refill) => {
    const m = smallMachine('16M', { profile: p });
    const got = [0, 3, 4, 9, 10].map((order) => {
      const seen = zoneLocked(m, () => m.allocPages(GFP.HIGHUSER_MOVABLE, order));
      expect(seen).toHaveLength(1);
      expect([seen[0].order, seen[0].migratetype]).toEqual([order, MIGRATE.MOVABLE]);
      return seen[0].percpu_refill;
    });
    expect(got).toEqual(refill);
  });

  // An unmovable request on a machine of free movable order-10 blocks falls back. v4.8:
  // __rmqueue() traces the block __rmqueue_fallback() took; v6.0/v6.3: the block
  // __rmqueue_smallest() takes after the steal; v6.17 claims the whole block and takes the
  // page itself, without __rmqueue_smallest(): no event.
  it.each([
    ['v4.8', true],
    ['v6.0', true],
    ['v6.3', true],
    ['v6.17', false],
  ] as const)('%s: a fallback allocation is traced: %s', (p, traced) => {
    const m = smallMachine('4M', { profile: p });
    let pfn = -1;
    const seen = zoneLocked(m, () => {
      pfn = m.allocPages(GFP.KERNEL, 0);
    });
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(seen).toEqual(traced ? [event(pfn, 0, MIGRATE.UNMOVABLE, 1)] : []);
  });

  // A reserved block taken by a high-order atomic request: v4.8's buffered_rmqueue() traces
  // it with the request's migratetype; 6.x's __rmqueue_smallest() with MIGRATE_HIGHATOMIC,
  // which is no per-CPU type.
  it.each(PROFILE_NAMES)('%s: a block from the MIGRATE_HIGHATOMIC lists', (p) => {
    const m = smallMachine('8M', { profile: p });
    allocAllFree(m);
    for (let q = 0; q < 8; q++) m.putPage(q);
    m.mem.setPageblockMigratetype(0, MIGRATE.HIGHATOMIC);
    moveFreepagesBlock(m.mem, topZone(m), 0, MIGRATE.HIGHATOMIC);
    topZone(m).nrReservedHighatomic = 512;
    const flags = ALLOC.NO_WATERMARKS | ALLOC.NON_BLOCK | ALLOC.HIGHATOMIC;
    let pfn = -1;
    const seen = zoneLocked(m, () => {
      pfn = getPageFromFreelist(m.mem, GFP.ATOMIC, 1, flags, 1);
    });
    expect(pfn).toBeGreaterThanOrEqual(0);
    expect(pfn).toBeLessThan(8);
    const mt = p === 'v4.8' ? MIGRATE.UNMOVABLE : MIGRATE.HIGHATOMIC;
    expect(seen).toEqual([event(pfn, 1, mt, 0)]);
  });

  // v4.8's __rmqueue() traces a failure with a NULL page; 6.x traces only blocks taken.
  it.each(PROFILE_NAMES)('%s: an rmqueue() that finds nothing', (p) => {
    const m = smallMachine('4M', { profile: p });
    allocAllFree(m);
    const rec = traceRecorder(m, { events: ['mm_page_alloc_zone_locked'] });
    expect(getPageFromFreelist(m.mem, GFP.KERNEL, 0, ALLOC.NO_WATERMARKS, 1)).toBe(-1);
    expect(rec.lines.map((l) => l.split('mm_page_alloc_zone_locked: ')[1])).toEqual(
      p === 'v4.8' ? ['page=          (null) pfn=0 order=0 migratetype=0 percpu_refill=1'] : [],
    );
  });

  it.each(PROFILE_NAMES)('%s: a filter may name percpu_refill from 6.0 on', (p: ProfileName) => {
    const m = createMachine({ memory: '16M', contents: false, profile: p });
    const events = ['mm_page_alloc_zone_locked'];
    const filter = { mm_page_alloc_zone_locked: 'percpu_refill == 0' };
    if (p === 'v4.8') {
      expect(() => traceRecorder(m, { events, filter })).toThrow(TraceFilterError);
      return;
    }
    const rec = traceRecorder(m, { events, filter });
    m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    m.allocPages(GFP.HIGHUSER_MOVABLE, 4);
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0]).toMatch(/ order=4 migratetype=1 percpu_refill=0$/);
  });

  it('costs nothing unsubscribed: the bus is not asked', () => {
    const m = smallMachine('4M');
    let fired = 0;
    const fire = m.trace.fire.bind(m.trace);
    m.trace.fire = ((name: string, e: unknown) => {
      if (name === 'mm_page_alloc_zone_locked') fired++;
      return fire(name as 'mm_page_free', e as { pfn: number; order: number });
    }) as typeof m.trace.fire;
    m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    expect(fired).toBe(0);
  });
});
