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
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { createZsPool } from '../src/index.js';
import { fill, PROFILES, pattern, pfnOf } from './helpers.js';

describe.each(PROFILES)('NR_ZSPAGES follows a page migrated to another zone, %s', (profile) => {
  it('the zone counts move after the locks, and the checker accepts every step in between', () => {
    const m = createMachine({ memory: '64M', profile, contents: true, minFreeKbytes: 0 });
    const [dma, dma32] = m.mem.populatedZones;
    const pool = createZsPool(m);
    const hs = fill(pool, 4, 1000);
    const src = pfnOf(pool, hs[0]);
    expect(m.mem.zoneOf(src)).toBe(dma32);
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
          dst = allocPages(m.mem, GFP.HIGHUSER_MOVABLE | __GFP.DMA, 0);
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
    hs.forEach((h, i) => {
      expect(pool.objRead(h)).toEqual(pattern(i, 1000));
    });
    expect(checkInvariants(m).violations).toEqual([]);
  });
});
