import { describe, expect, it } from 'vitest';
import {
  checkInvariants,
  Errno,
  folioPut,
  GFP,
  getPage,
  hexPfn,
  type KernelGen,
  lockPage,
  MIGRATE_MODE,
  migratePages,
  moveToNewFolioBegin,
  PAGE_SIZE,
  PG,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
  putPage,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import {
  ev,
  isolate,
  migrate,
  migrateBody,
  migrateLockedSrc,
  onList,
  putback,
  type Rig,
  rig,
} from './harness.js';

const { ASYNC, SYNC_LIGHT, SYNC } = MIGRATE_MODE;
const batched = (p: ProfileName) => p === 'v6.3' || p === 'v6.17';
/** The sleeping page lock of migration: lock_page in __unmap_and_move(), folio_lock from 6.3. */
const LOCK = {
  'v4.8': 'lock_page',
  'v6.0': 'lock_page',
  'v6.3': 'folio_lock',
  'v6.17': 'folio_lock',
} as const;
/** Putback's last three steps: clear the isolated flag, unlock, drop the isolation reference. */
const PUTBACK_END = {
  'v4.8': ['__ClearPageIsolated', 'unlock_page', 'put_page'],
  'v6.0': ['ClearPageIsolated', 'unlock_page', 'put_page'],
  'v6.3': ['folio_clear_isolated', 'folio_unlock', 'folio_put'],
} as const;

describe.each(PROFILE_NAMES)('migrate_pages (spec §3.3-§3.5) — %s', (profile) => {
  it('S10 (test driver) a successful move: driver called once with both pages locked; src freed, dst published; counters', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    const res = migrate(r, SYNC_LIGHT);
    expect(res).toEqual({ rc: 0, nrSucceeded: 1, nrFailedPages: 0 });
    const calls = r.drv.callsOf('migrate');
    expect(calls).toHaveLength(1);
    expect(calls[0].locked).toBe(true);
    // v6.3+: the one call happens in the ASYNC sub-batch (§0.2, S10).
    expect(calls[0].mode).toBe(batched(profile) ? ASYNC : SYNC_LIGHT);
    const d = r.targets[0];
    const p = r.m.mem.pages;
    expect(calls[0].dst).toBe(d);
    expect(p.refcount[a]).toBe(0);
    expect(p.flags[a] & (1 << PG.isolated)).toBe(0);
    expect(p.refcount[d]).toBe(1);
    expect(r.drv.owned.has(d)).toBe(true);
    expect(onList(r)).toEqual([]);
    expect(ev(r, 'pgmigrate_success')).toBe(1);
    expect(ev(r, 'pgmigrate_fail')).toBe(0);
    // Contents moved with the page.
    expect(p.pageData(d)[100]).toBe(a & 0xff);
    expect(r.m.mem.warnings).toEqual([]);
    expectInvariants(r.m);
  });

  it('S10: the VM clears iso(A) after the move, while A is still held, before its final put', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    // Freeing clears every flag: look at A when dst is unlocked, right after the move.
    const seen: string[] = [];
    r.m.sched.manual = true;
    r.m.sched.onStep = (_t, pt) => {
      if ((pt.op === 'folio_unlock' || pt.op === 'unlock_page') && pt.pfn !== a) {
        const p = r.m.mem.pages;
        seen.push(`iso=${(p.flags[a] >> PG.isolated) & 1} ref=${p.refcount[a]}`);
      }
    };
    expect(migrate(r, SYNC_LIGHT).nrSucceeded).toBe(1);
    // The driver dropped its reference; the VM's isolation reference keeps A until its put.
    expect(seen).toEqual(['iso=0 ref=1']);
    expect(r.m.mem.pages.refcount[a]).toBe(0);
    expectInvariants(r.m);
  });

  /** One isolated driver page whose migrate_page returns `rc`, migrated in `mode`. */
  const failingMove = (rc: number, mode: number) => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.migrateRc = rc;
    return { r, a, res: migrate(r, mode) };
  };

  const persistentEagain = (mode: number) => () => {
    const { r, a, res } = failingMove(Errno.EAGAIN, mode);
    expect(res.rc).toBe(1);
    expect(r.drv.callsOf('migrate').map((c) => c.mode)).toEqual(Array(10).fill(mode));
    expect(onList(r)).toEqual([a]);
    const p = r.m.mem.pages;
    expect(p.flags[a] & (1 << PG.isolated)).not.toBe(0);
    expect(p.flags[a] & (1 << PG.locked)).toBe(0);
    // pgmigrate_fail: +1, except v6.0 which leaves persistent -EAGAIN out of the counter.
    expect(ev(r, 'pgmigrate_fail')).toBe(profile === 'v6.0' ? 0 : 1);
    // Legacy passes allocate and release a fresh target each pass; the batched unmap
    // phase takes one and keeps it paired through the move passes.
    expect(r.targets.length).toBe(batched(profile) ? 1 : 10);
    expect(r.returned).toEqual(r.targets);
    putback(r);
    expect(r.drv.callsOf('putback')).toHaveLength(1);
    expect(p.flags[a] & (1 << PG.isolated)).toBe(0);
    expect(p.refcount[a]).toBe(1);
    expect(r.drv.owned.has(a)).toBe(true);
    expectInvariants(r.m);
  };
  if (batched(profile))
    it(
      'S12 persistent -EAGAIN in ASYNC mode: 10 driver calls, return 1, page left isolated on the list; putback once',
      persistentEagain(ASYNC),
    );
  else
    it.each([
      ['ASYNC', ASYNC],
      ['SYNC_LIGHT', SYNC_LIGHT],
      ['SYNC', SYNC],
    ])(
      'S14 persistent -EAGAIN in %s: 10 passes, one driver call and a fresh target each; return 1; putback once',
      (_name, mode) => persistentEagain(mode)(),
    );

  /**
   * After a permanent failure: v4.8 has put the page back inside migrate_pages (one
   * putback_page call, empty list); later profiles leave it on the list for the caller,
   * whose putback calls putback_page exactly once.
   */
  const expectPutBackOnce = (r: Rig, a: number) => {
    if (profile === 'v4.8') {
      expect(r.drv.callsOf('putback')).toHaveLength(1);
      expect(onList(r)).toEqual([]);
    } else {
      expect(r.drv.callsOf('putback')).toHaveLength(0);
      expect(onList(r)).toEqual([a]);
      putback(r);
      expect(r.drv.callsOf('putback')).toHaveLength(1);
    }
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
    expectInvariants(r.m);
  };

  it('S15 permanent failure in ASYNC mode: one call, target returned, return 1, pgmigrate_fail +1', () => {
    const { r, a, res } = failingMove(Errno.EBUSY, ASYNC);
    expect(res.rc).toBe(1);
    expect(r.drv.callsOf('migrate')).toHaveLength(1);
    expect(r.returned).toEqual(r.targets);
    expect(ev(r, 'pgmigrate_fail')).toBe(1);
    expectPutBackOnce(r, a);
  });

  it.each([
    ['SYNC_LIGHT', SYNC_LIGHT],
    ['SYNC', SYNC],
  ])(
    'S15 permanent failure in %s: v6.3+ calls the driver twice (ASYNC first), older once',
    (_name, mode) => {
      const { r, a, res } = failingMove(Errno.EBUSY, mode);
      expect(res.rc).toBe(1);
      const modes = r.drv.callsOf('migrate').map((c) => c.mode);
      expect(modes).toEqual(batched(profile) ? [ASYNC, mode] : [mode]);
      expect(r.targets).toHaveLength(modes.length);
      expect(r.returned).toEqual(r.targets);
      expect(ev(r, 'pgmigrate_fail')).toBe(1); // only the second attempt is counted
      expectPutBackOnce(r, a);
    },
  );

  it('S16 no target: -ENOMEM, no driver call, pages stay isolated on the list', () => {
    const r = rig(profile);
    const [a, c] = r.drv.alloc(2);
    isolate(r, a);
    isolate(r, c);
    r.noTargets = true;
    const res = migrate(r, SYNC);
    expect(res.rc).toBe(Errno.ENOMEM);
    expect(r.drv.callsOf('migrate')).toEqual([]);
    expect(onList(r)).toEqual([a, c]);
    for (const x of [a, c]) expect(r.m.mem.pages.flags[x] & (1 << PG.isolated)).not.toBe(0);
    putback(r);
    expectInvariants(r.m);
  });

  it('S17 src trylock fails in ASYNC mode: -EAGAIN every pass without a driver call; return 1', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    trylockPage(r.m.mem, a); // another actor holds the page lock throughout
    const res = migrate(r, ASYNC);
    expect(res.rc).toBe(1);
    expect(r.drv.callsOf('migrate')).toEqual([]);
    expect(r.targets).toHaveLength(10);
    expect(r.returned).toEqual(r.targets);
    unlockPage(r.m, a);
    putback(r);
    expectInvariants(r.m);
  });

  it('S18 direct compaction (PF_MEMALLOC) never sleeps on the page lock, even in SYNC_LIGHT', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    trylockPage(r.m.mem, a);
    const res = migrate(r, SYNC_LIGHT, true);
    expect(res.rc).toBe(1);
    expect(r.drv.callsOf('migrate')).toEqual([]);
    // As S17: a target allocated and given back in each of the 10 passes.
    expect(r.targets).toHaveLength(10);
    expect(r.returned).toEqual(r.targets);
    unlockPage(r.m, a);
    putback(r);
  });

  it('S18 MIGRATE_SYNC without PF_MEMALLOC: three non-blocking attempts, then sleeps on the lock until released', () => {
    const r = rig(profile);
    const s = r.m.sched;
    const { a, holder, mig } = migrateLockedSrc(r, SYNC);
    expect(mig.state).toBe('blocked');
    expect(mig.blockedOn?.what).toBe(`${LOCK[profile]} pfn ${hexPfn(a)}`);
    expect(r.targets).toHaveLength(4);
    expect(r.returned).toHaveLength(3);
    s.runToEnd(holder);
    const res = s.runToEnd(mig);
    expect(res.rc).toBe(0);
    expect(r.drv.callsOf('migrate')).toHaveLength(1);
    expectInvariants(r.m);
  });

  it('a list of many pages migrates in one call, each to its own target', () => {
    const r = rig(profile, '8M');
    const pages = r.drv.alloc(40);
    for (const pfn of pages) isolate(r, pfn);
    const res = migrate(r, ASYNC);
    expect(res).toEqual({ rc: 0, nrSucceeded: 40, nrFailedPages: 0 });
    expect(new Set(r.targets).size).toBe(40);
    expect(r.drv.owned.size).toBe(40);
    expect(ev(r, 'pgmigrate_success')).toBe(40);
    expectInvariants(r.m);
  });
});

