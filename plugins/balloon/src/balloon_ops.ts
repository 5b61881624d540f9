/**
 * The balloon core of one machine (mm/balloon_compaction.c, from 2026 mm/balloon.c;
 * spec §6.2, §6.4): the devices by id, the 2026 global lock, and the movable_operations
 * through which compaction isolates, migrates and puts back balloon pages.
 * @module
 */

import {
  bug,
  defineMovableOps,
  Errno,
  EV,
  getPage,
  hasPageType,
  hexPfn,
  type Kctx,
  type KernelGen,
  type MaybeGen,
  type Memory,
  MIGRATE_MODE,
  MIGRATE_PAGE_ALONE,
  type MigratePageAlone,
  MmBug,
  MopsError,
  type MovableOperations,
  memoryExt,
  PG,
  PGTY,
  putPage,
  refusedMovableOps,
  SpinLock,
  setMovableOps,
} from '@mops/core';
import { checkDesign, checkMistakes } from './args.js';
import { balloonPageFinalize, balloonPageInsert } from './balloon_page.js';
import type { BalloonDesign, BalloonDevice, BalloonMistakes } from './device.js';
import { managedPagesAdd, moveManagedDebit } from './managed.js';
import { balloonRules } from './rules.js';

/** Per-machine balloon infrastructure: the ops, the devices by id, the 2026 lock. */
export interface BalloonCore {
  readonly ops: MovableOperations;
  readonly devices: (BalloonDevice | undefined)[];
  readonly design: BalloonDesign;
  /**
   * 2026: the global `balloon_pages_lock` (a static lock in the kernel); none with the
   * {@link BalloonMistakes.perDeviceLockWithoutPageLock} mistake, whose devices keep one each.
   */
  readonly globalLock: SpinLock | undefined;
  /** The {@link BalloonMistakes.perDeviceLockWithoutPageLock} mistake is switched on. */
  readonly perDeviceLock: boolean;
}

/** The `Memory.ext` key of a machine's balloon core. */
const CORE = {};

/** The balloon core of `mem`'s machine, once {@link balloonInit} set it up. */
export const coreOfMemory = (mem: Memory): BalloonCore | undefined =>
  mem.ext.get(CORE) as BalloonCore | undefined;

const LOCKED = 1 << PG.locked;

/**
 * Takes a balloon list lock inside a plain function; returns whether the lock object was
 * taken. The lock is never held across a scheduling point, so it is always free here. A
 * task running alone (`sched.preemptible` false) cannot be interleaved until the section
 * ends, so it skips the lock object and its lockdep bookkeeping, as a lone task skips its
 * scheduling points.
 */
export function spinLockAtomic(k: Kctx, lock: SpinLock): boolean {
  if (!k.sched.preemptible) return false;
  if (!lock.trylock()) {
    const e = new MmBug(`${lock.className} held across a scheduling point`);
    k.mem.halted = e;
    throw e;
  }
  return true;
}

/**
 * The balloon device of page `pfn` (`balloon_page_device(page)`: `page->private`), or
 * undefined when the page is not (or no longer) a balloon page, or `pfn` is no page of the
 * machine (not an integer in range: a typed array would read `"3"` as page 3).
 */
export function balloonPageDevice(mem: Memory, pfn: number): BalloonDevice | undefined {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= mem.nrPages) return undefined;
  // Another driver keeps its own numbers in `private` (zsmalloc, its zspage's): only a
  // PageOffline page is a balloon page.
  if (!hasPageType(mem, pfn, PGTY.offline)) return undefined;
  const core = coreOfMemory(mem);
  const id = mem.pages.priv[pfn];
  return core && id > 0 ? core.devices[id] : undefined;
}

/** The balloon devices of the machine of `mem`, oldest first. */
export function balloonDevices(mem: Memory): BalloonDevice[] {
  return (coreOfMemory(mem)?.devices ?? []).filter((d) => d !== undefined);
}

