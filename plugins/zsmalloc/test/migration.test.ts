import {
  checkInvariants,
  getPage,
  ISOLATED,
  isolateMovablePage,
  type Machine,
  MIGRATE_MODE,
  MmBug,
  PAGE_MAPPING_MOVABLE,
  PG,
  PGTY,
  putPage,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { zspageOfPage } from '../src/registry.js';
import {
  expectClean,
  fill,
  isolate,
  migrate,
  migrateBody,
  onePage,
  onList,
  PROFILES,
  pattern,
  pfnOf,
  putback,
  rig,
} from './helpers.js';

const ISO = 1 << PG.isolated;

/**
 * Steps every task one point at a time from now on and records, at each point that names
 * `pfn`, the primitive about to run with Q's refcount and isolated flag at that moment.
 */
function stepsOn(m: Machine, pfn: number): { op: string; ref: number; iso: boolean }[] {
  const seen: { op: string; ref: number; iso: boolean }[] = [];
  m.sched.manual = true;
  m.sched.onStep = (_t, pt) => {
    if ((pt as { pfn?: number }).pfn === pfn)
      seen.push({
        op: pt.op,
        ref: m.mem.pages.refcount[pfn],
        iso: !!(m.mem.pages.flags[pfn] & ISO),
      });
  };
  return seen;
}

/**
 * The putback of Q whose owner released it: the VM clears the isolated flag itself before
 * its final put (which frees Q), not leaving it to the free.
 */
function expectIsoClearedBeforeFinalPut(
  m: Machine,
  seen: { op: string; ref: number; iso: boolean }[],
): void {
  const { clearIsolated: clear, put } = m.profile.pointNames;
  const ops = seen.map((s) => s.op);
  expect(ops).toContain(clear);
  expect(ops.lastIndexOf(put)).toBeGreaterThan(ops.indexOf(clear));
  expect(seen[ops.lastIndexOf(put)]).toEqual({ op: put, ref: 1, iso: false });
}

describe.each(PROFILES)('zs_page_migrate moves objects, %s (spec §7.4)', (profile) => {
  it('migrates every sub-page of a spanning zspage; handles follow, bytes intact', () => {
    const r = rig(profile);
    const hs = fill(r.pool, 9, 3600, 7);
    const zs = r.pool.zspageOf(pfnOf(r.pool, hs[0]));
    const old = [...(zs?.pages ?? [])];
    for (const pfn of old) expect(isolate(r, pfn)).toBe(true);
    const res = migrate(r, MIGRATE_MODE.SYNC);
    expect(res.rc).toBe(0);
    expect(res.nrSucceeded).toBe(8);
    // Freed sources are reused as later targets, so compare with the targets handed out.
    expect(zs?.pages).toEqual(r.targets);
    for (const pfn of old)
      if (!r.targets.includes(pfn)) expect(r.m.mem.pages.refcount[pfn]).toBe(0);
    hs.forEach((h, i) => {
      expect(r.targets).toContain(pfnOf(r.pool, h));
      expect(r.pool.objRead(h)).toEqual(pattern(7 + i, 3600));
    });
    expect(r.pool.registry.calls.migrate).toBe(8);
    expectClean(r.m);
  });
});

describe('S08 driver refuses isolation (§0.2: v4.8 and v6.17)', () => {
  it('S08 v4.8: a zspage with no object in use (free deferred) is refused and stays', () => {
    const r = onePage('v4.8');
    const { m, pool, P } = r;
    expect(trylockPage(m.mem, P)).toBe(true);
    for (const h of r.hs) pool.zsFree(h);
    expect(pool.freeWorkPending).toBe(true);
    unlockPage(r.m, P);
    expect(isolate(r, P)).toBe(false);
    expect(pool.registry.calls.isolate).toBe(1);
    expect(m.mem.pages.flags[P] & ISO).toBe(0);
    expect(m.mem.pages.refcount[P]).toBe(1);
    expect(pool.zspageOf(P)).toBeDefined();
    expectClean(m);
    expect(pool.flushDeferredFree()).toBe(1);
    expect(m.mem.pages.refcount[P]).toBe(0);
    expectClean(m);
  });

  it('S08 v6.17: the scanner holds a reference, the zspage is destroyed, isolate_page refuses', () => {
    const r = onePage('v6.17');
    const { m, pool, P } = r;
    m.sched.manual = true;
    const t = m.sched.spawn('isolate', () => isolateMovablePage(m, P, 0));
    m.sched.runUntil(t, (pt) => pt.op === 'page_has_movable_ops');
    expect(m.mem.pages.refcount[P]).toBe(2);
    for (const h of r.hs) pool.zsFree(h);
    expect(m.mem.pages.refcount[P]).toBe(1);
    expect(m.mem.pages.priv[P]).toBe(0);
    expect(m.mem.pages.type[P] >>> 24).toBe(PGTY.zsmalloc);
    expect(m.sched.runToEnd(t)).toBe(false);
    m.sched.manual = false;
    expect(pool.registry.calls.isolate).toBe(1);
    expect(m.mem.pages.refcount[P]).toBe(0);
    expect(m.mem.pages.type[P] >>> 24).toBe(PGTY.buddy);
    expect(m.mem.pages.flags[P] & (1 << PG.movable_ops)).toBe(0);
    expectClean(m);
  });
});

describe.each(['v6.0', 'v6.3'] as const)('S19 with zsmalloc, %s', (profile) => {
  it('S19 owner frees the zspage of an isolated page, then putback frees it without the driver', () => {
    const r = onePage(profile);
    const { m, pool, P } = r;
    expect(isolate(r, P)).toBe(true);
    expect(m.mem.pages.refcount[P]).toBe(2);
    for (const h of r.hs) pool.zsFree(h);
    expect(m.mem.pages.refcount[P]).toBe(1);
    expect(m.mem.pages.mapping[P]).toBe(PAGE_MAPPING_MOVABLE);
    const seen = stepsOn(m, P);
    putback(r);
    expect(pool.registry.calls.putback).toBe(0);
    expectIsoClearedBeforeFinalPut(m, seen);
    expect(m.mem.pages.refcount[P]).toBe(0);
    expectClean(m);
  });
});

describe('S21 zspage destroyed while a sub-page is isolated (v6.17)', () => {
  it('S21 migrate: the refcount==1 shortcut succeeds without a target; Q is freed', () => {
    const r = onePage('v6.17');
    const { m, pool, P } = r;
    expect(isolate(r, P)).toBe(true);
    for (const h of r.hs) pool.zsFree(h);
    expect(m.mem.pages.refcount[P]).toBe(1);
    const ok = m.mem.vmstat.get('pgmigrate_success');
    const res = migrate(r, MIGRATE_MODE.SYNC_LIGHT);
    expect(res).toMatchObject({ rc: 0, nrSucceeded: 1 });
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(ok + 1);
    // In the shortcut the VM does not clear the isolated flag: free_pages_prepare does (§0.2),
    // so there is no step at which to check it; Q being freed cleanly is the end state.
    expect(r.targets).toEqual([]);
    expect(pool.registry.calls.migrate).toBe(0);
    expect(m.mem.pages.refcount[P]).toBe(0);
    expectClean(m);
  });

  it('S21 zs_page_migrate fakes success when another reference hides the shortcut', () => {
    const r = onePage('v6.17');
    const { m, pool, P } = r;
    expect(isolate(r, P)).toBe(true);
    for (const h of r.hs) pool.zsFree(h);
    getPage(m.mem, P);
    const ok = m.mem.vmstat.get('pgmigrate_success');
    const res = migrate(r, MIGRATE_MODE.ASYNC);
    expect(res).toMatchObject({ rc: 0, nrSucceeded: 1 });
    expect(m.mem.vmstat.get('pgmigrate_success')).toBe(ok + 1);
    expect(pool.registry.calls.migrate).toBe(1);
    expect(m.mem.pages.refcount[r.targets[0]]).toBe(0);
    // The VM cleared the isolated flag on success; only the extra reference keeps Q.
    expect(m.mem.pages.refcount[P]).toBe(1);
    expect(m.mem.pages.flags[P] & ISO).toBe(0);
    putPage(m.mem, P);
    expect(m.mem.pages.refcount[P]).toBe(0);
    // §4.3: a 0 return after the owner released src leaves dst untouched; that is the
    // protocol in v6.17, so the core records no violation.
    expect(m.mem.warnings).toEqual([]);
    m.mem.warnings.length = 0;
    expectClean(m);
  });

  it('S21 putback variant: zs_page_putback does nothing, the isolated flag is cleared, Q freed', () => {
    const r = onePage('v6.17');
    const { m, pool, P } = r;
    expect(isolate(r, P)).toBe(true);
    for (const h of r.hs) pool.zsFree(h);
    const seen = stepsOn(m, P);
    putback(r);
    expect(pool.registry.calls.putback).toBe(1);
    expectIsoClearedBeforeFinalPut(m, seen);
    expect(m.mem.pages.refcount[P]).toBe(0);
    expectClean(m);
  });
});

describe('zsmalloc per profile (§0.2 table, zsmalloc-by-profile §4)', () => {
  it.each(['v6.0', 'v6.3'] as const)(
    'isolate_page never refuses, even an empty zspage (%s)',
    (profile) => {
      const r = onePage(profile);
      trylockPage(r.m.mem, r.P);
      for (const h of r.hs) r.pool.zsFree(h);
      unlockPage(r.m, r.P);
      expect(isolate(r, r.P)).toBe(true);
      expect(r.pool.zspageOf(r.P)?.isolated).toBe(1);
      putback(r);
      expect(r.pool.zspageOf(r.P)?.isolated).toBe(0);
      expect(r.pool.flushDeferredFree()).toBe(1);
      expectClean(r.m);
    },
  );

  it('v4.8: isolation takes the zspage off its list; allocation goes elsewhere until putback', () => {
    const r = rig('v4.8');
    const hs = fill(r.pool, 2, 1000);
    const P = pfnOf(r.pool, hs[0]);
    const zs = r.pool.zspageOf(P);
    expect(isolate(r, P)).toBe(true);
    expect(zs?.listed).toBe(-1);
    expect(zs?.isolated).toBe(1);
    const h = r.pool.zsMalloc(1000);
    expect(pfnOf(r.pool, h)).not.toBe(P);
    expect(r.pool.pagesAllocated).toBe(2);
    expectClean(r.m);
    putback(r);
    expect(zs?.listed).toBeGreaterThan(0);
    expect(zs?.isolated).toBe(0);
    expect(pfnOf(r.pool, r.pool.zsMalloc(1000))).toBe(P);
    expectClean(r.m);
  });

  it.each(['v6.0', 'v6.3'] as const)(
    '%s: the zspage stays on its list and is allocated from',
    (profile) => {
      const r = rig(profile);
      const hs = fill(r.pool, 2, 1000);
      const P = pfnOf(r.pool, hs[0]);
      expect(isolate(r, P)).toBe(true);
      expect(r.pool.zspageOf(P)?.listed).toBeGreaterThan(0);
      expect(pfnOf(r.pool, r.pool.zsMalloc(1000))).toBe(P);
      putback(r);
      expectClean(r.m);
    },
  );

  it('v6.17: no isolation bookkeeping', () => {
    const r = onePage('v6.17');
    expect(isolate(r, r.P)).toBe(true);
    expect(r.pool.zspageOf(r.P)?.isolated).toBe(0);
    putback(r);
    expectClean(r.m);
  });

  // S15 in v4.8 uses zsmalloc's -EBUSY (zsmalloc-by-profile §7.1): one driver call in any
  // mode, the page put back inside migrate_pages, so the caller's putback finds nothing.
  it.each(['ASYNC', 'SYNC'] as const)(
    'S15 v4.8 %s: -EBUSY for an isolated zspage emptied meanwhile; the putback inside migrate_pages relists it and the work frees it',
    (mode) => {
      const r = onePage('v4.8');
      const { m, pool, P } = r;
      expect(isolate(r, P)).toBe(true);
      for (const h of r.hs) pool.zsFree(h);
      expect(pool.zspageOf(P)).toBeDefined();
      expect(pool.pagesAllocated).toBe(1);
      const fail = m.mem.vmstat.get('pgmigrate_fail');
      const res = migrate(r, MIGRATE_MODE[mode]);
      expect(res.rc).toBe(1);
      expect(pool.registry.calls.migrate).toBe(1);
      expect(r.targets).toHaveLength(1);
      expect(r.returned).toEqual(r.targets);
      expect(m.mem.vmstat.get('pgmigrate_fail')).toBe(fail + 1);
      expect(pool.registry.calls.putback).toBe(1);
      expect(onList(r)).toEqual([]);
      putback(r);
      expect(pool.registry.calls.putback).toBe(1);
      expect(pool.freeWorkPending).toBe(true);
      expect(pool.zspageOf(P)?.listed).toBe(0);
      expect(pool.flushDeferredFree()).toBe(1);
      expect(m.mem.pages.refcount[P]).toBe(0);
      expectClean(m);
    },
  );

  it.each([['v6.17', -22, 1]] as const)(
    '%s: an object being read makes migrate_page fail with %i',
    (profile, _rc, calls) => {
      const r = onePage(profile);
      const { m, pool, P } = r;
      const open = pool.drive(pool.objReadBegin(r.hs[1]));
      expect(isolate(r, P)).toBe(true);
      const res = migrate(r, MIGRATE_MODE.ASYNC);
      expect(res.rc).toBe(1);
      expect(pool.registry.calls.migrate).toBe(calls);
      pool.objReadEnd(open);
      putback(r);
      expect(pfnOf(pool, r.hs[1])).toBe(P);
      expect(pool.objRead(r.hs[1])).toEqual(pattern(1, 1000));
      expectClean(m);
    },
  );

  // S15 with zsmalloc's -EINVAL (v6.17 only, zsmalloc-by-profile §7.1): one call in ASYNC; in
  // the sync modes an ASYNC sub-batch call then a retry alone, each with its own target (§0.2).
  it.each([
    ['ASYNC', 1],
    ['SYNC_LIGHT', 2],
    ['SYNC', 2],
  ] as const)(
    'S15 v6.17 %s: the zspage write-trylock fails: %i driver call(s), every target returned, fail+1, the caller puts back',
    (mode, calls) => {
      const r = onePage('v6.17');
      const { m, pool, P } = r;
      const open = pool.drive(pool.objReadBegin(r.hs[1]));
      expect(isolate(r, P)).toBe(true);
      const fail = m.mem.vmstat.get('pgmigrate_fail');
      const res = migrate(r, MIGRATE_MODE[mode]);
      expect(res.rc).toBe(1);
      expect(pool.registry.calls.migrate).toBe(calls);
      expect(r.targets).toHaveLength(calls);
      expect(r.returned).toEqual(r.targets);
      expect(m.mem.vmstat.get('pgmigrate_fail')).toBe(fail + 1);
      expect(onList(r)).toEqual([P]);
      expect(m.mem.pages.flags[P] & ISO).toBe(ISO);
      expect(pool.registry.calls.putback).toBe(0);
      pool.objReadEnd(open);
      putback(r);
      expect(pool.registry.calls.putback).toBe(1);
      expect(m.mem.pages.flags[P] & ISO).toBe(0);
      expect(m.mem.pages.refcount[P]).toBe(1);
      expect(pfnOf(pool, r.hs[1])).toBe(P);
      expectClean(m);
    },
  );

  it.each(['v6.0', 'v6.3'] as const)(
    '%s: migrate_page waits for the reader and then succeeds',
    (profile) => {
      const r = onePage(profile);
      const { m, pool, P } = r;
      expect(isolate(r, P)).toBe(true);
      let waited = 0;
      m.sched.onStep = (_t, pt) => {
        if (pt.op === 'block' && (pt as { what: string }).what === 'migrate_write_lock') waited++;
      };
      const reader = m.sched.spawn('reader', function* () {
        const o = yield* pool.objReadBegin(r.hs[2]);
        for (let i = 0; i < 30; i++) yield { op: 'reader_busy' };
        const data = o.data.slice();
        pool.objReadEnd(o);
        return data;
      });
      const mig = m.sched.spawn('migrate', migrateBody(r, MIGRATE_MODE.ASYNC));
      m.sched.runAll('round-robin');
      expect(waited).toBeGreaterThan(0);
      expect(mig.result).toMatchObject({ rc: 0, nrSucceeded: 1 });
      expect(reader.result).toEqual(pattern(2, 1000));
      expect(pfnOf(pool, r.hs[2])).toBe(r.targets[0]);
      expectClean(m);
    },
  );

  it('v4.8: a lone migration waits for a mapping that code outside any task keeps open (a deadlock)', () => {
    const r = onePage('v4.8');
    const { pool, P } = r;
    pool.drive(pool.objReadBegin(r.hs[1]));
    // zs_page_isolate takes only the class lock: the isolation goes through.
    expect(isolate(r, P)).toBe(true);
    expect(() => migrate(r, MIGRATE_MODE.ASYNC)).toThrow(
      /^every live task is blocked[\s\S]*blocked on migrate_write_lock/,
    );
  });

  // Class 3072 (3 pages, 4 objects): object 1 starts in page 0 and ends in page 1, object 2
  // starts in page 1 and ends in page 2, object 3 lies in page 2. Page 1 is migrated. A
  // mapped object holds its zspage's read lock: zs_page_migrate spins on the write lock
  // until the unmap, whichever page the object is in (zsmalloc-by-profile §3.2).
  it.each([
    [1, 'ends in the page'],
    [2, 'starts in the page'],
    [3, 'lies in another page'],
  ] as const)(
    'v4.8: object %i, which %s, is being read: migrate_page waits for the reader, then migrates',
    (i, _where) => {
      const r = rig('v4.8');
      const { m, pool } = r;
      const hs = fill(pool, 4, 3000);
      const zs = pool.zspageOf(pfnOf(pool, hs[0]));
      expect(zs?.pages).toHaveLength(3);
      const P = zs?.pages[1] as number;
      expect(pfnOf(pool, hs[2])).toBe(P);
      expect(isolate(r, P)).toBe(true);
      const reader = m.sched.spawn('reader', function* () {
        const o = yield* pool.objReadBegin(hs[i]);
        // Longer than every pass of an ASYNC migrate_pages.
        for (let k = 0; k < 500; k++) yield { op: 'reader_busy' };
        const data = o.data.slice();
        pool.objReadEnd(o);
        return data;
      });
      m.sched.step(reader); // the object is mapped before migration starts
      const mig = m.sched.spawn('migrate', migrateBody(r, MIGRATE_MODE.ASYNC));
      m.sched.runAll('round-robin');
      expect(reader.result).toEqual(pattern(i, 3000));
      expect(mig.result).toMatchObject({ rc: 0, nrSucceeded: 1 });
      expect(pool.registry.calls.migrate).toBe(1);
      expect(zs?.pages[1]).toBe(r.targets[0]);
      for (let k = 0; k < 4; k++) expect(pool.objRead(hs[k])).toEqual(pattern(k, 3000));
      expect(pool.handles.pinHolder.size).toBe(0);
      expectClean(m);
    },
  );

  it('v4.8: nobody destroys a zspage with an isolated sub-page; putback schedules its free', () => {
    const r = onePage('v4.8');
    const { m, pool, P } = r;
    expect(isolate(r, P)).toBe(true);
    for (const h of r.hs) pool.zsFree(h);
    expect(pool.compactionInProgress).toBe(false);
    pool.zsCompact();
    expect(pool.zspageOf(P)?.destroyed).toBe(false);
    expect(m.mem.pages.refcount[P]).toBe(2);
    putback(r);
    expect(pool.freeWorkPending).toBe(true);
    pool.flushDeferredFree();
    expect(m.mem.pages.refcount[P]).toBe(0);
    expectClean(m);
  });

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: zs_compact destroys a zspage whose sub-page is isolated',
    (profile) => {
      const r = rig(profile);
      const { m, pool } = r;
      const hs = fill(pool, 8, 1000);
      // two one-page zspages: A keeps three objects (the destination), B one (the source).
      for (const i of [0, 4, 5, 6]) pool.zsFree(hs[i]);
      const Q = pfnOf(pool, hs[7]);
      expect(isolate(r, Q)).toBe(true);
      expect(pool.zsCompact()).toBeGreaterThan(0);
      expect(pool.zspageOf(Q)).toBeUndefined();
      expect(m.mem.pages.refcount[Q]).toBe(1);
      if (profile === 'v6.17') {
        expect(m.mem.pages.type[Q] >>> 24).toBe(PGTY.zsmalloc);
        expect(m.mem.pages.flags[Q] & (1 << PG.movable_ops)).not.toBe(0);
      } else expect(m.mem.pages.mapping[Q]).toBe(PAGE_MAPPING_MOVABLE);
      expect(pool.objRead(hs[7])).toEqual(pattern(7, 1000));
      const res = migrate(r, MIGRATE_MODE.ASYNC);
      expect(res.rc).toBe(0);
      expect(m.mem.pages.refcount[Q]).toBe(0);
      expectClean(m);
    },
  );
});