describe.each(['v4.8', 'v6.0', 'v6.3'] as const)(
  'S19 / §4.1 owner releases an isolated page — %s',
  (profile) => {
    it('putback: putback_page not called, isolated flag cleared, the final put frees the page, no warning', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      r.m.run(() => r.drv.release(q));
      expect(r.m.mem.pages.refcount[q]).toBe(1);
      // Freeing clears every flag, so watch the steps: each of Q's points with iso(Q).
      const steps: string[] = [];
      r.m.sched.manual = true;
      r.m.sched.onStep = (_t, pt) => {
        if (pt.pfn === q) steps.push(`${pt.op} iso=${(r.m.mem.pages.flags[q] >> PG.isolated) & 1}`);
      };
      putback(r);
      // The VM clears iso(Q) itself, before the final put.
      const [clear, unlock, put] = PUTBACK_END[profile];
      expect(steps.slice(-3)).toEqual([`${clear} iso=1`, `${unlock} iso=0`, `${put} iso=0`]);
      expect(r.drv.callsOf('putback')).toEqual([]);
      expect(r.m.mem.pages.refcount[q]).toBe(0);
      expect(r.m.mem.warnings).toEqual([]);
      expectInvariants(r.m);
    });

    it('migration: the refcount==1 shortcut reports success without a driver call', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      r.m.run(() => r.drv.release(q));
      const res = migrate(r, ASYNC);
      expect(res).toEqual({ rc: 0, nrSucceeded: 1, nrFailedPages: 0 });
      expect(r.drv.callsOf('migrate')).toEqual([]);
      expect(r.m.mem.pages.refcount[q]).toBe(0);
      // v4.8 allocates the target before the shortcut and releases it unused.
      expect(r.targets).toHaveLength(profile === 'v4.8' ? 1 : 0);
      expect(r.returned).toEqual(r.targets);
      expectInvariants(r.m);
    });

    it('v4.8: the target is allocated first, so a released page still fails with -ENOMEM when none is free', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      r.m.run(() => r.drv.release(q));
      r.noTargets = true;
      const res = migrate(r, ASYNC);
      expect(res.rc).toBe(profile === 'v4.8' ? Errno.ENOMEM : 0);
    });

    it('released while another reference remains: the move step skips the driver, dst goes back to the buddy', () => {
      const r = rig(profile);
      const [q] = r.drv.alloc(1);
      isolate(r, q);
      r.m.mem.pages.refcount[q]++; // a third party's transient reference defeats the shortcut
      r.m.run(() => r.drv.release(q));
      const res = migrate(r, ASYNC);
      expect(res.rc).toBe(0);
      expect(r.drv.callsOf('migrate')).toEqual([]);
      const d = r.targets[0];
      expect(r.m.mem.pages.refcount[d]).toBe(0); // freed, not returned to the caller
      expect(r.returned).toEqual([]);
      expect(r.m.mem.pages.flags[q] & (1 << PG.isolated)).toBe(0);
      r.m.putPage(q);
      expectInvariants(r.m);
    });
  },
);

