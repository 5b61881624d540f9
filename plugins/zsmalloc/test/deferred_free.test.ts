import { trylockPage, unlockPage } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { expectClean, onePage, PROFILES, pfnOf, rig } from './helpers.js';

describe.each(PROFILES)('the deferred-free work (kick_deferred_free), %s', (profile) => {
  it('zs_free outside a task queues one worker; the next run frees the zspage once its page is unlocked', () => {
    const { m, pool, P, hs } = onePage(profile);
    expect(trylockPage(m.mem, P)).toBe(true);
    for (const h of hs) pool.zsFree(h);
    expect(pool.freeWorkPending).toBe(true);
    expect(m.sched.tasks.map((t) => t.name)).toEqual(['kworker/zs_free']);
    unlockPage(m, P);
    m.run(function* () {
      yield { op: 'a task of its own' };
    });
    expect(pool.freeWorkPending).toBe(false);
    expect(pool.zspageOf(P)).toBeUndefined();
    expect(m.mem.pages.refcount[P]).toBe(0);
    expect(m.sched.tasks).toEqual([]);
    expectClean(m);
  });

  it('queued from inside a task, the worker starts when that task finishes its step and runs in the same run', () => {
    const { m, pool, P, hs } = onePage(profile);
    expect(trylockPage(m.mem, P)).toBe(true);
    m.run(function* () {
      for (const h of hs) yield* pool.zsFreeTask(h);
      expect(m.sched.tasks.map((t) => t.name)).toEqual(['main']);
      unlockPage(m, P);
    });
    expect(m.sched.tasks).toEqual([]);
    expect(pool.freeWorkPending).toBe(false);
    expect(pool.zspageOf(P)).toBeUndefined();
    expect(m.mem.pages.refcount[P]).toBe(0);
    expectClean(m);
  });
});

describe.each(PROFILES)('async_free_zspage order, %s', (profile) => {
  it('each class list is spliced at the head of the work list: the largest class is freed first', () => {
    const r = rig(profile);
    const small = r.pool.zsMalloc(2000);
    const big = r.pool.zsMalloc(3000);
    const smallPages = [...(r.pool.zspageOf(pfnOf(r.pool, small))?.pages ?? [])];
    const bigPages = [...(r.pool.zspageOf(pfnOf(r.pool, big))?.pages ?? [])];
    expect(smallPages.length).toBeGreaterThan(0);
    expect(bigPages.length).toBeGreaterThan(smallPages.length);
    // Locked first pages make zs_free defer both zspages to the work.
    const firsts = [smallPages[0], bigPages[0]];
    for (const pfn of firsts) expect(trylockPage(r.m.mem, pfn)).toBe(true);
    r.pool.zsFree(small);
    r.pool.zsFree(big);
    for (const pfn of firsts) unlockPage(r.m, pfn);
    const freed: number[] = [];
    r.m.trace.on('mm_page_free', (e) => freed.push(e.pfn));
    expect(r.pool.flushDeferredFree()).toBe(2);
    expect(freed).toEqual([...bigPages, ...smallPages]);
    expectClean(r.m);
  });
});
