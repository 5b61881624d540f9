/**
 * zsmalloc race scenarios for `@mops/explorer` (spec §4.1, §4.3, §7.2, §7.5, §9f): a
 * zspage freed while the VM isolates, migrates and puts back one of its pages, an object
 * read racing the migration of the page that holds it, and the isolation count and the
 * fullness group racing for the word they share. Each has a `buggy` variant that switches
 * on a {@link ZsMistakes} mistake (or leaves out a lock) and a `fixed` variant that is the
 * plugin as it is.
 * @module
 */

import {
  createMachine,
  getProfile,
  hexPfn,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type Machine,
  MopsError,
  PAGE_SIZE,
  type ProfileName,
} from '@mops/core';
import {
  BUGGY_FIXED,
  EVERY_PROFILE,
  isolateThenMigrate,
  migrateIsolated,
  registerScenario,
  type Scenario,
} from '@mops/explorer';
import { checkZsmalloc } from './check.js';
import { ZS_HANDLE_SIZE } from './classes.js';
import type { ZsMistakes } from './options.js';
import { ZsPool } from './pool.js';
import { registryOf, zspageOfPage } from './registry.js';
import { zsRules } from './rules.js';

/** Object size of the scenarios: four objects share a one-page zspage. */
const OBJ_SIZE = 1000;

/** A 2 MiB machine with page contents and a zsmalloc pool with `mistakes`. */
function zsMachine(profile: ProfileName, mistakes?: ZsMistakes): { m: Machine; pool: ZsPool } {
  const m = createMachine({
    memory: '2M',
    zones: 'normal-only',
    minFreeKbytes: 0,
    contents: true,
    profile,
    seed: 1,
  });
  const pool = new ZsPool(m, { name: 'zram0', mistakes });
  const reg = registryOf(m);
  m.registerInvariantChecker('zsmalloc', () => checkZsmalloc(reg));
  return { m, pool };
}

/** Allocates an object of {@link OBJ_SIZE} bytes filled with `fill`; returns its handle. */
function object(pool: ZsPool, fill: number): number {
  const h = pool.zsMalloc(OBJ_SIZE);
  pool.objWrite(h, new Uint8Array(OBJ_SIZE).fill(fill));
  return h;
}

/**
 * zsmalloc-free-vs-migrate: the last two objects of a one-page zspage are freed (the
 * zspage with them) while one compaction task isolates and migrates its page and another
 * isolates it and puts it back; the loser's attempt is a transient reference.
 *
 * - fixed (v6.0/v6.3): free_zspage trylocks the page and releases it with
 *   __ClearPageMovable under the lock; the VM sees the release (putback or migration
 *   "succeeds" without the driver). v6.17: the callbacks check `zspage == NULL`
 *   (isolate refuses, migrate fakes success, putback does nothing).
 * - buggy (v6.0/v6.3): {@link ZsMistakes.freeWithoutClearMovable}: the freed zspage's
 *   isolated page keeps its movable_ops, so the VM calls zs_page_putback or
 *   zs_page_migrate for a page without zspage (NULL dereference), or frees it with
 *   PG_isolated still set (bad_page). v6.17: {@link ZsMistakes.noZspageNullCheck}:
 *   zs_page_migrate dereferences the NULL zspage of a page zs_free destroyed in the window
 *   migrate_folio_unmap leaves between its refcount check (still 2) and its trylock of
 *   src: free_zspage trylocks the still unlocked page first.
 *
 * At the end (deferred free flushed) the pool must be empty and every page back in the
 * buddy allocator.
 */
export const zsmallocFreeVsMigrate: Scenario = {
  name: 'zsmalloc-free-vs-migrate',
  description:
    'zspage freed while its page is isolated, racing migration and putback (buggy: free without __ClearPageMovable / v6.17 no zspage==NULL check)',
  variants: BUGGY_FIXED,
  profiles: ['v6.3', 'v6.0', 'v6.17'],
  refs: 'spec §4.1, §4.3, §7.2, §7.5',
  setup({ variant, profile }) {
    const buggy = variant === 'buggy';
    // The historical mistake of the era: freeing without __ClearPageMovable where freeing
    // clears it, else the missing zspage == NULL check.
    const mistakes: ZsMistakes | undefined = buggy
      ? zsRules(getProfile(profile)).clearMovableOnFree
        ? { freeWithoutClearMovable: true }
        : { noZspageNullCheck: true }
      : undefined;
    const { m, pool } = zsMachine(profile, mistakes);
    const before = m.mem.nrFreePages();
    const h1 = object(pool, 0x11);
    const h2 = object(pool, 0x22);
    const page = pool.handles.pfn[pool.checkHandle(h1, 'scenario')];
    return {
      machine: m,
      state: [pool, pool.registry],
      start: () => {
        m.sched.spawn('migrate', () => isolateThenMigrate(m, page, true));
        m.sched.spawn('putback', () => isolateThenMigrate(m, page, false));
        m.sched.spawn('zs_free', function* (): KernelGen {
          yield* pool.zsFreeTask(h1);
          yield* pool.zsFreeTask(h2);
        });
      },
      finish: () => {
        const out: string[] = [];
        try {
          pool.flushDeferredFree();
        } catch (e) {
          return [`deferred free failed: ${(e as Error).message.split('\n')[0]}`];
        }
        if (pool.pagesAllocated !== 0)
          out.push(`pool still holds ${pool.pagesAllocated} pages after every object was freed`);
        const now = m.mem.nrFreePages();
        if (now !== before)
          out.push(`${before - now} page(s) never returned to the buddy allocator`);
        if (m.mem.pages.refcount[page] !== 0)
          out.push(`pfn ${hexPfn(page)} has refcount ${m.mem.pages.refcount[page]} at the end`);
        return out;
      },
    };
  },
};

