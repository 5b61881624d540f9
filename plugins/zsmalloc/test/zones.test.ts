import {
  __GFP,
  allocPages,
  checkInvariants,
  createMachine,
  folioPut,
  GFP,
  isolateMovablePage,
  MIGRATE_MODE,
  migratePages,
  procView,
  ZS,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { createZsPool } from '../src/index.js';
import { fill, PROFILES, pattern, pfnOf } from './helpers.js';

describe.each(PROFILES)('NR_ZSPAGES and a page migrated to another zone, %s', (profile) => {
  it('the count follows the page after the locks (5.5 on; v4.8 leaves it behind), and the checker accepts every step', () => {
    const m = createMachine({ memory: '64M', profile, contents: true, minFreeKbytes: 0 });
    const [dma, dma32] = m.mem.populatedZones;
    const pool = createZsPool(m);
    const nr = () => [dma.stat[ZS.nr_zspages], dma32.stat[ZS.nr_zspages]];
    const base = nr();
    const hs = fill(pool, 4, 1000);
    const src = pfnOf(pool, hs[0]);
    expect(m.mem.zoneOf(src)).toBe(dma32);
    const [dma0, dma320] = nr();
    const list = m.mem.pages.lists.newList();
    m.sched.manual = true;
    const seen: string[] = [];
    m.sched.onStep = () => {
      const r = checkInvariants(m);
      if (!r.ok) seen.push(...r.violations);
    };
    let dst = -1;
    const res = m.run(function* () {
      const ok = yield* isolateMovablePage(m, src, 0);
      expect(ok === true || ok === 0).toBe(true);
      m.mem.pages.lists.addTail(list, src);
      return yield* migratePages(
        m,
        list,
        () => {
          dst = allocPages(m.mem, (GFP.HIGHUSER_MOVABLE & ~__GFP.HIGHMEM) | __GFP.DMA, 0);
          return dst;
        },
        (d) => folioPut(m.mem, d),
        MIGRATE_MODE.SYNC,
        0,
      );
    });
    expect(res.rc).toBe(0);
    expect(m.mem.zoneOf(dst)).toBe(dma);
    expect(seen).toEqual([]);
    const v48 = profile === 'v4.8';
    expect(nr()).toEqual(v48 ? [dma0, dma320] : [dma0 + 1, dma320 - 1]);
    hs.forEach((h, i) => {
      expect(pool.objRead(h)).toEqual(pattern(i, 1000));
    });
    expect(checkInvariants(m).violations).toEqual([]);
    // Freeing the zspage takes each page's count from the zone it is in now: in v4.8 DMA
    // goes below zero (zoneinfo reads it as 0) and DMA32 keeps one.
    m.sched.manual = false;
    m.sched.onStep = undefined;
    for (const h of hs) pool.zsFree(h);
    expect(pool.pagesAllocated).toBe(0);
    expect(nr()).toEqual(v48 ? [base[0] - 1, base[1] + 1] : base);
    expect(checkInvariants(m).violations).toEqual([]);
    // /proc/vmstat adds the zones up: the -1 and the +1 cancel out.
    expect(procView(m, 'vmstat')).toMatch(new RegExp(`^nr_zspages ${base[0] + base[1]}$`, 'm'));
  });
});
