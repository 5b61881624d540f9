/**
 * The filler driver: publishing per profile (spec §5.2), owner release (§4), and the VM's
 * isolate / migrate / putback on its pages (§3.1-§3.3) with no protocol violations.
 */
import { describe, expect, it } from 'vitest';
import { fragmentationScoreNode } from '../../src/compaction/metrics.js';
import {
  __PageMovable,
  checkInvariants,
  defineMovableOps,
  GFP,
  isolatedOk,
  isolateMovablePage,
  type ListId,
  type Machine,
  MIGRATE_MODE,
  type MigrateResult,
  MopsError,
  migratePages,
  PG,
  PGTY,
  PROFILE_NAMES,
  page_has_movable_ops,
  procView,
  putbackMovablePages,
  putPage,
  setMovableOps,
} from '../../src/index.js';
import { createMovableFiller, fragmentWithFiller } from '../../src/workload/movable_filler.js';
import { expectInvariants, smallMachine, topZone } from '../helpers.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof MopsError) return e.code;
    throw e;
  }
  return 'no error';
}

function isolate(m: Machine, list: ListId, pfn: number): boolean {
  const res = m.run(() => isolateMovablePage(m, pfn, 0));
  if (isolatedOk(res)) m.mem.pages.lists.addTail(list, pfn);
  return isolatedOk(res);
}

function migrate(m: Machine, list: ListId, targets: number[]): MigrateResult {
  const getNew = (): number => {
    const pfn = m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'compaction');
    if (pfn >= 0) targets.push(pfn);
    return pfn;
  };
  return m.run(() =>
    migratePages(m, list, getNew, (dst) => putPage(m.mem, dst), MIGRATE_MODE.SYNC, 0),
  );
}

const violations = (m: Machine) => m.mem.warnings.filter((w) => w.kind === 'protocol_violation');

