import {
  checkInvariants,
  createMachine,
  installPlugin,
  type KernelGen,
  type Machine,
  MmBug,
  MopsError,
  type ProfileName,
  procView,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  checkZsmalloc,
  classesView,
  conformance,
  drive,
  mmStatView,
  registryOf,
  type ZsObjMapping,
} from '../src/index.js';
import { fill, PROFILES, pattern, pfnOf, thrown } from './helpers.js';
import { ZS_POOL, type ZsPool, zsmallocPluginForTest } from './plugin_ref.js';

interface Halted {
  m: Machine;
  pool: ZsPool;
  /** The BUG that halted the machine. */
  bugErr: MmBug;
  /**
   * Live handles, written with pattern(i, size): three objects of 100 bytes, two of 3600
   * (one mapped), one of 2000 alone in its zspage.
   */
  hs: number[];
  /** A mapping left open when the BUG came. */
  open: ZsObjMapping;
  /** The pool's views and counters just before the BUG. */
  before: string;
  /** zs_get_total_pages() just before the BUG. */
  pagesBefore: number;
}

/** The pool's state as its views, the buddy allocator and its locks show it. */
function snapshot(m: Machine, pool: ZsPool): string {
  const locks = [
    pool.lock.readers,
    pool.lock.writeLocked,
    ...pool.classes.map((c) => c.lock.locked),
    ...pool.registry.zspages.map((zs) => zs?.lock.cnt ?? '-'),
  ];
  return [
    procView(m, 'buddyinfo'),
    procView(m, 'zsmalloc/classes'),
    procView(m, 'zram/mm_stat'),
    `${pool.pagesAllocated} ${pool.pagesCompacted} ${pool.deferredFrees} ${pool.freeWorkPending}`,
    [...pool.handles.liveSlots()].join(','),
    locks.join(','),
  ].join('\n');
}

/**
 * A plugin pool with objects in several classes, room for zs_compact, one mapping open,
 * and a machine halted by a kernel BUG: a mapping ended twice (zspage_read_unlock of a
 * lock not read-held).
 */
function halted(profile: ProfileName): Halted {
  const m = createMachine({
    memory: '8M',
    profile,
    seed: 1,
    contents: true,
    zones: 'normal-only',
    minFreeKbytes: 0,
  });
  installPlugin(m, zsmallocPluginForTest);
  const pool = m.container.resolve<ZsPool>(ZS_POOL);
  const sparse = fill(pool, 64 * 4, 1000, 1000);
  sparse.forEach((h, i) => {
    if (i % 4 !== 0) pool.zsFree(h);
  });
  const hs = [...fill(pool, 3, 100), ...fill(pool, 2, 3600, 3), ...fill(pool, 1, 2000, 5)];
  const open = pool.drive(pool.objReadBegin(hs[3]));
  const ended = pool.drive(pool.objReadBegin(hs[0]));
  pool.objReadEnd(ended);
  const before = snapshot(m, pool);
  const pagesBefore = pool.totalPages();
  const bugErr = thrown(() => pool.objReadEnd(ended));
  expect(bugErr).toBeInstanceOf(MmBug);
  expect(m.mem.halted).toBe(bugErr);
  return { m, pool, bugErr: bugErr as MmBug, hs, open, before, pagesBefore };
}

