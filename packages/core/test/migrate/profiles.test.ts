/**
 * One test per row of spec §5.2 and §0.2 that the movable_ops layer can observe. Each
 * compares an observation with a table of expected values by profile name, so a test
 * fails if a profile's behaviour is switched to another release's.
 */
import { describe, expect, it } from 'vitest';
import {
  __ClearPageMovable,
  Errno,
  ftraceBody,
  GFP,
  isolateMovablePage,
  lockPage,
  type MappingTable,
  MIGRATE_MODE,
  type MopsError,
  MR,
  migratePages as mp,
  PG,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
  putPage,
  trylockPage,
  unlockPage,
} from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { ev, getNew, isolate, migrate, onList, putback, rig } from './harness.js';

type Row<T> = Record<ProfileName, T>;

function table<T>(name: string, expected: Row<T>, observe: (p: ProfileName) => T): void {
  it.each(PROFILE_NAMES)(`${name} — %s`, (p) => {
    expect(observe(p)).toEqual(expected[p]);
  });
}

describe('§5.2 / §0.2 difference rows', () => {
  table(
    'callback container and movable marker',
    { 'v4.8': 'address_space', 'v6.0': 'mops', 'v6.3': 'mops', 'v6.17': 'page_type' },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      const word = r.m.mem.pages.mapping[a];
      if (word === 0) return r.m.mem.pages.flags[a] & (1 << PG.movable_ops) ? 'page_type' : 'none';
      const obj = (r.m.mem.mappings as MappingTable).get<object>(word >>> 2);
      return obj && 'a_ops' in obj ? 'address_space' : 'mops';
    },
  );

  table<boolean | number>(
    'isolate_movable_page result type',
    { 'v4.8': true, 'v6.0': 0, 'v6.3': true, 'v6.17': true },
    (p) => {
      const r = rig(p);
      return isolate(r, r.drv.alloc(1)[0]);
    },
  );

  table(
    'isolation reference primitive (first scheduling point)',
    {
      'v4.8': 'get_page_unless_zero',
      'v6.0': 'get_page_unless_zero',
      'v6.3': 'folio_get_nontail_page',
      'v6.17': 'folio_get_nontail_page',
    },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      r.m.sched.manual = true;
      const t = r.m.sched.spawn('iso', () => isolateMovablePage(r.m, a, 0));
      const first = r.m.sched.step(t).op;
      r.m.sched.runToEnd(t);
      return first;
    },
  );

  table(
    'pre-lock check: a slab page whose mapping looks MOVABLE reaches trylock only without the slab guard',
    { 'v4.8': true, 'v6.0': true, 'v6.3': false, 'v6.17': false },
    (p) => {
      const r = rig(p);
      const s = r.m.allocPages(GFP.KERNEL, 0);
      r.m.mem.pages.flags[s] |= 1 << PG.slab;
      r.m.mem.pages.mapping[s] = 0x122; // LIST_POISON2: bit 1 set
      const ops: string[] = [];
      r.m.sched.manual = true;
      r.m.sched.onStep = (_t, pt) => ops.push(pt.op);
      const res = r.m.run(() => isolateMovablePage(r.m, s, 0));
      expect(res === true || res === 0).toBe(false);
      return ops.includes('trylock_page') || ops.includes('folio_trylock');
    },
  );

  table(
    'enum migrate_reason: the name of value 6 in mm_migrate_pages and the values migrate_pages accepts',
    {
      'v4.8': ['cma', 7],
      'v6.0': ['contig_range', 9],
      'v6.3': ['contig_range', 9],
      'v6.17': ['contig_range', 10],
    },
    (p) => {
      const r = rig(p);
      const lines: string[] = [];
      r.m.mem.trace.on('mm_migrate_pages', (e) =>
        lines.push(ftraceBody('mm_migrate_pages', { ...e }, 'raw', r.m.profile)),
      );
      let accepted = 0;
      for (let reason = 0; reason < 12; reason++) {
        try {
          r.m.run(() => mp(r.m, r.list, getNew(r), undefined, MIGRATE_MODE.SYNC, reason));
          accepted++;
        } catch (e) {
          expect((e as MopsError).code).toBe('E_RANGE');
          expect((e as MopsError).message).toContain(`got ${reason}`);
        }
      }
      expectInvariants(r.m);
      return [/reason=(\S+)/.exec(lines[6])?.[1], accepted];
    },
  );

  table(
    'MR_MEMORY_FAILURE: the migrated page keeps the isolation reference for its caller',
    { 'v4.8': 0, 'v6.0': 1, 'v6.3': 1, 'v6.17': 1 },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      const res = r.m.run(() =>
        mp(r.m, r.list, getNew(r), undefined, MIGRATE_MODE.SYNC, MR.MEMORY_FAILURE),
      );
      expect(res).toMatchObject({ rc: 0, nrSucceeded: 1 });
      expect(r.drv.owned.has(a)).toBe(false);
      const kept = r.m.mem.pages.refcount[a];
      expectInvariants(r.m);
      // page_handle_poison's part: the caller drops the reference it was handed.
      if (kept) putPage(r.m.mem, a);
      expect(r.m.mem.pages.refcount[a]).toBe(0);
      expectInvariants(r.m);
      return kept;
    },
  );

  table(
    'owner may release an isolated page (__ClearPageMovable exists)',
    { 'v4.8': true, 'v6.0': true, 'v6.3': true, 'v6.17': false },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      trylockPage(r.m.mem, a);
      try {
        __ClearPageMovable(r.m.mem, a);
        return true;
      } catch {
        return false;
      } finally {
        unlockPage(r.m, a);
      }
    },
  );

  table(
    'retry passes for persistent -EAGAIN in MIGRATE_SYNC: the modes the driver sees',
    {
      'v4.8': Array(10).fill('S'),
      'v6.0': Array(10).fill('S'),
      'v6.3': [...Array(3).fill('A'), ...Array(7).fill('S')],
      'v6.17': [...Array(3).fill('A'), ...Array(7).fill('S')],
    },
    (p) => {
      const r = rig(p);
      isolate(r, r.drv.alloc(1)[0]);
      r.drv.migrateRc = Errno.EAGAIN;
      expect(migrate(r, MIGRATE_MODE.SYNC).rc).toBe(1);
      return r.drv.callsOf('migrate').map((c) => (c.mode === MIGRATE_MODE.ASYNC ? 'A' : 'S'));
    },
  );

  table(
    'the refcount==1 shortcut locks the page (sleeping lock_page)',
    { 'v4.8': true, 'v6.0': false, 'v6.3': false, 'v6.17': false },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      // Drop the owner's reference so only the isolation reference remains.
      r.drv.owned.delete(a);
      r.drv.isolated--;
      r.m.mem.pages.refcount[a]--;
      const ops: string[] = [];
      r.m.sched.manual = true;
      r.m.sched.onStep = (_t, pt) => ops.push(pt.op);
      expect(migrate(r, MIGRATE_MODE.ASYNC).rc).toBe(0);
      expect(r.m.mem.pages.refcount[a]).toBe(0);
      return ops.includes('lock_page') || ops.includes('folio_lock');
    },
  );

  table(
    'pgmigrate_fail on -ENOMEM counts pages still waiting for a retry in the same pass',
    { 'v4.8': 1, 'v6.0': 1, 'v6.3': 2, 'v6.17': 2 },
    (p) => {
      const r = rig(p);
      const [a, b] = r.drv.alloc(2);
      isolate(r, a);
      isolate(r, b);
      trylockPage(r.m.mem, a); // a: -EAGAIN (trylock fails in ASYNC)
      let n = 0;
      const alloc = getNew(r);
      const res = r.m.run(() =>
        mp(r.m, r.list, (src) => (n++ === 0 ? alloc(src) : -1), undefined, MIGRATE_MODE.ASYNC, 0),
      );
      expect(res.rc).toBe(Errno.ENOMEM);
      unlockPage(r.m, a);
      return ev(r, 'pgmigrate_fail');
    },
  );

  table(
    'pgmigrate_fail after 10 passes of -EAGAIN',
    { 'v4.8': 1, 'v6.0': 0, 'v6.3': 1, 'v6.17': 1 },
    (p) => {
      const r = rig(p);
      isolate(r, r.drv.alloc(1)[0]);
      r.drv.migrateRc = Errno.EAGAIN;
      migrate(r, MIGRATE_MODE.ASYNC);
      return ev(r, 'pgmigrate_fail');
    },
  );

  table(
    'a permanent failure is put back inside migrate_pages',
    { 'v4.8': true, 'v6.0': false, 'v6.3': false, 'v6.17': false },
    (p) => {
      const r = rig(p);
      isolate(r, r.drv.alloc(1)[0]);
      r.drv.migrateRc = Errno.EBUSY;
      migrate(r, MIGRATE_MODE.ASYNC);
      return onList(r).length === 0 && r.drv.callsOf('putback').length === 1;
    },
  );

  table(
    'the core notices an owner release in the move step (no driver call)',
    { 'v4.8': 0, 'v6.0': 0, 'v6.3': 0, 'v6.17': 1 },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      r.m.mem.pages.refcount[a]++; // defeat the shortcut
      if (p !== 'v6.17') r.m.run(() => r.drv.release(a));
      else {
        // v6.17 has no release API: the owner can only drop its reference.
        r.drv.isolated--;
        r.m.mem.pages.refcount[a]--;
        r.drv.migrateRc = 0;
      }
      migrate(r, MIGRATE_MODE.ASYNC);
      return r.drv.callsOf('migrate').length;
    },
  );
  table(
    'putback of a page that lost its isolated flag: BUG, or (v6.17) a warning and the putback',
    { 'v4.8': 'bug', 'v6.0': 'bug', 'v6.3': 'bug', 'v6.17': 'warn, put back' },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      r.m.mem.pages.flags[a] &= ~(1 << PG.isolated);
      try {
        putback(r);
      } catch (e) {
        return (e as Error).message.includes('PageIsolated') ? 'bug' : String(e);
      }
      const w = r.m.mem.warnings.map((x) => x.text).join('\n');
      expectInvariants(r.m);
      return w.includes('!PageMovableOpsIsolated(page)') &&
        r.drv.callsOf('putback').length === 1 &&
        r.drv.owned.has(a) &&
        r.m.mem.pages.refcount[a] === 1
        ? 'warn, put back'
        : w;
    },
  );

  table(
    'a flag cleared while putback slept on the page lock: BUG under the lock (v4.8), else the driver is called',
    { 'v4.8': 'bug', 'v6.0': 'putback', 'v6.3': 'putback', 'v6.17': 'putback' },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      r.m.sched.manual = true;
      const owner = r.m.sched.spawn('owner', function* () {
        yield* lockPage(r.m, a);
        yield { op: 'hold', pfn: a };
        r.m.mem.pages.flags[a] &= ~(1 << PG.isolated);
        unlockPage(r.m, a);
      });
      const vm = r.m.sched.spawn('putback', () => putbackMovablePages(r.m, r.list));
      r.m.sched.runUntil(owner, (q) => q.op === 'hold');
      r.m.sched.runUntil(vm, (q) => q.op === 'block');
      r.m.sched.runToEnd(owner);
      try {
        r.m.sched.runToEnd(vm);
      } catch (e) {
        return (e as Error).message.includes('VM_BUG_ON_PAGE(!PageIsolated(page))')
          ? 'bug'
          : String(e);
      }
      return r.drv.callsOf('putback').length === 1 ? 'putback' : 'none';
    },
  );

  table(
    'the warning for a driver that set the isolated flag in isolate_page',
    {
      'v4.8': 'WARN_ON_ONCE(PageIsolated(page))',
      'v6.0': 'WARN_ON_ONCE(PageIsolated(page))',
      'v6.3': 'WARN_ON_ONCE(folio_test_isolated(folio))',
      'v6.17': 'VM_WARN_ON_ONCE_PAGE(PageMovableOpsIsolated(page), page)',
    },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      r.drv.misbehave = 'setIsolatedInIsolate';
      isolate(r, a);
      const w = r.m.mem.warnings.find((x) => x.kind.endsWith('WARN_ON_ONCE'));
      expect(w?.kind).toBe(p === 'v6.17' ? 'VM_WARN_ON_ONCE' : 'WARN_ON_ONCE');
      return w?.text.replace(/^WARNING: (.*) after testdrv isolate_page$/, '$1');
    },
  );

  table(
    'migration of a page that lost its isolated flag: BUG, or (v6.17) a warning and the move',
    { 'v4.8': 'bug', 'v6.0': 'bug', 'v6.3': 'bug', 'v6.17': 'warn, moved' },
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      r.m.mem.pages.refcount[a]++; // a second holder: no refcount==1 shortcut
      r.m.mem.pages.flags[a] &= ~(1 << PG.isolated);
      let res: ReturnType<typeof migrate>;
      try {
        res = migrate(r, MIGRATE_MODE.SYNC);
      } catch (e) {
        return /VM_BUG_ON_(FOLIO\(!folio_test_isolated\(src\)|PAGE\(!PageIsolated\(page\))\)/.test(
          (e as Error).message,
        )
          ? 'bug'
          : String(e);
      }
      r.m.mem.pages.refcount[a]--;
      const w = r.m.mem.warnings.map((x) => x.text).join('\n');
      expectInvariants(r.m);
      return res.rc === 0 &&
        w.includes('!PageMovableOpsIsolated(src)') &&
        !w.includes('protocol') &&
        !w.includes('cleared the isolated flag') &&
        r.drv.callsOf('migrate').length === 1 &&
        r.drv.owned.has(r.targets[0])
        ? 'warn, moved'
        : `${res.rc} ${w}`;
    },
  );
});