describe('dec_zspage_isolation (v6.0, v6.3)', () => {
  it.each(['v6.0', 'v6.3'] as const)(
    '%s: a putback that finds the zspage counted not isolated is VM_BUG_ON(zspage->isolated == 0)',
    (profile) => {
      const r = onePage(profile);
      expect(isolate(r, r.P)).toBe(true);
      const zs = zspageOfPage(r.pool.registry, r.P)!;
      expect(zs.isolated).toBe(1);
      // The count a lost store of the shared word would leave (zsmalloc-fullness-vs-isolated).
      zs.isolated = 0;
      let err: unknown;
      try {
        putback(r);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MmBug);
      expect((err as Error).message).toMatch(/VM_BUG_ON\(zspage->isolated == 0\)/);
    },
  );
});

describe('MIGRATE_SYNC_NO_COPY (v6.0, v6.3): zs_page_migrate refuses it', () => {
  it('v6.0: -EINVAL, nothing moved; the page stays isolated for putback', () => {
    const r = onePage('v6.0');
    expect(isolate(r, r.P)).toBe(true);
    expect(migrate(r, MIGRATE_MODE.SYNC_NO_COPY)).toMatchObject({ rc: 1, nrSucceeded: 0 });
    expect(onList(r)).toEqual([r.P]);
    for (const h of r.hs) expect(pfnOf(r.pool, h)).toBe(r.P);
    putback(r);
    r.hs.forEach((h, i) => {
      expect(r.pool.objRead(h)).toEqual(pattern(i, 1000));
    });
    expectClean(r.m);
  });

  it('v6.3: the ASYNC batch that migrate_pages_sync() tries first moves the page', () => {
    const r = onePage('v6.3');
    expect(isolate(r, r.P)).toBe(true);
    expect(migrate(r, MIGRATE_MODE.SYNC_NO_COPY)).toMatchObject({ rc: 0, nrSucceeded: 1 });
    for (const h of r.hs) expect(pfnOf(r.pool, h)).toBe(r.targets[0]);
    expectClean(r.m);
  });
});

describe.each(PROFILES)('the checker and the VM’s isolation of sub-pages — %s', (profile) => {
  const violations = (m: Machine) => checkInvariants(m).violations.join('\n');

  it('a sub-page whose isolated flag is cleared behind the VM: reported once no task is left', () => {
    const r = onePage(profile);
    expect(isolate(r, r.P)).toBe(true);
    expectClean(r.m);
    r.m.mem.pages.flags[r.P] &= ~ISOLATED;
    const v = violations(r.m);
    expect(v).toMatch(
      /page 0x[0-9a-f]+ has refcount 2 with no task live, where zsmalloc's reference makes 1/,
    );
    if (profile !== 'v6.17')
      expect(v).toMatch(/isolated count 1, but the VM has isolated 0 of its pages/);
    r.m.mem.pages.flags[r.P] |= ISOLATED;
    putback(r);
    expectClean(r.m);
  });

  it('a sub-page whose isolation reference is gone: reported', () => {
    const r = onePage(profile);
    expect(isolate(r, r.P)).toBe(true);
    putPage(r.m.mem, r.P);
    expect(violations(r.m)).toMatch(
      /has refcount 1 with no task live, where zsmalloc's reference and the VM's isolation reference make 2/,
    );
  });
});