describe('v4.8 unmap_and_move: the target of a failed move is released last (put_new)', () => {
  it('the target stays allocated while the inline putback sleeps on the page lock; put_new_page follows putback_page', () => {
    const r = rig('v4.8');
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.migrateRc = Errno.EBUSY;
    const putbacksAtPutNew: number[] = [];
    let dst = -1;
    r.m.sched.manual = true;
    const vm = r.m.sched.spawn('migrate', () =>
      migratePages(
        r.m,
        r.list,
        () => {
          dst = r.m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
          return dst;
        },
        (d) => {
          putbacksAtPutNew.push(r.drv.callsOf('putback').length);
          folioPut(r.m.mem, d);
        },
        MIGRATE_MODE.SYNC,
        0,
      ),
    );
    // The move failed; the VM is about to lock src again for the putback.
    r.m.sched.runUntil(vm, (p) => p.op === 'lock_page' && r.drv.callsOf('migrate').length === 1);
    // Another task takes the page lock first.
    const holder = r.m.sched.spawn('holder', function* (): KernelGen {
      yield* lockPage(r.m, a);
      yield { op: 'hold', pfn: a };
      unlockPage(r.m, a);
    });
    r.m.sched.runUntil(holder, (p) => p.op === 'hold');
    r.m.sched.runUntil(vm, (p) => p.op === 'block');
    expect(r.m.mem.pages.refcount[dst]).toBe(1);
    expect(putbacksAtPutNew).toEqual([]);
    r.m.sched.runToEnd(holder);
    r.m.sched.runToEnd(vm);
    r.m.sched.manual = false;
    expect(r.drv.callsOf('putback')).toHaveLength(1);
    expect(putbacksAtPutNew).toEqual([1]);
    expect(r.m.mem.pages.refcount[dst]).toBe(0);
    expectInvariants(r.m);
  });
});