describe('rules that hold in every profile (§0.2)', () => {
  it.each(PROFILE_NAMES)(
    'putback unlinks the page from the caller list before calling the driver — %s',
    (p) => {
      const r = rig(p);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      let linked: boolean | undefined;
      const orig = r.drv.putback.bind(r.drv);
      r.drv.putback = (page) => {
        linked = r.m.mem.pages.lists.isLinked(page);
        orig(page);
      };
      putback(r);
      expect(linked).toBe(false);
      expectInvariants(r.m);
    },
  );

  it.each(PROFILE_NAMES)(
    'every non-success releases the target (-EAGAIN from a dst trylock) — %s',
    (p) => {
      const r = rig(p);
      isolate(r, r.drv.alloc(1)[0]);
      const g = getNew(r);
      const res = r.m.run(function* () {
        return yield* mp(
          r.m,
          r.list,
          (src) => {
            const d = g(src);
            trylockPage(r.m.mem, d); // someone else holds the new page's lock
            return d;
          },
          (dst) => {
            unlockPage(r.m, dst);
            r.returned.push(dst);
            r.m.putPage(dst);
          },
          MIGRATE_MODE.ASYNC,
          0,
        );
      });
      expect(res.rc).toBe(1);
      expect(r.returned).toEqual(r.targets);
      expect(r.drv.callsOf('migrate')).toEqual([]);
      putback(r);
      expectInvariants(r.m);
    },
  );

  it('a machine without targets still keeps everything consistent after putback', () => {
    const r = rig('v6.3');
    const pages = r.drv.alloc(5);
    for (const a of pages) isolate(r, a);
    r.noTargets = true;
    migrate(r, MIGRATE_MODE.SYNC);
    putback(r);
    expect(r.drv.owned.size).toBe(5);
    expectInvariants(r.m);
  });
});
