import {
  checkInvariants,
  createMachine,
  Errno,
  installPlugin,
  type KernelGen,
  MIGRATE_MODE,
  MmBug,
  MopsError,
  PG,
  page_has_movable_ops,
  procView,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { classesView, HANDLE_SLOTS } from '../src/index.js';
import { removeZspage } from '../src/zspage.js';
import {
  expectClean,
  fill,
  isolate,
  migrate,
  PROFILES,
  pattern,
  pfnOf,
  putback,
  rig,
} from './helpers.js';
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

describe.each(PROFILES)('bad input to the object API, %s', (profile) => {
  /** The MopsError `f` throws (fails the test when it throws nothing or something else). */
  const mopsError = (f: () => unknown): MopsError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(MopsError);
      return e as MopsError;
    }
    throw new Error('no error');
  };

  it.each([
    ['a symbol', Symbol('h'), 'Symbol(h)'],
    ['an object', { h: 1 }, 'an object'],
  ])(
    'sizes, handles and offsets given %s are named in the error, and nothing changes',
    (_w, bad, shown) => {
      const { m, pool } = rig(profile);
      const [h] = fill(pool, 1, 100);
      const b = bad as never;
      for (const [call, field] of [
        [() => pool.zsMalloc(b), 'size'],
        [() => pool.zsFree(b), 'handle'],
        [() => pool.objRead(b), 'handle'],
        [() => pool.objWrite(h, new Uint8Array(4), b), 'offset'],
      ] as const) {
        const e = mopsError(call);
        expect(e).toMatchObject({ field });
        expect(e.message).toContain(shown);
      }
      expect(pool.objRead(h)).toEqual(pattern(0, 100));
      expectClean(m);
    },
  );

  it('zsFree of what zsMalloc returns on failure does nothing, as zs_free (0; from v6.0 an error value)', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 1, 100);
    const before = pool.pagesAllocated;
    pool.zsFree(0);
    m.run(() => pool.zsFreeTask(0));
    if (profile === 'v4.8') {
      // 4.8's zs_malloc fails with 0 only; a negative value is no handle of the pool.
      expect(mopsError(() => pool.zsFree(Errno.ENOMEM))).toMatchObject({ code: 'E_USAGE' });
    } else {
      pool.zsFree(Errno.ENOMEM);
      m.run(() => pool.zsFreeTask(-4095));
      expect(mopsError(() => pool.zsFree(-4096))).toMatchObject({ code: 'E_USAGE' });
    }
    expect(pool.pagesAllocated).toBe(before);
    expect(pool.objRead(h)).toEqual(pattern(0, 100));
    expectClean(m);
  });

  it('objReadEnd of a value that is not a mapping: E_USAGE naming it, and the read stays open', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 1, 100);
    const mp = pool.drive(pool.objReadBegin(h));
    const lock = mp.zspage.lock;
    for (const bad of [null, undefined, 7, {}, { handle: h }, { handle: h, zspage: {} }]) {
      const e = mopsError(() => pool.objReadEnd(bad as never));
      expect(e).toMatchObject({ code: 'E_USAGE', field: 'mapping' });
      expect(e.message).toMatch(/^objReadEnd: .* is not a mapping of pool zram0/);
    }
    expect(mopsError(() => pool.objReadEnd({ ...mp, handle: -1 }))).toMatchObject({
      code: 'E_USAGE',
    });
    expect(lock.cnt).toBe(1);
    expect(m.mem.halted).toBeUndefined();
    pool.objReadEnd(mp);
    expect(lock.cnt).toBe(0);
    expect(pool.objRead(h)).toEqual(pattern(0, 100));
    expectClean(m);
  });

  it('zsFree of an object that is mapped: v4.8 waits in pin_tag() for the unmap (a plain call cannot) and holds the pin through the free; later releases free it', () => {
    const r = rig(profile);
    const { m, pool } = r;
    const hs = fill(pool, 3, 100);
    const used = pool.classFor(100).objUsed;
    const mp = pool.drive(pool.objReadBegin(hs[1]));
    if (profile !== 'v4.8') {
      pool.zsFree(hs[1]);
      pool.objReadEnd(mp);
      expect(pool.classFor(100).objUsed).toBe(used - 1);
      expectClean(m);
      return;
    }
    const e = mopsError(() => pool.zsFree(hs[1]));
    expect(e).toMatchObject({ code: 'E_STATE' });
    expect(e.message).toMatch(
      /^zsFree: would wait for pin_tag\(handle\), which a task or a mapping still open holds/,
    );
    expect(pool.classFor(100).objUsed).toBe(used);
    expect(pool.handles.pinned[hs[1] % HANDLE_SLOTS]).toBe(1);
    pool.objReadEnd(mp);
    // A task frees it once the reader's mapping ends.
    const s = m.sched;
    const reader = s.spawn('reader', function* (): KernelGen {
      const open = yield* pool.objReadBegin(hs[1]);
      yield { op: 'hold' };
      pool.objReadEnd(open);
    });
    s.manual = true;
    s.runUntil(reader, (p) => p.op === 'hold');
    const freer = s.spawn('freer', () => pool.zsFreeTask(hs[1]));
    while (freer.state === 'runnable') s.step(freer);
    expect(freer.state).toBe('blocked');
    expect(pool.classFor(100).objUsed).toBe(used);
    s.manual = false;
    s.runAll();
    expect(freer.state).toBe('done');
    expect(pool.classFor(100).objUsed).toBe(used - 1);
    // A freer holds the pin until its free is done: migration (trypin_tag) leaves the object
    // alone meanwhile.
    const slot = hs[0] % HANDLE_SLOTS;
    s.manual = true;
    const second = s.spawn('freer2', () => pool.zsFreeTask(hs[0]));
    while (pool.handles.pinned[slot] === 0) s.step(second);
    expect(isolate(r, pfnOf(pool, hs[0]))).toBe(true);
    expect(migrate(r, MIGRATE_MODE.SYNC).nrSucceeded).toBe(0);
    putback(r);
    s.manual = false;
    s.runAll();
    expect(second.state).toBe('done');
    expect(pool.classFor(100).objUsed).toBe(used - 2);
    expect(pool.objRead(hs[2])).toEqual(pattern(2, 100));
    expectClean(m);
  });

  it('objWrite of data that is not a Uint8Array or a bad offset: its own message, not an overflow', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 1, 100);
    const before = pool.objRead(h);
    const sum = pool.recordedChecksum(h);
    for (const [data, kind] of [
      [[1, 2, 3], 'an array'],
      ['hello', '"hello"'],
      [null, 'null'],
    ] as const) {
      const e = mopsError(() => pool.objWrite(h, data as unknown as Uint8Array));
      expect(e).toMatchObject({ code: 'E_USAGE', field: 'data' });
      expect(e.message).toBe(`objWrite: data must be a Uint8Array, got ${kind}`);
    }
    for (const offset of ['5', -1, 1.5, Number.NaN]) {
      const e = mopsError(() => pool.objWrite(h, new Uint8Array(10), offset as number));
      expect(e).toMatchObject({ code: 'E_RANGE', field: 'offset' });
      expect(e.message).toMatch(/^objWrite: offset must be a non-negative integer, got /);
    }
    const e = mopsError(() => pool.objWrite(h, new Uint8Array(10), 95));
    expect(e).toMatchObject({ code: 'E_RANGE', field: 'data' });
    expect(e.message).toMatch(/10 bytes at offset 95 do not fit in the 100-byte object/);
    expect(pool.objRead(h)).toEqual(before);
    expect(pool.recordedChecksum(h)).toBe(sum);
    expectClean(m);
  });

  it('objReadEnd twice, a zspage write unlock not write-held or a second remove_zspage is a BUG that halts the machine', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 1, 100);
    const mp = pool.drive(pool.objReadBegin(h));
    pool.objReadEnd(mp);
    expect(() => pool.objReadEnd(mp)).toThrow(/BUG: zspage_read_unlock: not read-locked/);
    expect(m.mem.halted).toBeInstanceOf(MmBug);
    expect(m.mem.halted?.dump).not.toBe('');
    expect(() => m.run(function* () {})).toThrow(expect.objectContaining({ code: 'E_HALTED' }));
    expect(mp.zspage.lock.cnt).toBe(0);

    const r = rig(profile);
    const [h2] = fill(r.pool, 1, 100);
    const zs = r.pool.zspageOf(pfnOf(r.pool, h2))!;
    expect(() => zs.lock.writeUnlock()).toThrow(/BUG: zspage_write_unlock: not write-locked/);
    expect(r.m.mem.halted).toBeInstanceOf(MmBug);

    const r3 = rig(profile);
    const [h3] = fill(r3.pool, 1, 100);
    const zs3 = r3.pool.zspageOf(pfnOf(r3.pool, h3))!;
    removeZspage(zs3.cls, zs3);
    expect(() => removeZspage(zs3.cls, zs3)).toThrow(/VM_BUG_ON\(list_empty/);
    expect(r3.m.mem.halted).toBeInstanceOf(MmBug);
  });
});