describe('v6.17: no release API; a 0 from migrate_page always frees both VM references', () => {
  it('S21-like: the driver fakes success for a page it dropped; src and dst both end up freed', () => {
    const r = rig('v6.17');
    const [q] = r.drv.alloc(1);
    isolate(r, q);
    r.m.mem.pages.refcount[q]++; // keeps the shortcut from firing
    r.drv.migrateRc = (src) => {
      r.drv.isolated--;
      r.m.mem.pages.refcount[src]--; // the owner drops its reference
      return 0; // "fake migration success"
    };
    r.drv.migrateRc = r.drv.migrateRc as (s: number) => number;
    const fake = r.drv.migrateRc;
    r.drv.migrate = (dst, src, mode) => {
      r.drv.calls.push({ cb: 'migrate', pfn: src, dst, mode, locked: true });
      return fake(src, mode);
    };
    const res = migrate(r, ASYNC);
    expect(res.rc).toBe(0);
    const d = r.targets[0];
    expect(r.m.mem.pages.refcount[d]).toBe(0);
    expect(r.m.mem.pages.refcount[q]).toBe(1);
    r.m.putPage(q);
    expect(r.m.mem.pages.refcount[q]).toBe(0);
  });
});

describe.each(PROFILE_NAMES)('a reference leaked on a migrated page — %s', (profile) => {
  it('a migrate_page that keeps its reference on src fails the invariant checker once no task is left', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.misbehave = 'keepSrcRef';
    expect(migrate(r, ASYNC).rc).toBe(0);
    expect(r.m.mem.pages.refcount[a]).toBe(1);
    const v = checkInvariants(r.m).violations;
    expect(v).toEqual([
      expect.stringMatching(
        /migrated away or released by its owner, and the VM dropped its reference, but 1 reference\(s\) are still held/,
      ),
    ]);
    expect(v[0]).toContain(hexPfn(a));
  });

  if (profile !== 'v6.17')
    it('a page its owner released but kept a reference on, put back by the VM: reported once no task is left', () => {
      const r = rig(profile);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      getPage(r.m.mem, a); // a reference the owner forgets to drop
      r.m.run(() => r.drv.release(a));
      r.m.run(() => putbackMovablePages(r.m, r.list));
      expect(r.m.mem.pages.refcount[a]).toBe(1);
      expect(checkInvariants(r.m).violations).toEqual([
        expect.stringMatching(
          new RegExp(`pfn ${hexPfn(a)}: migrated away or released by its owner, .* 1 reference`),
        ),
      ]);
      putPage(r.m.mem, a);
      expectInvariants(r.m);
    });

  it('a task holding src across the migration and dropping it later leaks nothing; while it lives, nothing is reported', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.m.sched.manual = true;
    const holder = r.m.sched.spawn('holder', function* () {
      getPage(r.m.mem, a);
      yield { op: 'hold', pfn: a };
      putPage(r.m.mem, a);
    });
    r.m.sched.runUntil(holder, (q) => q.op === 'hold');
    const vm = r.m.sched.spawn('migrate', migrateBody(r, ASYNC));
    r.m.sched.runToEnd(vm);
    expect(r.m.mem.pages.refcount[a]).toBe(1);
    expectInvariants(r.m);
    r.m.sched.runToEnd(holder);
    expect(r.m.mem.pages.refcount[a]).toBe(0);
    expectInvariants(r.m);
  });
});