describe.each(PROFILE_NAMES)('filler driver — %s', (profile) => {
  it('alloc publishes order-0 pages as movable, owned by the filler; invariants hold', () => {
    const m = smallMachine('4M', { profile });
    const f = createMovableFiller(m);
    expect(createMovableFiller(m)).toBe(f);
    const got = f.alloc(8);
    expect(got).toHaveLength(8);
    expect([...f.pages].sort((a, b) => a - b)).toEqual([...got].sort((a, b) => a - b));
    const p = m.mem.pages;
    for (const pfn of got) {
      expect(p.refcount[pfn]).toBe(1);
      expect(m.mem.owners.name(p.ownerOf(pfn))).toBe('filler');
      if (profile === 'v6.17') {
        expect(page_has_movable_ops(m.mem, pfn)).toBe(true);
        expect(p.type[pfn] >>> 24).toBe(PGTY.offline);
      } else expect(__PageMovable(m.mem, pfn)).toBe(true);
    }
    expect(m.invariantCheckers.has('filler')).toBe(true);
    expectInvariants(m);
    expect(m.mem.warnings).toEqual([]);
  });

  it('free releases a page back to the buddy allocator, cleanly for the profile', () => {
    const m = smallMachine('4M', { profile });
    const f = createMovableFiller(m);
    const before = topZone(m).nrFreePages;
    const [a, b] = f.alloc(2);
    f.free(a);
    expect(m.mem.pages.refcount[a]).toBe(0);
    expect(m.mem.pages.mapping[a]).toBe(0);
    expect(m.mem.pages.type[a] >>> 24).toBe(PGTY.buddy);
    expect(f.pages.has(a)).toBe(false);
    expect(code(() => f.free(a))).toBe('E_STATE');
    expect(f.freeAll()).toBe(1);
    expect(f.pages.has(b)).toBe(false);
    expect(topZone(m).nrFreePages).toBe(before);
    expect(m.mem.warnings).toEqual([]); // no bad_page: marker and type cleared as required
    expectInvariants(m);
  });

  it('isolate + migrate: contents and ownership move to dst, src is freed, no violations', () => {
    const m = smallMachine('4M', { profile });
    const f = createMovableFiller(m);
    const pages = f.alloc(4);
    const list = m.mem.pages.lists.newList();
    for (const pfn of pages) expect(isolate(m, list, pfn)).toBe(true);
    expect(f.isolated.size).toBe(4);
    expect(f.pages.size).toBe(0);
    // An isolated page cannot be freed by the filler.
    expect(code(() => f.free(pages[0]))).toBe('E_STATE');
    expectInvariants(m);
    const src0 = m.mem.pages.pageData(pages[0]).slice(0, 16);
    const targets: number[] = [];
    const res = migrate(m, list, targets);
    expect(res.rc).toBe(0);
    expect(res.nrSucceeded).toBe(4);
    expect(f.migrations).toBe(4);
    expect(f.isolated.size).toBe(0);
    expect([...f.pages].sort((a, b) => a - b)).toEqual([...targets].sort((a, b) => a - b));
    // A freed src may be reused as a later target (v4.8/v6.0 move one page at a time).
    for (const pfn of pages) if (!targets.includes(pfn)) expect(m.mem.pages.refcount[pfn]).toBe(0);
    const p = m.mem.pages;
    for (const d of targets) {
      expect(p.refcount[d]).toBe(1);
      expect(p.flags[d] & (1 << PG.isolated)).toBe(0);
      expect(m.mem.owners.name(p.ownerOf(d))).toBe('filler');
    }
    // The bytes of pages[0] now live in the target it was moved to (same tag, checked by
    // the filler's invariant), and the first 16 bytes are identical.
    expect(
      targets.some((d) =>
        p
          .pageData(d)
          .slice(0, 16)
          .every((b, i) => b === src0[i]),
      ),
    ).toBe(true);
    expect(violations(m)).toEqual([]);
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
    // Migrated pages can be migrated again and freed.
    expect(isolate(m, list, targets[0])).toBe(true);
    expect(migrate(m, list, []).nrSucceeded).toBe(1);
    f.freeAll();
    expect(f.pages.size).toBe(0);
    expect(m.mem.warnings).toEqual([]);
    expectInvariants(m);
  });

  it('isolate + putback: the page returns to the filler untouched', () => {
    const m = smallMachine('4M', { profile });
    const f = createMovableFiller(m);
    const [a] = f.alloc(1);
    const list = m.mem.pages.lists.newList();
    expect(isolate(m, list, a)).toBe(true);
    expect(m.mem.pages.flags[a] & (1 << PG.isolated)).not.toBe(0);
    expect(m.mem.pages.refcount[a]).toBe(2);
    m.run(() => putbackMovablePages(m, list));
    expect(f.pages.has(a)).toBe(true);
    expect(f.isolated.size).toBe(0);
    expect(m.mem.pages.refcount[a]).toBe(1);
    expect(m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
    expect(violations(m)).toEqual([]);
    expectInvariants(m);
    f.free(a);
    expectInvariants(m);
  });

  it('the checker catches a page whose contents were overwritten', () => {
    const m = smallMachine('4M', { profile });
    const f = createMovableFiller(m);
    const [a] = f.alloc(1);
    m.mem.pages.pageData(a)[0] ^= 0xff;
    const r = checkInvariants(m);
    expect(r.ok).toBe(false);
    expect(r.violations.join('\n')).toContain('filler: pfn 0x');
    expect(r.violations.join('\n')).toContain('contents lost');
  });
});

describe('filler registration', () => {
  it('v6.17: Offline already taken by another driver (e.g. the balloon) -> E_PLUGIN', () => {
    const m = smallMachine('4M', { profile: 'v6.17' });
    const other = defineMovableOps('balloon-like', {
      isolatePage: () => false,
      migratePage: () => 0,
      putbackPage: () => {},
    });
    expect(setMovableOps(m.mem, other, PGTY.offline)).toBe(0);
    expect(code(() => createMovableFiller(m))).toBe('E_PLUGIN');
  });

  it('alloc stops quietly when memory runs out; reserves reach below the watermarks', () => {
    const m = smallMachine('4M', { profile: 'v6.3', minFreeKbytes: 1024 });
    const f = createMovableFiller(m);
    const normal = f.alloc(2000);
    expect(normal.length).toBeLessThan(1024);
    const more = f.alloc(2000, { reserves: true });
    expect(normal.length + more.length).toBe(1024);
    expectInvariants(m);
  });

  it("every machine's filler calls the same callback functions, each on its own ops", () => {
    const a = createMovableFiller(smallMachine('4M')).ops;
    const b = createMovableFiller(smallMachine('4M')).ops;
    expect(a).not.toBe(b);
    expect(a.isolatePage).toBe(b.isolatePage);
    expect(a.migratePage).toBe(b.migratePage);
    expect(a.putbackPage).toBe(b.putbackPage);
  });
});

describe('fragmentWithFiller', () => {
  it('pins one pageblock in 16, scatters filler pages, frees a random half; deterministic', () => {
    const run = () => {
      const m = smallMachine('64M', { profile: 'v6.3', seed: 7 });
      return { m, r: fragmentWithFiller(m, { fill: 0.8, free: 0.5 }) };
    };
    const { m, r } = run();
    // 64M = 32 pageblocks: blocks 0 and 16 get an unmovable page at their first pfn.
    expect(r.unmovable).toEqual([0, 16 * 512]);
    expect(r.filled).toBeGreaterThan(0.75 * 16382);
    expect(r.filled).toBeLessThan(0.85 * 16382);
    expect(r.freed).toBeGreaterThan(0.45 * r.filled);
    expect(r.freed).toBeLessThan(0.55 * r.filled);
    expect(r.filler.pages.size).toBe(r.filled - r.freed);
    expect(m.mem.owners.name(m.mem.pages.ownerOf(0))).toBe('unmovable');
    // Free memory is scattered: no free pageblock is left, and the score is high.
    expect(topZone(m).nrFree[9] + topZone(m).nrFree[10]).toBe(0);
    expect(fragmentationScoreNode(m.mem)).toBeGreaterThan(90);
    expectInvariants(m);
    expect(m.mem.warnings).toEqual([]);
    const again = run();
    expect(procView(again.m, 'buddyinfo')).toBe(procView(m, 'buddyinfo'));
    expect([...again.r.filler.pages]).toEqual([...r.filler.pages]);
  });

  it('works in every profile and rejects bad fractions', () => {
    for (const profile of PROFILE_NAMES) {
      const m = smallMachine('8M', { profile });
      const r = fragmentWithFiller(m, { unmovableEvery: 0 });
      expect(r.unmovable).toEqual([]);
      expectInvariants(m);
      expect(m.mem.warnings).toEqual([]);
    }
    const m = smallMachine('8M');
    expect(code(() => fragmentWithFiller(m, { fill: 1.5 }))).toBe('E_RANGE');
    expect(code(() => fragmentWithFiller(m, { unmovableEvery: -1 }))).toBe('E_RANGE');
  });
});

describe('adopt', () => {
  it('refuses a page that is not a fresh order-0 allocation, a PG_reserved one included (E_STATE)', () => {
    const m = smallMachine('4M');
    const f = createMovableFiller(m);
    const reserved = m.allocPages(GFP.KERNEL, 0);
    m.mem.pages.flags[reserved] |= 1 << PG.reserved;
    let free = m.allocPages(GFP.KERNEL, 0);
    m.putPage(free);
    for (const pfn of [reserved, free])
      expect(() => f.adopt(pfn)).toThrow(
        expect.objectContaining({ code: 'E_STATE', field: 'pfn' }),
      );
    expect(f.pages.size).toBe(0);
    free = m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    f.adopt(free);
    expect(f.pages.size).toBe(1);
    m.mem.pages.flags[reserved] &= ~(1 << PG.reserved);
    expect(checkInvariants(m).ok).toBe(true);
  });
});
