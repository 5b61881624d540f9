import {
  createMachine,
  Errno,
  installPlugin,
  MmBug,
  type MopsError,
  PG,
  page_has_movable_ops,
  procView,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { classesView, createZsPool, HANDLE_SLOTS, HandleTable, MAX_POOLS } from '../src/index.js';
import { expectClean, fill, PROFILES, pattern, pfnOf, rig } from './helpers.js';
import { ZS_POOL, type ZsPool, zsmallocPluginForTest } from './plugin_ref.js';

describe.each(PROFILES)('pool and objects, %s (spec §7.1)', (profile) => {
  it('packs objects into a zspage chain and reads back every byte, spanning objects too', () => {
    const { m, pool } = rig(profile);
    // 3632-byte class: 8 pages, 9 objects, so most objects span two pages.
    const hs = fill(pool, 9, 3600, 100);
    const pfns = new Set(hs.map((h) => pfnOf(pool, h)));
    expect(pool.pagesAllocated).toBe(8);
    expect(pfns.size).toBe(8);
    for (const [i, h] of hs.entries()) expect(pool.objRead(h)).toEqual(pattern(100 + i, 3600));
    const first = pool.zspageOf(pfnOf(pool, hs[0]));
    expect(first?.pages).toHaveLength(8);
    const p = m.mem.pages;
    expect(first?.pages.map((q) => (p.flags[q] >> PG.private) & 1)).toEqual([
      1, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expectClean(m);
  });

  it('keeps the handle in the object header and reuses freed objects LIFO', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 10, 100);
    const slot = hs[3] % 2 ** 26;
    const idx = pool.handles.idx[slot];
    pool.zsFree(hs[3]);
    const h = pool.zsMalloc(100);
    expect(pool.handles.idx[h % 2 ** 26]).toBe(idx);
    expect(pool.classFor(100).objUsed).toBe(10);
    expectClean(m);
  });

  it('frees the zspage when its last object goes and returns the pages to the buddy', () => {
    const { m, pool } = rig(profile);
    const free0 = m.mem.populatedZones[0].nrFreePages;
    const hs = fill(pool, 40, 500);
    expect(pool.pagesAllocated).toBeGreaterThan(0);
    for (const h of hs) pool.zsFree(h);
    expect(pool.pagesAllocated).toBe(0);
    expect(m.mem.populatedZones[0].nrFreePages).toBe(free0);
    expectClean(m);
  });

  it('huge objects keep the handle outside the data', () => {
    const { m, pool } = rig(profile);
    const h = pool.zsMalloc(4096);
    pool.objWrite(h, pattern(5, 4096));
    expect(pool.classFor(4096).huge).toBe(true);
    expect(pool.objRead(h)).toEqual(pattern(5, 4096));
    expect(pool.hugeObjects).toBe(1);
    expectClean(m);
    pool.zsFree(h);
    expect(pool.hugeObjects).toBe(0);
    expectClean(m);
  });

  it('bad input: a clear MopsError and nothing in the pool changes', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 5, 200);
    const snap = (): string =>
      `${procView(m, 'buddyinfo')}${pool.pagesAllocated}/${pool.classFor(200).objUsed}/${classesView(pool)}`;
    const err = (f: () => unknown): MopsError => {
      try {
        f();
      } catch (e) {
        return e as MopsError;
      }
      throw new Error('no error');
    };
    expect(err(() => pool.zsMalloc(0))).toMatchObject({ name: 'MopsError', code: 'E_RANGE' });
    expect(err(() => pool.zsMalloc(4097))).toMatchObject({ code: 'E_RANGE' });
    for (const gfp of ['x', Number.NaN, -1])
      for (const size of [200, 3000])
        expect(err(() => pool.zsMalloc(size, gfp as never))).toMatchObject({
          code: 'E_RANGE',
          field: 'gfp',
        });
    expect(err(() => pool.zsFree(12345))).toMatchObject({ code: 'E_USAGE' });
    pool.zsFree(hs[0]);
    const after0 = pool.classFor(200).objUsed;
    const before = snap();
    expect(err(() => pool.zsFree(hs[0]))).toMatchObject({ code: 'E_STATE' });
    expect(err(() => pool.objRead(hs[0]))).toMatchObject({ code: 'E_STATE' });
    expect(err(() => pool.objWrite(hs[1], new Uint8Array(201)))).toMatchObject({ code: 'E_RANGE' });
    expect(err(() => pool.objWrite(hs[1], new Uint8Array(10), 195))).toMatchObject({
      code: 'E_RANGE',
    });
    expect(pool.classFor(200).objUsed).toBe(after0);
    expect(snap()).toBe(before);
    expect(pool.objRead(hs[1])).toEqual(pattern(1, 200));
    expectClean(m);
  });

  it('a handle of another pool of the machine is not one of this pool: E_USAGE, nothing freed', () => {
    const { m, pool } = rig(profile);
    const other = createZsPool(m, { name: 'zram1' });
    const ha = pool.zsMalloc(100);
    const hb = other.zsMalloc(200);
    expect(ha).not.toBe(hb);
    expect(() => other.zsFree(ha)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(() => pool.objRead(hb)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(other.isLive(hb)).toBe(true);
    expect(pool.isLive(ha)).toBe(true);
    // A freed handle of its own is still E_STATE.
    other.zsFree(hb);
    expect(() => other.zsFree(hb)).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    pool.zsFree(ha);
    expectClean(m);
  });

  it('a corrupted object header is a kernel BUG (MmBug)', () => {
    const { pool } = rig(profile);
    const [h] = fill(pool, 1, 64);
    const pfn = pfnOf(pool, h);
    const off = pool.handles.idx[h % 2 ** 26] * pool.classFor(64).size;
    pool.bytes.u8[pfn * 4096 + off] ^= 2;
    expect(() => pool.zsFree(h)).toThrow(MmBug);
  });

  it('reports a failed allocation as the release does: handle 0 (v4.8) or ENOMEM', () => {
    const { m, pool } = rig(profile, '2M');
    let h = 1;
    for (let i = 0; i < 2000 && h > 0; i++) h = pool.zsMalloc(4096);
    expect(h).toBe(profile === 'v4.8' ? 0 : Errno.ENOMEM);
    expectClean(m);
  });
});

describe.each(PROFILES)('plugin and text views, %s', (profile) => {
  it('registers the pool and the classes / mm_stat views in the kernel layouts', () => {
    const m = createMachine({
      memory: '8M',
      profile,
      contents: true,
      zones: 'normal-only',
      minFreeKbytes: 0,
    });
    installPlugin(m, zsmallocPluginForTest);
    const pool = m.container.resolve<ZsPool>(ZS_POOL);
    fill(pool, 3, 100);
    const classes = procView(m, 'zsmalloc/classes').split('\n');
    const header = classes[0];
    if (profile === 'v6.17') expect(header).toMatch(/^ class {2}size {7}10%.* 100% obj_allocated/);
    else
      expect(header).toBe(
        ' class  size almost_full almost_empty obj_allocated   obj_used pages_used pages_per_zspage freeable',
      );
    expect(classes).toHaveLength(119 + 4);
    const row = classes.find((l) => /^\s+5\s+112 /.test(l));
    expect(row).toBeDefined();
    expect(row?.trim().split(/\s+/).slice(-5)).toEqual(['256', '3', '7', '7', '0']);
    expect(classes[classes.length - 2]).toMatch(/^ Total/);
    const mm = procView(m, 'zram/mm_stat').trimEnd().split(/\s+/).filter(Boolean);
    expect(mm).toHaveLength(profile === 'v4.8' ? 7 : 9);
    expect(mm.slice(0, 3)).toEqual([String(3 * 4096), '300', String(7 * 4096)]);
    expectClean(m);
  });
});

describe('a pool on the largest machine with contents (4 GiB)', () => {
  it('writes, reads and frees objects: the object-header view spans all 2^32 bytes', () => {
    const m = createMachine({ memory: '4G', contents: true, profile: 'v6.3' });
    installPlugin(m, zsmallocPluginForTest);
    const pool = m.container.resolve<ZsPool>(ZS_POOL);
    const hs = [100, 3600].map((size, i) => {
      const h = pool.zsMalloc(size);
      pool.objWrite(h, pattern(i, size));
      return h;
    });
    expect(pool.objRead(hs[0])).toEqual(pattern(0, 100));
    expect(pool.objRead(hs[1])).toEqual(pattern(1, 3600));
    for (const h of hs) pool.zsFree(h);
    expect(pool.pagesAllocated).toBe(0);
    expectClean(m);
  });
});

describe.each(PROFILES)('SetZsPageMovable, %s', (profile) => {
  it('warns (WARN_ON, every time) for each sub-page someone else holds locked, and leaves it unpublished', () => {
    const { m, pool } = rig(profile);
    const mem = m.mem;
    m.sched.manual = true;
    // 3600-byte objects: a zspage of several sub-pages, all published in one SetZsPageMovable.
    const t = m.sched.spawn('zs_malloc', () => pool.zsMallocTask(3600));
    const held: number[] = [];
    for (let i = 0; i < 2; i++) {
      const p = m.sched.runUntil(t, (pt) => pt.op === 'trylock_page');
      const pfn = (p as { pfn: number }).pfn;
      expect(trylockPage(mem, pfn)).toBe(true);
      held.push(pfn);
    }
    const handle = m.sched.runToEnd(t);
    m.sched.manual = false;
    expect(handle).toBeGreaterThan(0);
    const warns = mem.warnings.filter((w) => w.text.includes('SetZsPageMovable'));
    expect(warns.map((w) => [w.kind, w.pfn])).toEqual(held.map((pfn) => ['WARN_ON', pfn]));
    // The two sub-pages were not published; the others were.
    const zs = pool.zspageOf(held[0]);
    expect(zs?.pages.length).toBeGreaterThan(2);
    for (const pfn of zs?.pages ?? [])
      expect(page_has_movable_ops(mem, pfn)).toBe(!held.includes(pfn));
    for (const pfn of held) unlockPage(m, pfn);
  });
});

describe('handle values of the pools of one machine', () => {
  it('never meet: the 65th pool starts apart from the first, and churn on one slot never reaches another pool’s values', () => {
    const { m, pool } = rig('v6.3');
    const pools = [pool];
    for (let i = 1; i < 65; i++) pools.push(createZsPool(m, { name: `zram${i}` }));
    const h0 = pools[0].zsMalloc(100);
    const h64 = pools[64].zsMalloc(100);
    expect(h64).not.toBe(h0);
    expect(() => pools[0].zsFree(h64)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(pools[64].isLive(h64)).toBe(true);
    expect(pools[0].isLive(h0)).toBe(true);
    // One slot of one table freed and allocated again, past every generation it has.
    const a = new HandleTable(0);
    const b = new HandleTable(1);
    const hb = b.alloc();
    b.pfn[hb % HANDLE_SLOTS] = 0;
    const seen = new Set<number>();
    let met = 0;
    for (let i = 0; i < 2 ** 19; i++) {
      const ha = a.alloc();
      a.pfn[ha % HANDLE_SLOTS] = 0;
      if (ha === hb || b.issued(ha) || a.issued(hb)) met++;
      seen.add(ha);
      a.release(ha);
    }
    expect(met).toBe(0);
    // Values come back only after 2^18 generations, as the kernel's addresses come back.
    expect(seen.size).toBe(2 ** 18);
    pools[0].zsFree(h0);
    pools[64].zsFree(h64);
    expectClean(m);
  });

  it('an object allocated after a slot went through 2^16 generations keeps its header: every handle stays below 2^52', () => {
    const { m, pool } = rig('v6.3');
    const kept = pool.zsMalloc(100);
    for (let i = 0; i < 2 ** 16 + 8; i++) pool.zsFree(pool.zsMalloc(100));
    const h = pool.zsMalloc(100);
    expect(h < 2 ** 52).toBe(true);
    pool.objWrite(h, pattern(3, 100));
    expect(pool.objRead(h)).toEqual(pattern(3, 100));
    expectClean(m);
    pool.zsFree(h);
    pool.zsFree(kept);
    expectClean(m);
  });

  it(`a machine has at most ${MAX_POOLS} pools: E_RANGE for the next, and no pool made`, () => {
    const { m } = rig('v6.3');
    for (let i = 1; i < MAX_POOLS; i++) createZsPool(m, { name: `zram${i}` });
    expect(() => createZsPool(m, { name: 'one-more' })).toThrow(
      expect.objectContaining({ code: 'E_RANGE', field: 'pool' }),
    );
    expectClean(m);
  });
});