describe.each(PROFILE_NAMES)('protocol violations in migrate_page are detected — %s', (profile) => {
  it.each([
    ['touchSrcLru', 'changed src->lru'],
    ['noDstSetup', 'dst is not its movable page'],
    ['dstOfOther', 'made dst a movable page of other, not its own'],
    ['badRc', 'not 0 or a negative errno'],
    ['throwInMigrate', 'migrate_page threw'],
  ] as const)('%s', (misbehave, text) => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.misbehave = misbehave;
    const res = migrate(r, ASYNC);
    const v = r.m.mem.warnings.filter((w) => w.kind === 'protocol_violation');
    if (misbehave === 'noDstSetup' && profile === 'v6.17') {
      // v6.17 (§4.3): a 0 with dst untouched is the owner declining dst; the core owns both.
      expect(v).toEqual([]);
      expect(r.m.mem.pages.refcount[r.targets[0]]).toBe(0);
      return;
    }
    expect(v.length).toBeGreaterThan(0);
    expect(v[0].text).toContain(text);
    expect(v[0].text).toMatch(/^page: ?[0-9a-f]* (ref)?count:/m);
    if (misbehave === 'badRc' || misbehave === 'throwInMigrate') {
      // A permanent failure for that page: it is put back and nothing is lost.
      expect(res.rc).toBe(1);
      if (profile !== 'v4.8') putback(r);
      expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
      expectInvariants(r.m);
    }
  });

  it('success without __ClearPageMovable(src) is a violation only where the driver must clear it', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.misbehave = 'noClearSrc';
    migrate(r, ASYNC);
    const v = r.m.mem.warnings.filter((w) => w.text.includes('without __ClearPageMovable'));
    expect(v.length).toBe(profile === 'v6.17' ? 0 : 1);
  });

  it('migrate_page clearing the isolated flag is a violation; v4.8–v6.3 WARN, then BUG in the success branch (src still tagged movable); v6.17 finishes', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.misbehave = 'clearIsolatedInMigrate';
    if (profile === 'v6.17') expect(migrate(r, ASYNC).rc).toBe(0);
    else
      expect(() => migrate(r, ASYNC)).toThrow(
        // 4.8's move_to_new_page() said it of the page; 5.19's move_to_new_folio() of src.
        profile === 'v4.8'
          ? 'VM_BUG_ON_PAGE(!PageIsolated(page))'
          : 'VM_BUG_ON_FOLIO(!folio_test_isolated(src))',
      );
    const texts = r.m.mem.warnings.map((w) => w.text);
    expect(texts.some((t) => t.includes('migrate_page cleared the isolated flag'))).toBe(true);
    const warn =
      profile === 'v4.8'
        ? 'WARN_ON_ONCE(rc == MIGRATEPAGE_SUCCESS && !PageIsolated(page))'
        : 'WARN_ON_ONCE(rc == MIGRATEPAGE_SUCCESS && !folio_test_isolated(src))';
    expect(texts.some((t) => t.includes(warn))).toBe(profile !== 'v6.17');
    if (profile !== 'v6.17') return;
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(0);
    expectInvariants(r.m);
  });

  it('a src someone unlocked before the move: VM_BUG_ON up to v6.3; v6.17 asserts no lock there and calls the driver', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    const dst = r.m.allocPages(GFP.HIGHUSER_MOVABLE, 0);
    trylockPage(r.m.mem, dst);
    // a is isolated but not locked, as after a third party's unlock.
    const begin = () => moveToNewFolioBegin(r.m.mem, dst, a);
    if (profile === 'v6.17') expect(begin()?.name).toBe('testdrv');
    else
      expect(begin).toThrow(
        profile === 'v4.8'
          ? 'VM_BUG_ON_PAGE(!PageLocked(page))'
          : 'VM_BUG_ON_FOLIO(!folio_test_locked(src))',
      );
  });

  it('a failing migrate_page that cleared the isolated flag: the VM repairs it up to v6.3; v6.17 leaves it cleared, and putback warns', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.migrateRc = (src) => {
      r.m.mem.pages.flags[src] &= ~(1 << PG.isolated);
      return Errno.EBUSY;
    };
    expect(migrate(r, ASYNC).rc).toBe(1);
    expect(
      r.m.mem.warnings.some((w) => w.text.includes('migrate_page cleared the isolated flag')),
    ).toBe(true);
    // v4.8's unmap_and_move() puts a failed movable page back itself.
    if (profile === 'v4.8') return;
    expect(r.m.mem.pages.flags[a] & (1 << PG.isolated)).toBe(
      profile === 'v6.17' ? 0 : 1 << PG.isolated,
    );
    if (profile !== 'v6.17') return;
    putback(r);
    expect(r.m.mem.warnings.some((w) => w.text.includes('!PageMovableOpsIsolated(page)'))).toBe(
      true,
    );
    expect(r.drv.owned.has(a)).toBe(true);
    expectInvariants(r.m);
  });

  it.each([
    ['unlockInMigrate', 'migrate_page unlocked dst'],
    ['unlockInPutback', 'putback_page unlocked the page'],
  ] as const)("%s: the driver is named before the VM's unlock BUGs", (misbehave, text) => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.misbehave = misbehave;
    const run = () => (misbehave === 'unlockInMigrate' ? migrate(r, ASYNC) : putback(r));
    expect(run).toThrow(/!(folio_test_locked|PageLocked)/);
    const v = r.m.mem.warnings.filter((w) => w.kind === 'protocol_violation');
    expect(v.map((w) => w.text.split('\n')[0])).toEqual([
      `testdrv: ${text}, whose lock the VM holds across the call and releases itself`,
    ]);
  });

  it('putback_page clearing the isolated flag is a violation; the VM still finishes the putback', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.drv.misbehave = 'clearIsolatedInPutback';
    putback(r);
    expect(
      r.m.mem.warnings.some((w) => w.text.includes('putback_page cleared the isolated flag')),
    ).toBe(true);
    expect(r.m.mem.pages.refcount[a]).toBe(1);
    expectInvariants(r.m);
  });

  it('a flag cleared by the owner while the VM slept on the page lock is reported as cleared before putback_page', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    r.m.sched.manual = true;
    const owner = r.m.sched.spawn('owner', function* (): KernelGen {
      yield* lockPage(r.m, a);
      yield { op: 'ClearPageIsolated', pfn: a };
      r.m.mem.pages.flags[a] &= ~(1 << PG.isolated);
      unlockPage(r.m, a);
    });
    const vm = r.m.sched.spawn('putback', () => putbackMovablePages(r.m, r.list));
    r.m.sched.runUntil(owner, (p) => p.op === 'ClearPageIsolated'); // the owner holds the lock
    r.m.sched.runUntil(vm, (p) => p.op === 'block'); // the VM sleeps on it
    r.m.sched.runToEnd(owner);
    if (profile === 'v4.8') {
      // putback_movable_page asserts the flag again under the lock.
      expect(() => r.m.sched.runToEnd(vm)).toThrow('VM_BUG_ON_PAGE(!PageIsolated(page))');
      expect(r.drv.callsOf('putback').length).toBe(0);
      return;
    }
    r.m.sched.runToEnd(vm);
    const texts = r.m.mem.warnings.map((w) => w.text);
    expect(texts.some((t) => t.includes('cleared before putback_page'))).toBe(true);
    expect(texts.some((t) => t.includes('putback_page cleared the isolated flag'))).toBe(false);
  });
});

describe('copying contents', () => {
  it('the driver copies 4 KiB of real bytes from src to dst', () => {
    const r = rig('v6.3');
    const [a] = r.drv.alloc(1);
    const src = r.m.mem.pages.pageData(a);
    for (let i = 0; i < PAGE_SIZE; i++) src[i] = (i * 7) & 0xff;
    const copy = Buffer.from(src);
    isolate(r, a);
    migrate(r, SYNC);
    expect(Buffer.from(r.m.mem.pages.pageData(r.targets[0])).equals(copy)).toBe(true);
  });
});
