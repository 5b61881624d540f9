import {
  allocPages,
  checkInvariants,
  createMachine,
  folioPut,
  GFP,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type ListId,
  type Machine,
  type MigrateResult,
  MopsError,
  migratePages,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
} from '@mops/core';
import { expect } from 'vitest';
import { createZsPool, type ZsPool } from '../src/index.js';

export const PROFILES = PROFILE_NAMES;

export interface Rig {
  m: Machine;
  pool: ZsPool;
  list: ListId;
  targets: number[];
  /** Targets handed back unused (put_new_page), in order. */
  returned: number[];
}

export function rig(profile: ProfileName, memory = '8M', seed = 1): Rig {
  const m = createMachine({
    memory,
    profile,
    seed,
    contents: true,
    zones: 'normal-only',
    minFreeKbytes: 0,
  });
  const pool = createZsPool(m);
  return { m, pool, list: m.mem.pages.lists.newList(), targets: [], returned: [] };
}

/** Bytes derived from a key, for writing and checking objects. */
export function pattern(key: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (key * 2654435761) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Allocates and writes `n` objects of `size`; returns their handles. */
export function fill(pool: ZsPool, n: number, size: number, key = 0): number[] {
  const hs: number[] = [];
  for (let i = 0; i < n; i++) {
    const h = pool.zsMalloc(size);
    if (h <= 0) throw new Error(`zsMalloc failed: ${h}`);
    pool.objWrite(h, pattern(key + i, size));
    hs.push(h);
  }
  return hs;
}

/** The pfn of the page where a handle's object starts. */
export function pfnOf(pool: ZsPool, h: number): number {
  return pool.handles.pfn[h % 2 ** 26];
}

/** Four 1000-byte objects fill one single-page zspage (class 1024/1/4). */
export function onePage(profile: ProfileName) {
  const r = rig(profile);
  const hs = fill(r.pool, 4, 1000);
  const P = pfnOf(r.pool, hs[0]);
  return { ...r, hs, P };
}

/**
 * Runs `body` as a task of its own to its end, leaving other live tasks (a queued
 * deferred-free worker) where they are: tests decide when the work runs.
 */
export function runOwn<T>(r: Rig, body: () => KernelGen<T>): T {
  return r.m.sched.runToEnd(r.m.sched.spawn('main', body));
}

export function isolate(r: Rig, pfn: number): boolean {
  const res = runOwn(r, () => isolateMovablePage(r.m, pfn, 0));
  if (isolatedOk(res)) r.m.mem.pages.lists.addTail(r.list, pfn);
  return isolatedOk(res);
}

export function getNew(r: Rig) {
  return (_src: number): number => {
    const pfn = allocPages(r.m.mem, GFP.HIGHUSER_MOVABLE, 0);
    if (pfn >= 0) r.targets.push(pfn);
    return pfn;
  };
}

export function migrateBody(r: Rig, mode: number): () => KernelGen<MigrateResult> {
  const putNew = (d: number) => {
    r.returned.push(d);
    folioPut(r.m.mem, d);
  };
  return () => migratePages(r.m, r.list, getNew(r), putNew, mode, 0);
}

export function migrate(r: Rig, mode = 0): MigrateResult {
  return runOwn(r, migrateBody(r, mode));
}

export function putback(r: Rig): void {
  runOwn(r, () => putbackMovablePages(r.m, r.list));
}

export function onList(r: Rig): number[] {
  return r.m.mem.pages.lists.toArray(r.list);
}

/** Invariants hold and nothing was warned about. */
export function expectClean(m: Machine): void {
  const rep = checkInvariants(m);
  const warns = m.mem.warnings.map((w) => `${w.kind}: ${w.text.split('\n')[0]}`);
  const sched = m.sched.warnings.map((w) => `${w.kind}: ${w.text.split('\n')[0]}`);
  const lockdep = m.sched.lockdep.reports.map((r) => `${r.kind}: ${r.text.split('\n')[0]}`);
  const all = [...rep.violations, ...warns, ...sched, ...lockdep];
  if (all.length) throw new Error(`not clean:\n${all.join('\n')}`);
}

/** The MopsError `f` throws (fails the test when it throws nothing or something else). */
export function mopsError(f: () => unknown): MopsError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(MopsError);
    return e as MopsError;
  }
  throw new Error('no error');
}

/** What `f` throws (fails the test when it throws nothing). */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('no error');
}