describe.each(PROFILES)('zs_compact, %s (spec §7.6)', (profile) => {
  it('moves objects out of sparse zspages, frees them and keeps every object intact', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 64 * 4, 1000); // class 1008 -> 1024? 1000+8 -> 1008 -> index 62 (1024/1/4)
    const keep = hs.filter((_, i) => i % 4 === 0);
    hs.forEach((h, i) => {
      if (i % 4 !== 0) pool.zsFree(h);
    });
    const before = pool.pagesAllocated;
    const freed = pool.zsCompact();
    expect(freed).toBeGreaterThan(0);
    expect(pool.pagesAllocated).toBe(before - freed);
    expect(pool.pagesCompacted).toBe(freed);
    // Nothing left to compact: v4.8 returns the running total, later releases this call's 0.
    expect(pool.zsCompact()).toBe(profile === 'v4.8' ? freed : 0);
    expect(pool.pagesCompacted).toBe(freed);
    for (const h of keep) expect(pool.objRead(h)).toEqual(pattern(hs.indexOf(h), 1000));
    expectClean(m);
  });

  it('pages_compacted (mm_stat num_migrated) grows as each source is freed in v4.8, at the end of the call from 5.12', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 64 * 4, 1000);
    hs.forEach((h, i) => {
      if (i % 4 !== 0) pool.zsFree(h);
    });
    const t = m.sched.spawn('compact', () => pool.zsCompactTask());
    m.sched.manual = true;
    const seen = new Set<number>();
    while (t.state === 'runnable') {
      m.sched.step(t);
      seen.add(pool.pagesCompacted);
    }
    m.sched.manual = false;
    const total = pool.pagesCompacted;
    expect(t.result).toBe(total);
    expect(total).toBeGreaterThan(4);
    // v4.8 passes through every multiple of the class's pages per zspage; later releases
    // jump from 0 to the total when the call ends.
    const per = pool.classes.find((c) => c.size >= 1008)?.pagesPerZspage ?? 0;
    if (profile === 'v4.8')
      expect([...seen].sort((a, b) => a - b)).toEqual(
        Array.from({ length: total / per + 1 }, (_, i) => per * i),
      );
    else expect([...seen].sort((a, b) => a - b)).toEqual([0, total]);
    expectClean(m);
  });

  it('a call while another compacts: v6.17 turns it away (compaction_in_progress), earlier releases wait on the pool lock and run', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 64 * 8, 1000);
    hs.forEach((h, i) => {
      if (i % 4 !== 0) pool.zsFree(h);
    });
    const a = m.sched.spawn('compact-a', () => pool.zsCompactTask());
    const b = m.sched.spawn('compact-b', () => pool.zsCompactTask());
    // A runs until it holds pool->lock for write; then B takes its first steps.
    while (!pool.lock.writeLocked) m.sched.step(a);
    for (let i = 0; i < 3 && b.state === 'runnable'; i++) m.sched.step(b);
    if (profile === 'v6.17') {
      expect(b.state).toBe('done');
      expect(b.result).toBe(0);
    } else expect(b.state).toBe('blocked');
    m.sched.runAll('round-robin');
    const total = pool.pagesCompacted;
    expect(total).toBeGreaterThan(0);
    // v4.8 returns the running total when each call ends; later releases this call's pages.
    if (profile === 'v4.8') expect(b.result).toBe(total);
    else expect((a.result as number) + (b.result as number)).toBe(total);
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

