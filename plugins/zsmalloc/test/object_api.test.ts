import { Errno, isCpuRelax, type KernelGen, Livelock, MIGRATE_MODE, MmBug } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { HANDLE_SLOTS } from '../src/index.js';
import { isPinned } from '../src/pin.js';
import { removeZspage } from '../src/zspage.js';
import {
  expectClean,
  fill,
  isolate,
  migrate,
  mopsError,
  PROFILES,
  pattern,
  pfnOf,
  putback,
  rig,
  thrown,
} from './helpers.js';

describe.each(PROFILES)('bad input to the object API, %s', (profile) => {
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

  it('zsFree of an object that is mapped: v4.8 spins in pin_tag() until the unmap (a plain call alone: a Livelock) and holds the pin through the free; later releases free it', () => {
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
    const e = thrown(() => pool.zsFree(hs[1]));
    expect(e).toBeInstanceOf(Livelock);
    expect((e as Livelock).reason).toMatch(
      /^zsFree: spins at cpu_relax pfn=0x[0-9a-f]+ \(pin_tag\(handle \d+\): HANDLE_PIN_BIT held by code outside any task/,
    );
    expect(m.mem.halted).toBeUndefined();
    expect(pool.classFor(100).objUsed).toBe(used);
    expect(isPinned(pool, hs[1] % HANDLE_SLOTS)).toBe(true);
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
    s.runUntil(freer, isCpuRelax);
    expect(s.step(freer).op).toBe('cpu_relax');
    expect(freer.state).toBe('runnable');
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
    while (!isPinned(pool, slot)) s.step(second);
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
