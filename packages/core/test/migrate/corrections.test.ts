/**
 * Rules of spec §0.2 for migrate_pages that hold in quiet corners: SYNC_LIGHT sleeping on a
 * locked src, and what a SYNC run counts when its ASYNC sub-batch ends in an error.
 */
import { describe, expect, it } from 'vitest';
import { Errno, MIGRATE_MODE, migratePages, PG, PROFILE_NAMES } from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { getNew, isolate, migrateLockedSrc, putback, rig } from './harness.js';

describe.each(PROFILE_NAMES)('§0.2 migrate_pages corners — %s', (profile) => {
  it('SYNC_LIGHT sleeps on a src another task holds locked (v6.17: PG_movable_ops reads as uptodate)', () => {
    const r = rig(profile);
    const s = r.m.sched;
    const { a, holder, mig } = migrateLockedSrc(r, MIGRATE_MODE.SYNC_LIGHT);
    // v4.8–v6.3 wait whatever PG_uptodate says; v6.17 waits only for an uptodate page, and
    // a movable_ops page always is (the two flags share a bit).
    expect(mig.state).toBe('blocked');
    const uptodate = (r.m.mem.pages.flags[a] & (1 << PG.uptodate)) !== 0;
    expect(uptodate).toBe(profile === 'v6.17');
    s.runToEnd(holder);
    const res = s.runToEnd(mig);
    expect(res.rc).toBe(0);
    expect(r.drv.callsOf('migrate').map((c) => c.mode)).toEqual([MIGRATE_MODE.SYNC_LIGHT]);
    expectInvariants(r.m);
  });

  it('a SYNC run whose batch ends in -ENOMEM counts the ASYNC failures too (v6.3+)', () => {
    const r = rig(profile);
    const [a, b] = r.drv.alloc(2);
    isolate(r, a);
    isolate(r, b);
    r.drv.migrateRc = (src: number) => (src === a ? Errno.EBUSY : 0);
    let n = 0;
    const g = getNew(r);
    const res = r.m.run(() =>
      migratePages(r.m, r.list, (s) => (n++ === 0 ? g(s) : -1), undefined, MIGRATE_MODE.SYNC, 0),
    );
    expect(res.rc).toBe(Errno.ENOMEM);
    expect(res.nrSucceeded).toBe(0);
    // a failed with -EBUSY, b found no target: both are failures of this call, the ASYNC
    // sub-batch's included because it returned an error (v6.3+); v4.8 and v6.0 have no
    // sub-batch and count the same two.
    expect(res.nrFailedPages).toBe(2);
    expect(r.m.mem.vmstat.get('pgmigrate_fail')).toBe(2);
    const batched = profile === 'v6.3' || profile === 'v6.17';
    expect(r.drv.callsOf('migrate').map((c) => c.mode)).toEqual([
      batched ? MIGRATE_MODE.ASYNC : MIGRATE_MODE.SYNC,
    ]);
    putback(r);
    expectInvariants(r.m);
  });
});