describe.each(PROFILES)('a plain call that would wait for a task’s lock, %s', (profile) => {
  /** Runs `hold` in a task up to its 'hold' point; returns a function that lets it finish. */
  function holding(m: ReturnType<typeof rig>['m'], hold: () => Generator<{ op: string }, void>) {
    m.sched.manual = true;
    const t = m.sched.spawn('holder', hold);
    m.sched.runUntil(t, (p) => p.op === 'hold');
    return () => {
      m.sched.runToEnd(t);
      m.sched.manual = false;
    };
  }

  it('zsFree, zsMalloc: E_STATE, and the pool is as before (locks, handles, objects)', () => {
    const { m, pool } = rig(profile);
    const hs = [pool.zsMalloc(100), pool.zsMalloc(100), pool.zsMalloc(100)];
    pool.objWrite(hs[0], pattern(1, 100));
    const cls = pool.classFor(100);
    const release = holding(m, function* () {
      yield* cls.lock.lock();
      yield { op: 'hold' };
      cls.lock.unlock();
    });
    expect(() => pool.zsFree(hs[0])).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    expect(() => pool.zsMalloc(100)).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    expect(pool.lock.readers).toBe(0);
    release();
    expect(pool.objRead(hs[0])).toEqual(pattern(1, 100));
    pool.zsFree(hs[0]);
    expect(pool.zsMalloc(100)).toBeGreaterThan(0);
    pool.zsCompact(); // takes pool->lock for write: nobody was left holding it
    expectClean(m);
  });

  it('objWrite, objRead: E_STATE, no pool lock or pin left behind', () => {
    const { m, pool } = rig(profile);
    const hs = [pool.zsMalloc(100), pool.zsMalloc(100)];
    const slot = hs[0] % 2 ** 26;
    const zs = pool.zspageOf(pool.handles.pfn[slot])!;
    const release = holding(m, function* () {
      zs.lock.writeTrylock();
      yield { op: 'hold' };
      zs.lock.writeUnlock();
    });
    expect(() => pool.objWrite(hs[0], pattern(2, 100))).toThrow(
      expect.objectContaining({ code: 'E_STATE' }),
    );
    expect(() => pool.objRead(hs[0])).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    expect([pool.lock.readers, pool.handles.pinned[slot] ?? 0]).toEqual([0, 0]);
    release();
    pool.objWrite(hs[0], pattern(2, 100));
    expect(pool.objRead(hs[0])).toEqual(pattern(2, 100));
    pool.zsCompact();
    expectClean(m);
  });

  it('zsCompact while a task holds a class lock: E_STATE before compacting anything', () => {
    const { m, pool } = rig(profile);
    const hs = fill(pool, 64 * 4, 1000);
    hs.forEach((h, i) => {
      if (i % 4 !== 0) pool.zsFree(h);
    });
    const allocated = pool.pagesAllocated;
    const cls = pool.classFor(100);
    const release = holding(m, function* () {
      yield* cls.lock.lock();
      yield { op: 'hold' };
      cls.lock.unlock();
    });
    expect(() => pool.zsCompact()).toThrow(/would wait for spin_lock/);
    expect([pool.pagesAllocated, pool.pagesCompacted]).toEqual([allocated, 0]);
    release();
    expect(pool.zsCompact()).toBeGreaterThan(0);
    expectClean(m);
  });

  it('zsFree while a task holds pool->lock for write: E_STATE, and the lock’s queue is clean', () => {
    const { m, pool } = rig(profile);
    const hs = [pool.zsMalloc(100), pool.zsMalloc(100)];
    const release = holding(m, function* () {
      yield* pool.lock.writeLock();
      yield { op: 'hold' };
      pool.lock.writeUnlock();
    });
    expect(() => pool.zsFree(hs[0])).toThrow(expect.objectContaining({ code: 'E_STATE' }));
    release();
    pool.zsFree(hs[0]);
    pool.zsCompact();
    expectClean(m);
  });
});