/**
 * balloon_init(): the balloon core of machine `k`, set up on first call: its
 * movable_operations and, in the 2026 design, the global `balloon_pages_lock`. In v6.17 it
 * registers the ops for PageOffline pages (`set_movable_ops(&balloon_mops, PGTY_offline)`),
 * which the kernel does once at boot (a core_initcall, before any driver loads): the
 * plugin calls it when it is installed, so that another PageOffline driver registering
 * later gets -EBUSY. A driver that registered first makes it fail with E_PLUGIN naming
 * that driver. Later calls return the same core; one with another design, or with
 * {@link BalloonMistakes.perDeviceLockWithoutPageLock} set otherwise than the first, is
 * E_USAGE.
 * @see mm/balloon_compaction.c balloon_init()
 */
export function balloonInit(
  k: Kctx,
  design?: BalloonDesign,
  mistakes?: BalloonMistakes,
): BalloonCore {
  const d = checkDesign(k.mem.profile, design);
  if (typeof mistakes === 'object' && mistakes !== null) checkMistakes(k.mem.profile, d, mistakes);
  const perDevice = mistakes?.perDeviceLockWithoutPageLock === true;
  const core = memoryExt(k.mem, CORE, () => newCore(k, d, perDevice));
  if (core.design !== d)
    throw new MopsError(
      'E_USAGE',
      `this machine's balloon devices use the ${core.design} design; all devices of a machine share one`,
      'design',
    );
  if (core.perDeviceLock !== perDevice)
    throw new MopsError(
      'E_USAGE',
      `this machine's balloon core was set up ${core.perDeviceLock ? 'with' : 'without'} the perDeviceLockWithoutPageLock mistake; all devices of a machine share it`,
      'mistakes',
    );
  return core;
}

/** A machine's balloon core, its movable_ops registered for PageOffline in v6.17. */
function newCore(k: Kctx, design: BalloonDesign, perDeviceLock: boolean): BalloonCore {
  const devices: (BalloonDevice | undefined)[] = [undefined];
  const globalLock =
    design === '2026' && !perDeviceLock ? new SpinLock(k.sched, 'balloon_pages_lock') : undefined;
  const c: BalloonCore = {
    ops: makeOps(k, design, devices, globalLock),
    devices,
    design,
    globalLock,
    perDeviceLock,
  };
  if (
    k.mem.profile.movableMarker === 'page_type' &&
    setMovableOps(k.mem, c.ops, PGTY.offline) !== 0
  ) {
    const holder = refusedMovableOps(k.mem).at(-1)?.taken ?? 'another driver';
    throw new MopsError(
      'E_PLUGIN',
      `balloon_init: set_movable_ops(PGTY_offline) returned -EBUSY: page type Offline already has the movable_ops of ${holder}. The kernel registers the balloon's at boot, before any other PageOffline driver: install the balloon plugin (or create the balloon) first`,
      'ops',
    );
  }
  return c;
}