/**
 * zsmalloc-read-vs-migrate: a reader holds an object open (zs_obj_read_begin … read_end,
 * the zspage read lock) while a compaction task isolates and migrates the page holding it;
 * then a writer rewrites the object. The reader must see the bytes of one write, intact,
 * and the object must end with the writer's bytes.
 *
 * - fixed: migration takes the zspage lock for writing (waits or fails while the reader
 *   holds it).
 * - buggy: the reader does not take the zspage lock: it resolves the handle, then copies
 *   the bytes later, outside any lock; migration moves the object in between, and the
 *   writer changes the new copy, so the reader sees old bytes.
 */
export const zsmallocReadVsMigrate: Scenario = {
  name: 'zsmalloc-read-vs-migrate',
  description:
    'object read racing migration of its page (buggy: the reader does not hold the zspage lock)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §7.2, §7.4; zsmalloc-by-profile §3',
  // The reader must stay preempted between resolving the handle and copying while the
  // migration runs all its steps (many more in v4.8): a long preemption, PCT's kind.
  strategy: 'pct',
  setup({ variant, profile }) {
    const buggy = variant === 'buggy';
    const { m, pool } = zsMachine(profile);
    const h = object(pool, 0x11);
    object(pool, 0x33);
    const page = pool.handles.pfn[pool.checkHandle(h, 'scenario')];
    // Compaction has isolated the page already; the race is with its migration.
    const iso = m.run(() => isolateMovablePage(m, page, 0));
    if (!isolatedOk(iso))
      throw new MopsError(
        'E_STATE',
        `zsmalloc-read-vs-migrate: could not isolate pfn ${hexPfn(page)}`,
      );
    const OLD = 0x11;
    const NEW = 0x5a;
    // writes: writes completed; writesAtCopy: how many had completed when the reader copied.
    const seen = { bytes: undefined as Uint8Array | undefined, writes: 0, writesAtCopy: 0 };
    // zram's reader takes time between mapping the object and copying it out (other CPUs
    // run meanwhile; in v6.17 it could even sleep there).
    function* sleep(): KernelGen {
      for (let i = 0; i < 3; i++) if (m.sched.preemptible) yield { op: 'cond_resched' };
    }
    function* reader(): KernelGen {
      if (!buggy) {
        const map = yield* pool.objReadBegin(h);
        yield* sleep();
        if (m.sched.preemptible) yield { op: 'memcpy', note: 'read the object' };
        seen.bytes = map.data.slice();
        seen.writesAtCopy = seen.writes;
        pool.objReadEnd(map);
        return;
      }
      // The broken reader: the handle is translated under pool->lock, but the object is
      // copied without the zspage lock, after pool->lock was dropped.
      yield* pool.lock.readLock();
      const slot = pool.checkHandle(h, 'objRead');
      const pfn = pool.handles.pfn[slot];
      const off = (pool.handles.idx[slot] * pool.classFor(OBJ_SIZE).size) & (PAGE_SIZE - 1);
      if (m.sched.preemptible) yield pool.lock.points.readUnlock;
      pool.lock.readUnlock();
      yield* sleep();
      if (m.sched.preemptible) yield { op: 'memcpy', pfn, note: 'read the object, unlocked' };
      const a = pfn * PAGE_SIZE + off + ZS_HANDLE_SIZE;
      seen.bytes = pool.bytes.u8.slice(a, a + OBJ_SIZE);
      seen.writesAtCopy = seen.writes;
    }
    return {
      machine: m,
      state: [pool, pool.registry, seen],
      start: () => {
        seen.bytes = undefined;
        seen.writes = 0;
        seen.writesAtCopy = 0;
        m.sched.spawn('reader', reader);
        m.sched.spawn('migrate', () => migrateIsolated(m, page));
        m.sched.spawn('writer', function* (): KernelGen {
          yield* pool.objWriteTask(h, new Uint8Array(OBJ_SIZE).fill(NEW));
          seen.writes++;
        });
      },
      finish: () => {
        const out: string[] = [];
        const b = seen.bytes;
        if (b !== undefined) {
          const v = b[0];
          if ((v !== OLD && v !== NEW) || b.some((x) => x !== v))
            out.push('object bytes changed: the reader saw torn bytes');
          else if (v === OLD && seen.writesAtCopy > 0)
            out.push('object bytes changed: the reader saw the old bytes after the write ended');
        }
        const now = pool.objRead(h);
        if (now.some((x) => x !== NEW)) out.push('object bytes changed: the write was lost');
        return out;
      },
    };
  },
};