describe.each(PROFILES)(
  'object accessors and preemption, %s (zsmalloc-by-profile C10)',
  (profile) => {
    const atomic = profile !== 'v6.17';

    it(`sleeping while an object is mapped ${atomic ? 'is a sleep in atomic context' : 'is allowed (v6.17)'}`, () => {
      const { m, pool } = rig(profile);
      const h = pool.zsMalloc(100);
      const s = m.sched;
      s.spawn('reader', function* () {
        const map = yield* pool.objReadBegin(h);
        yield { op: 'block', key: 'wq', what: 'wait_event(wq)' };
        pool.objReadEnd(map);
      });
      s.spawn('waker', function* () {
        yield { op: 'wake_up' };
        s.wake('wq');
      });
      s.runAll('run-to-completion');
      expect(s.warnings.map((w) => w.kind)).toEqual(atomic ? ['sleep_in_atomic'] : []);
      expect(checkInvariants(m).ok).toBe(true);
    });
  },
);

// v6.0/v6.3 migration spins for the zspage lock (migrate_write_lock); the others trylock it.
describe.each(['v6.0', 'v6.3'] as const)(
  'a reader and a spinning writer on one CPU, %s',
  (profile) => {
    it('a reader keeps its CPU: a writer spinning on the same CPU waits for it, no lockup', () => {
      for (let seed = 1; seed <= 50; seed++) {
        const { m, pool } = rig(profile, '8M', seed);
        const zs = pool.zspageOf(pool.handles.pfn[pool.zsMalloc(100) % 2 ** 26])!;
        const s = m.sched;
        const order: string[] = [];
        s.spawn(
          'reader',
          function* () {
            yield* zs.lock.readLock();
            yield { op: 'copy' };
            order.push('read');
            zs.lock.readUnlock();
          },
          { cpu: 0 },
        );
        s.spawn(
          'migrator',
          function* () {
            yield* zs.lock.writeLockSpin();
            order.push('write');
            zs.lock.writeUnlock();
          },
          { cpu: 0 },
        );
        s.runAll('random');
        expect(order).toHaveLength(2);
      }
    });
  },
);

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