/** The plain calls a halted machine refuses, each on a pool of its own. */
const REFUSED: [string, (h: Halted) => unknown][] = [
  ['zsMalloc', ({ pool }) => pool.zsMalloc(100)],
  ['zsMalloc of a class without a zspage', ({ pool }) => pool.zsMalloc(3000)],
  ['zsMalloc of a size out of range', ({ pool }) => pool.zsMalloc(0)],
  ['zsFree', ({ pool, hs }) => pool.zsFree(hs[0])],
  ['zsFree of the last object of a zspage', ({ pool, hs }) => pool.zsFree(hs[5])],
  ['zsFree of a mapped object', ({ pool, hs }) => pool.zsFree(hs[3])],
  ['zsFree of what a failed zsMalloc returns', ({ pool }) => pool.zsFree(0)],
  ['zsFree of a value never issued', ({ pool }) => pool.zsFree(12345)],
  ['objRead', ({ pool, hs }) => pool.objRead(hs[2])],
  ['objWrite', ({ pool, hs }) => pool.objWrite(hs[2], pattern(99, 100))],
  ['objReadBegin, driven', ({ pool, hs }) => pool.drive(pool.objReadBegin(hs[2]))],
  ['objReadEnd of the mapping still open', ({ pool, open }) => pool.objReadEnd(open)],
  ['zsCompact', ({ pool }) => pool.zsCompact()],
  ['flushDeferredFree', ({ pool }) => pool.flushDeferredFree()],
  ['pool.drive of a task form', ({ pool }) => pool.drive(pool.zsMallocTask(100))],
  ['drive() given the memory', ({ m, pool, hs }) => drive(pool.zsFreeTask(hs[0]), 'test', m.mem)],
  ['a task form in a task (Machine.run)', ({ m, pool }) => m.run(() => pool.zsCompactTask())],
  ['conformance.populate', ({ m }) => conformance.populate(m, 1)],
  ['conformance.release', ({ m, pool, hs }) => conformance.release(m, pfnOf(pool, hs[0]))],
];

describe.each(PROFILES)('the pool on a machine a kernel BUG halted, %s', (profile) => {
  it.each(REFUSED)('%s: E_HALTED naming the BUG, and nothing changes', (_what, call) => {
    const h = halted(profile);
    const { m, pool, bugErr, open, before } = h;
    const e = thrown(() => call(h));
    expect(e).toBeInstanceOf(MopsError);
    expect(e).toMatchObject({ code: 'E_HALTED' });
    expect((e as MopsError).message).toContain(bugErr.reason);
    expect(snapshot(m, pool)).toBe(before);
    // The mapping open when the BUG came is still held, and every object is intact.
    expect(open.zspage.lock.cnt).toBe(1);
    expect(m.mem.halted).toBe(bugErr);
    expect(checkInvariants(m).violations).toEqual([]);
  });

  it('what reads the pool for a post-mortem still works and shows the state the BUG left', () => {
    const { m, pool, hs, before, pagesBefore } = halted(profile);
    expect(snapshot(m, pool)).toBe(before);
    expect(classesView(pool)).toBe(procView(m, 'zsmalloc/classes'));
    expect(mmStatView(pool)).toBe(procView(m, 'zram/mm_stat'));
    expect(pool.totalPages()).toBe(pagesBefore);
    expect(pool.totalPages()).toBeGreaterThan(0);
    for (const [i, h] of hs.entries()) {
      expect(pool.isLive(h)).toBe(true);
      expect(pool.objSize(h)).toBe([100, 100, 100, 3600, 3600, 2000][i]);
      expect(pool.recordedChecksum(h)).toBeTypeOf('number');
      expect(pool.zspageOf(pfnOf(pool, h))?.cls).toBe(pool.classFor(pool.objSize(h)));
    }
    expect(checkZsmalloc(registryOf(m))).toEqual([]);
    expect(checkInvariants(m).violations).toEqual([]);
    expect(m.mem.halted).toBeInstanceOf(MmBug);
  });
});

describe('drive() without a machine', () => {
  it('runs a generator on a halted machine: only a call given the memory is refused', () => {
    const { m, pool, pagesBefore } = halted('v6.3');
    function* answer(): KernelGen<number> {
      yield { op: 'copy' };
      return 42;
    }
    expect(drive(answer(), 'test')).toBe(42);
    expect(thrown(() => drive(answer(), 'test', m.mem))).toMatchObject({ code: 'E_HALTED' });
    expect(pool.totalPages()).toBe(pagesBefore);
  });
});