/** The class-lock writer of the shared word in a fullness-vs-isolated scenario. */
type WordWriter = 'zs_free' | 'zs_malloc';

/**
 * The two fullness-vs-isolated scenarios (spec §7.3, §9f; the 2023 fix by Andrew Yang): a
 * one-page zspage holds two of its four objects; the class-lock writer changes its fullness
 * group (zs_free frees one object, zs_malloc adds a third) while one VM task isolates the
 * zspage's page and puts it back and another isolates it and migrates it (the loser's
 * attempt is a transient reference). In 6.0–6.4 `fullness` and `isolated` are bit-fields of
 * one word of `struct zspage` (see {@link ZsMistakes.sharedIsolationWord}), and each store
 * writes both.
 *
 * - buggy (as 6.0–6.4 shipped): the isolation count is updated under the zspage lock (by
 *   the migration after it dropped the class lock) and the group under the class lock, so
 *   one store can overwrite another: a lost group leaves the zspage recorded in a group
 *   whose list it is not on; a lost count makes the putback or the migration hit
 *   VM_BUG_ON(zspage->isolated == 0), or leaves the zspage counted isolated for good.
 * - fixed (2023): the isolation count is updated under the class lock too.
 *
 * The plugin keeps the newest allocator's locks in every profile (spec §0.2: pool rwlock,
 * class locks, zspage locks), so the race runs with 6.0's and 6.17's lock layout in the 6.3
 * profile too. 6.2–6.4 had one `pool->lock` spinlock and no class lock (c0547d0b6a4b): there
 * the same race is isolation under the zspage lock against the group under `pool->lock`, and
 * the mainline fix (4b5d1e47b694, 6.5) counts isolation under `pool->lock`; the class-lock
 * form is the fix as the 6.1 stable series took it, on 6.0's locks.
 */
function fullnessVsIsolated(name: string, writer: WordWriter, description: string): Scenario {
  return {
    name,
    description,
    variants: BUGGY_FIXED,
    profiles: ['v6.3', 'v6.0'],
    refs: 'spec §7.3, §9f',
    setup({ variant, profile }) {
      const { m, pool } = zsMachine(profile, {
        sharedIsolationWord: variant === 'buggy' ? 'racy' : 'fixed',
      });
      const h1 = object(pool, 0x11);
      object(pool, 0x22);
      const page = pool.handles.pfn[pool.checkHandle(h1, 'scenario')];
      const zs = zspageOfPage(pool.registry, page);
      if (!zs) throw new MopsError('E_STATE', `${name}: no zspage`, 'page');
      return {
        machine: m,
        state: [pool, pool.registry],
        start: () => {
          if (writer === 'zs_free') m.sched.spawn('zs_free', () => pool.zsFreeTask(h1));
          else m.sched.spawn('zs_malloc', () => pool.zsMallocTask(OBJ_SIZE));
          m.sched.spawn('putback', () => isolateThenMigrate(m, page, false));
          m.sched.spawn('migrate', () => isolateThenMigrate(m, page, true));
        },
        finish: () =>
          zs.isolated === 0
            ? []
            : [`zspage ${zs.id} counts ${zs.isolated} isolated page(s) after its page came back`],
      };
    },
  };
}

/** zsmalloc-fullness-vs-isolated: zs_free is the class-lock writer (see {@link fullnessVsIsolated}). */
export const zsmallocFullnessVsIsolated: Scenario = fullnessVsIsolated(
  'zsmalloc-fullness-vs-isolated',
  'zs_free',
  'zspage fullness and isolated count share one bit-field word (buggy: isolation counted under the zspage lock while zs_free rewrites the word under the class lock; fixed: both under the class lock, in the newest locks mops keeps in every profile)',
);

/**
 * zsmalloc-malloc-vs-isolated: the same word, with zs_malloc as the class-lock writer: it
 * puts a third object in the zspage, which moves it to a fuller group (see
 * {@link fullnessVsIsolated}).
 */
export const zsmallocMallocVsIsolated: Scenario = fullnessVsIsolated(
  'zsmalloc-malloc-vs-isolated',
  'zs_malloc',
  'the same shared word with zs_malloc as the writer (buggy: its fix_fullness_group under the class lock and the isolation count under the zspage lock overwrite each other; fixed: both under the class lock, in the newest locks mops keeps in every profile)',
);

/** The zsmalloc race scenarios. */
export const zsmallocScenarios: readonly Scenario[] = [
  zsmallocFreeVsMigrate,
  zsmallocReadVsMigrate,
  zsmallocFullnessVsIsolated,
  zsmallocMallocVsIsolated,
];

/**
 * Registers the zsmalloc race scenarios with `@mops/explorer` (idempotent: a second call
 * replaces them with themselves).
 */
export function registerZsmallocScenarios(): void {
  for (const s of zsmallocScenarios) registerScenario(s, { replace: true });
}