/** balloon_mops (v6.x) / balloon_aops (v4.8) of one machine. */
function makeOps(
  k: Kctx,
  design: BalloonDesign,
  devices: readonly (BalloonDevice | undefined)[],
  globalLock: SpinLock | undefined,
): MovableOperations {
  const mem = k.mem;
  const rules = balloonRules(mem.profile);
  const priv = mem.pages.priv;
  /**
   * balloon_page_device(page); undefined for a pfn that is not an integer, as for one out
   * of range, so that the callbacks refuse it (E_RANGE) before they change anything (a
   * typed array reads `"3"` as page 3).
   */
  const device = (pfn: number): BalloonDevice | undefined =>
    Number.isInteger(pfn) ? devices[priv[pfn]] : undefined;
  /**
   * balloon_page_isolate() with {@link BalloonMistakes.perDeviceLockWithoutPageLock}: the
   * device is looked up through `private` with no lock held, then its own lock is taken
   * (a point where deflation may run: nothing else excludes it without the page lock).
   */
  function* isolatePerDevice(page: number): KernelGen<boolean> {
    const dev = device(page);
    if (!dev) return isolateDeflated(page);
    yield* dev.pagesLock.lock();
    try {
      dev.isolateLockedAfterLookup(page);
    } finally {
      dev.pagesLock.unlock();
    }
    return true;
  }
  /** 2026 balloon_page_isolate(): the device is read under the global lock. */
  const isolate2026 = (page: number): boolean => {
    // Deflation clears private under the lock.
    const lock = globalLock as SpinLock;
    const taken = spinLockAtomic(k, lock);
    const dev = device(page);
    if (dev) dev.isolateLocked(page);
    if (taken) lock.unlock();
    if (dev === undefined) return isolateDeflated(page);
    return true;
  };
  /** balloon_page_isolate() of a page that already got deflated (no device). */
  const isolateDeflated = (page: number): boolean => {
    mem.checkPfn(page, 'balloon_page_isolate');
    if (rules.nullDeviceChecks) return false;
    bug(mem, 'BUG: kernel NULL pointer dereference (balloon_page_device(page)->pages_lock)', page);
  };
  /**
   * The checks of balloon_page_migrate() before the driver's migratepage: the device, or
   * undefined for -EAGAIN (v6.17: the page got deflated while isolated). A `newpage` or
   * `page` that is no page of the machine is a MopsError (E_RANGE) and changes nothing.
   */
  const migrateDevice = (newpage: number, page: number): BalloonDevice | undefined => {
    mem.checkPfn(newpage, 'balloon_page_migrate');
    const dev = device(page);
    if (!dev) return noMigrateDevice(page);
    const flags = mem.pages.flags;
    if (dev.design === 'classic' && !(flags[page] & flags[newpage] & LOCKED))
      migrateNotLocked(newpage, page);
    if (!dev.migratepage)
      bug(mem, 'BUG: kernel NULL pointer dereference (b_dev_info->migratepage)', page);
    return dev;
  };
  /**
   * v6.17's `WARN_ON_ONCE(!b_dev_info)` in `fn` (balloon_page_migrate or _putback) for
   * `page`. When a device still counts the page isolated, a second line says how it got
   * there: the isolation of {@link BalloonMistakes.perDeviceLockWithoutPageLock} counted a
   * page deflation had taken (the kernel prints only the first line).
   */
  const warnNoDevice = (fn: string, page: number): void => {
    const holder = devices.find((d) => d?.isCountedIsolated(page));
    const why = holder
      ? `\npfn ${hexPfn(page)} is still counted in isolated_pages of balloon ${holder.name}: balloon_page_isolate looked the device up through page->private before deflation cleared it, then did list_del(&page->lru) on a page the balloon no longer has and counted it; isolated_pages never comes down for it`
      : '';
    mem.warnOnce(`${fn}:!b_dev_info`, `WARNING: ${fn}: WARN_ON_ONCE(!b_dev_info)${why}`, page);
  };
  /** balloon_page_migrate() of a page without a device: v6.17 warns and retries later. */
  const noMigrateDevice = (page: number): undefined => {
    mem.checkPfn(page, 'balloon_page_migrate');
    if (!rules.nullDeviceChecks)
      bug(
        mem,
        'BUG: kernel NULL pointer dereference (balloon_page_device(page)->migratepage)',
        page,
      );
    warnNoDevice('balloon_page_migrate', page);
    return undefined;
  };
  const migrateNotLocked = (newpage: number, page: number): void => {
    if (!(mem.pages.flags[page] & LOCKED)) bug(mem, 'VM_BUG_ON_PAGE(!PageLocked(page))', page);
    bug(mem, 'VM_BUG_ON_PAGE(!PageLocked(newpage))', newpage);
  };
  /** 2026: the balloon core's bookkeeping after the driver's migratepage. */
  function* coreMigrated(
    dev: BalloonDevice,
    newpage: number,
    page: number,
    rc: number,
  ): KernelGen<number> {
    if (rc < 0 && rc !== Errno.ENOENT) {
      dev.stats.migrateFailures++;
      return rc;
    }
    const taken = k.sched.preemptible;
    if (taken) yield* dev.pagesLock.lock();
    if (rc === 0) {
      getPage(mem, newpage);
      balloonPageInsert(dev, newpage);
      mem.vmstat.events[EV.balloon_migrate]++;
      if (dev.adjustManagedPageCount) moveManagedDebit(mem, page, newpage, dev.managedTaken);
      dev.stats.migrations++;
    } else {
      // Old page was deflated but new page not inflated.
      mem.vmstat.count('balloon_deflate');
      if (dev.adjustManagedPageCount) managedPagesAdd(mem, page, 1, dev.managedTaken);
      dev.stats.enoent++;
    }
    dev.uncountIsolated(page);
    balloonPageFinalize(mem, page);
    if (taken) dev.pagesLock.unlock();
    putPage(mem, page);
    return 0;
  }
  const ops: MovableOperations = {
    /**
     * balloon_page_isolate(): take the page off the device's list and count it isolated.
     * @see mm/balloon_compaction.c balloon_page_isolate()
     */
    isolatePage(page: number): boolean {
      if (design === '2026') return isolate2026(page);
      const dev = device(page);
      if (!dev) return isolateDeflated(page);
      const taken = dev.lockAtomic();
      dev.isolateLocked(page);
      dev.unlockAtomic(taken);
      return true;
    },
    /**
     * balloon_page_migrate(): the driver's migratepage, and in the 2026 design the
     * bookkeeping it no longer does. v6.0/v6.3 refuse MIGRATE_SYNC_NO_COPY with -EINVAL
     * first.
     * @see mm/balloon_compaction.c balloon_page_migrate()
     */
    *migratePage(newpage: number, page: number, mode: number): KernelGen<number> {
      if (mode === MIGRATE_MODE.SYNC_NO_COPY) return Errno.EINVAL;
      const dev = migrateDevice(newpage, page);
      if (dev === undefined) return Errno.EAGAIN;
      dev.inFlight++;
      try {
        const r = dev.migratepage!(dev, newpage, page, mode);
        const rc = typeof r === 'number' ? r : yield* r;
        if (dev.design === 'classic') return classicMigrated(dev, rc);
        return yield* coreMigrated(dev, newpage, page, rc);
      } finally {
        dev.inFlight--;
      }
    },
    /**
     * balloon_page_putback(): back on the device's list, one isolated page fewer.
     * @see mm/balloon_compaction.c balloon_page_putback()
     */
    putbackPage(page: number): void {
      const dev = device(page);
      if (!dev) {
        mem.checkPfn(page, 'balloon_page_putback');
        if (rules.nullDeviceChecks) {
          warnNoDevice('balloon_page_putback', page);
          return;
        }
        bug(
          mem,
          'BUG: kernel NULL pointer dereference (balloon_page_device(page)->pages_lock)',
          page,
        );
      }
      const taken = dev.lockAtomic();
      dev.putbackLocked(page);
      dev.unlockAtomic(taken);
    },
  };
  // Without the global lock the 2026 isolation can be preempted between its lookup and
  // the device's lock: a generator.
  if (design === '2026' && globalLock === undefined) ops.isolatePage = isolatePerDevice;
  if (design === 'classic') {
    /** A classic migration run alone: balloon_page_migrate() without a generator of its own. */
    const migrateAlone = (newpage: number, page: number, mode: number): MaybeGen<number> => {
      if (mode === MIGRATE_MODE.SYNC_NO_COPY) return Errno.EINVAL;
      const dev = migrateDevice(newpage, page);
      if (dev === undefined) return Errno.EAGAIN;
      dev.inFlight++;
      let settled = true;
      try {
        const r = dev.migratepage!(dev, newpage, page, mode);
        if (typeof r === 'number') return classicMigrated(dev, r);
        settled = false;
        return classicMigrateRest(dev, r);
      } finally {
        if (settled) dev.inFlight--;
      }
    };
    (ops as { [MIGRATE_PAGE_ALONE]?: MigratePageAlone })[MIGRATE_PAGE_ALONE] = migrateAlone;
  }
  return defineMovableOps('balloon', ops);
}

/** Classic: the driver did the bookkeeping; count its answer. */
function classicMigrated(dev: BalloonDevice, rc: number): number {
  if (rc === 0) dev.stats.migrations++;
  else dev.stats.migrateFailures++;
  return rc;
}

/** The rest of a classic migration whose driver answered with a generator. */
function* classicMigrateRest(dev: BalloonDevice, r: KernelGen<number>): KernelGen<number> {
  try {
    return classicMigrated(dev, yield* r);
  } finally {
    dev.inFlight--;
  }
}
