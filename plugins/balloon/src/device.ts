/**
 * `struct balloon_dev_info` (mm/balloon_compaction.c, from 2026 mm/balloon.c; spec §6.1-§6.2):
 * the device, its page list operations and the device side of isolation and putback. The
 * page helpers (balloon_page_insert, _delete, _finalize) are in `balloon_page.ts`, the
 * enqueue/dequeue API in `enqueue.ts`, the movable_operations in `balloon_ops.ts`.
 *
 * Critical sections under `pages_lock` (or the 2026 global `balloon_pages_lock`) contain no
 * scheduling point: the lock is never seen held by another task, so the movable_ops
 * callbacks that take it (isolate, putback) can be plain functions. Tasks still interleave
 * between sections, e.g. between the two locked phases of a dequeue (§0.2). The one
 * exception is the isolation of {@link BalloonMistakes.perDeviceLockWithoutPageLock}, which
 * may be preempted before it takes the lock: that window is the race it is about.
 * @module
 */

import {
  type AddressSpace,
  checkOptionsObject,
  hasPageType,
  hexPfn,
  type Kctx,
  type KernelGen,
  type ListId,
  type MaybeGen,
  MopsError,
  type MovableOperations,
  makeAddressSpace,
  PfnSet,
  PG,
  PGTY,
  SpinLock,
} from '@mops/core';
import { checkKctx, optionType } from './args.js';
import { type BalloonCore, balloonInit, spinLockAtomic } from './balloon_ops.js';
import {
  balloonPageDelete,
  balloonPageFinalize,
  balloonPageInsert,
  checkDevicePage,
  checkNewPage,
} from './balloon_page.js';
import {
  balloonPageAlloc,
  balloonPageDequeue,
  balloonPageEnqueue,
  balloonPageListDequeue,
  balloonPageListEnqueue,
} from './enqueue.js';
import { type BalloonRules, balloonRules } from './rules.js';

/**
 * The two balloon designs: `'classic'` (page lock + per-device `pages_lock`; the driver's
 * migratepage does the list and reference work) and `'2026'` (P5: no page lock, one global
 * `balloon_pages_lock`, the balloon core does the bookkeeping and accepts -ENOENT).
 */
export type BalloonDesign = 'classic' | '2026';

/**
 * `b_dev_info->migratepage(b_dev_info, newpage, page, mode)`: the driver's part of a
 * balloon page migration: a plain result, or a generator when it may sleep talking to the
 * host among other tasks.
 */
export type BalloonMigratepage = (
  dev: BalloonDevice,
  newpage: number,
  page: number,
  mode: number,
) => MaybeGen<number>;

/**
 * Mistakes that can be switched on to reproduce the races the balloon's locking rules
 * prevent (for race scenarios; never set in normal runs). No release shipped either.
 */
export interface BalloonMistakes {
  /**
   * Classic design, v4.8-v6.3: balloon_page_list_dequeue() notes the first page on the list,
   * drops the list lock to sleep in `lock_page`, and deflates the page without re-checking
   * PG_isolated, as if a page found on the list stayed there. The VM may isolate it
   * meanwhile, so the page is deflated while isolated (spec §6.2, §6.4). Every release
   * instead walks the list under the list lock (since "virtio_balloon: fix race between
   * migration and ballooning", 2015) and only trylocks each page, so a page it takes is on
   * the list and not isolated. v6.17 dropped the PG_isolated re-check as dead code and only
   * finalizes a dequeued page: the mistake is refused there (E_USAGE).
   */
  dequeueWaitsForPageLock?: boolean;
  /**
   * 2026 design: the balloon stops using the page lock but keeps a lock per device, which
   * balloon_page_isolate() finds through `page->private`, read before that lock is taken.
   * Deflation may clear `private` and take the page between the lookup and the lock; the
   * isolation then unlinks and counts a page the balloon no longer has (spec §6.1, §9f).
   * The 2026 series first replaced the per-device lock by the global `balloon_pages_lock`
   * and read `private` under it, then dropped the page lock. Must be the same for every
   * device of a machine (the first one sets up the balloon core).
   */
  perDeviceLockWithoutPageLock?: boolean;
}

/** Options of a {@link BalloonDevice}. */
export interface BalloonDeviceOptions {
  /** Mistakes to switch on (race scenarios only). */
  mistakes?: BalloonMistakes;
  /** The design (default `'classic'`); `'2026'` needs the v6.17 profile. */
  design?: BalloonDesign;
  /** Name for messages and the v4.8 pseudo filesystem (default `'balloon-kvm'`). */
  name?: string;
  /** The driver's migratepage (`balloon_devinfo_init` leaves it NULL; drivers set it). */
  migratepage?: BalloonMigratepage;
  /**
   * 2026 design: the balloon core adjusts the zones' managed pages on inflate, deflate and
   * migrate (`b_dev_info->adjust_managed_page_count`). Default false.
   */
  adjustManagedPageCount?: boolean;
}

/** Counts kept by a balloon device (beyond the vmstat events). */
export interface BalloonDeviceStats {
  /**
   * balloon_page_dequeue calls that returned NULL although the balloon had pages: every
   * page was isolated (§6.4) or, in the classic design, its trylock failed.
   */
  dequeueEmpty: number;
  /** Pages isolated by the VM through this device. */
  isolations: number;
  /** Pages put back by the VM. */
  putbacks: number;
  /** Migrations the driver completed (it returned 0); -ENOENT ones are in {@link BalloonDeviceStats.enoent}. */
  migrations: number;
  /** Migrations that failed with the driver's error (e.g. -EAGAIN when balloon_lock was busy). */
  migrateFailures: number;
  /** 2026 design: migrations that ended with -ENOENT (old page deflated, new one not inflated). */
  enoent: number;
}

/**
 * `struct balloon_dev_info`: the list of inflated pages, the count of pages the VM has
 * isolated, the lock protecting both, and the driver's migratepage.
 * @see include/linux/balloon_compaction.h struct balloon_dev_info
 */
export class BalloonDevice {
  /** The value stored in `page->private` of this device's pages. */
  readonly id: number;
  /** `pages`: inflated pages not isolated, linked through `lru` (newest first). */
  readonly pages: ListId;
  /** `isolated_pages`. */
  isolatedPages = 0;
  /** `pages_lock` (classic) or the machine's global `balloon_pages_lock` (2026). */
  readonly pagesLock: SpinLock;
  /** `migratepage`. */
  migratepage: BalloonMigratepage | undefined;
  /** 2026: `adjust_managed_page_count`. */
  adjustManagedPageCount: boolean;
  /**
   * The managed pages this balloon (its driver or the core for it) has taken from each zone,
   * by zone index: its own share of adjust_managed_page_count's calls, which other callers
   * of the shared count (another balloon, memory hotplug) leave alone.
   */
  readonly managedTaken: number[];
  /** The design. */
  readonly design: BalloonDesign;
  /** The profile's balloon rules. */
  readonly rules: BalloonRules;
  /** The name. */
  readonly name: string;
  /** Counts. */
  readonly stats: BalloonDeviceStats = {
    dequeueEmpty: 0,
    isolations: 0,
    putbacks: 0,
    migrations: 0,
    migrateFailures: 0,
    enoent: 0,
  };
  /** The pages counted in `isolatedPages` (for the checker). */
  private readonly isolatedSet: PfnSet;
  /** Migrations of this device's pages under way (the checker waits for them). */
  inFlight = 0;
  /** The mistakes switched on (empty normally). */
  readonly mistakes: Readonly<BalloonMistakes>;
  /** v4.8: the address_space of the device's pseudo inode, whose a_ops are balloon_aops. */
  readonly space: AddressSpace | undefined;
  /** The page-owner tag of this device's pages (allocation tracking). */
  readonly owner: number;
  /**
   * What balloon_page_insert passes to `__SetPageMovable`: the device's address_space
   * (v4.8) or the balloon's movable_operations (v6.0, v6.3); none in v6.17, where
   * `SetPageMovableOps` marks the page and the ops are found by its type.
   */
  readonly movableTarget: AddressSpace | MovableOperations | undefined;
  private readonly core: BalloonCore;

  /**
   * balloon_devinfo_init(): a device on machine `k`. The machine's balloon core is set up
   * when the plugin is installed (balloon_init, an initcall in the kernel; v6.17: the
   * balloon movable_ops registered for PGTY_offline); on a machine without the plugin, the
   * first device sets it up.
   * @see include/linux/balloon_compaction.h balloon_devinfo_init()
   */
  constructor(
    /** The machine (memory and scheduler). */
    readonly k: Kctx,
    opts: BalloonDeviceOptions = {},
  ) {
    checkKctx(k);
    checkOptionsObject(opts, 'BalloonDevice', [
      'mistakes',
      'design',
      'name',
      'migratepage',
      'adjustManagedPageCount',
    ]);
    optionType(opts, 'name', 'string', 'BalloonDevice');
    optionType(opts, 'adjustManagedPageCount', 'boolean', 'BalloonDevice');
    optionType(opts, 'mistakes', 'object', 'BalloonDevice');
    const mem = k.mem;
    this.rules = balloonRules(mem.profile);
    if (opts.migratepage !== undefined && typeof opts.migratepage !== 'function')
      throw new MopsError('E_USAGE', 'migratepage must be a function', 'migratepage');
    // balloonInit checks the design and the mistakes before it sets anything up.
    this.core = balloonInit(k, opts.design, opts.mistakes);
    this.design = this.core.design;
    this.mistakes = { ...opts.mistakes };
    this.name = opts.name ?? 'balloon-kvm';
    this.migratepage = opts.migratepage;
    this.adjustManagedPageCount = opts.adjustManagedPageCount ?? false;
    this.managedTaken = k.mem.node.zones.map(() => 0);
    this.id = this.core.devices.length;
    this.core.devices.push(this);
    this.pagesLock = this.core.globalLock ?? new SpinLock(k.sched, 'pages_lock');
    this.pages = mem.pages.lists.newList();
    this.isolatedSet = new PfnSet(mem.nrPages);
    this.space =
      this.rules.marker === 'address_space'
        ? makeAddressSpace(this.name, this.core.ops)
        : undefined;
    this.owner = mem.owners.register('balloon');
    const marker = this.rules.marker;
    this.movableTarget =
      marker === 'page_type' ? undefined : marker === 'address_space' ? this.space : this.core.ops;
  }

  /** The balloon's movable_operations on this machine (`balloon_mops` / `balloon_aops`). */
  get ops(): MovableOperations {
    return this.core.ops;
  }

  /** Pages on the list (walks it). */
  listLength(): number {
    return this.k.mem.pages.lists.count(this.pages);
  }

  /** Pages on the list, newest first. */
  listPages(): number[] {
    return this.k.mem.pages.lists.toArray(this.pages);
  }

  /**
   * balloon_page_alloc(): one page for the balloon, or -1. A failure is normal (counted by
   * the allocator), never fatal.
   * @see mm/balloon_compaction.c balloon_page_alloc()
   */
  balloonPageAlloc(): number {
    return balloonPageAlloc(this);
  }

  /**
   * balloon_page_insert(): make `pfn` a balloon page of this device (PageOffline, the
   * movable marker, `private`) and add it to the list. Lock held; classic: page locked.
   * `pfn` must be an allocated order-0 page nothing uses yet (a migration target, a page
   * from {@link balloonPageAlloc}): a pfn outside the machine is a MopsError (E_RANGE), a
   * free or used page one (E_STATE), and neither changes anything.
   * @see include/linux/balloon_compaction.h balloon_page_insert()
   */
  insert(pfn: number): void {
    checkNewPage(this.k.mem, pfn, 'balloon_page_insert');
    balloonPageInsert(this, pfn);
  }

  /**
   * balloon_page_delete() (v4.8-v6.3): clear PageOffline, `__ClearPageMovable`, clear
   * `private`, and unlink the page from the list unless the VM has isolated it (its lru is
   * the VM's then). Page locked. `pfn` must be a balloon page of this device: a pfn outside
   * the machine is a MopsError (E_RANGE), any other page one (E_STATE), and neither changes
   * anything.
   * @see include/linux/balloon_compaction.h balloon_page_delete()
   */
  delete(pfn: number): void {
    checkDevicePage(this, pfn, 'balloon_page_delete');
    balloonPageDelete(this.k.mem, pfn);
  }

  /**
   * balloon_page_finalize() (v6.17, 2026): clear `private` only; PageOffline and
   * PG_movable_ops are sticky until the page is freed. `pfn` must be a balloon page of this
   * device, dequeued or migrated away: a pfn outside the machine is a MopsError (E_RANGE),
   * any other page, or one still on the balloon list, one (E_STATE), and neither changes
   * anything.
   * @see mm/balloon.c balloon_page_finalize()
   */
  finalize(pfn: number): void {
    checkDevicePage(this, pfn, 'balloon_page_finalize');
    const p = this.k.mem.pages;
    if (p.lists.isLinked(pfn) && !(p.flags[pfn] & (1 << PG.isolated)))
      throw new MopsError(
        'E_STATE',
        `balloon_page_finalize: pfn ${hexPfn(pfn)} is still on the balloon list; finalize a page once it is dequeued or migrated away`,
        'pfn',
      );
    balloonPageFinalize(this.k.mem, pfn);
  }

  /**
   * balloon_page_enqueue(b, page): publish a page from balloonPageAlloc() under the list
   * lock; compaction can find it from then on. The driver then tells the host.
   * @see mm/balloon_compaction.c balloon_page_enqueue()
   */
  enqueue(pfn: number): KernelGen {
    return balloonPageEnqueue(this, pfn);
  }

  /**
   * balloon_page_list_enqueue(b, pages): enqueue every page of `pfns` under one lock hold;
   * returns the number enqueued.
   * @see mm/balloon_compaction.c balloon_page_list_enqueue()
   */
  listEnqueue(pfns: readonly number[]): KernelGen<number> {
    return balloonPageListEnqueue(this, pfns);
  }

  /**
   * balloon_page_list_dequeue(b, pages, n): under the list lock, take up to `n` pages off
   * the list (classic: skipping pages whose trylock fails and, v4.8-v6.3, isolated ones),
   * unpublish them and count balloon_deflate. Returns them as the kernel's `pages` list
   * holds them, each added at its head: the last dequeued first. The driver tells the host,
   * then frees them.
   * @see mm/balloon_compaction.c balloon_page_list_dequeue()
   */
  listDequeue(n: number): KernelGen<number[]> {
    return balloonPageListDequeue(this, n);
  }

  /**
   * balloon_page_dequeue(b): one page off the balloon, or -1. Finding none is fine while
   * the VM has pages isolated (they cannot be deflated; the caller retries later, §6.4); a
   * second, separate lock hold then checks that the list is not empty with nothing
   * isolated, which would mean pages were lost: a kernel BUG (S23).
   * @see mm/balloon_compaction.c balloon_page_dequeue()
   */
  dequeue(): KernelGen<number> {
    return balloonPageDequeue(this);
  }

  /**
   * The list-lock part of balloon_page_isolate(). `pfn` must be a balloon page of this
   * device on its list (PageOffline, `private` = this device, not isolated); anything else
   * is a MopsError (E_STATE) and changes nothing.
   */
  isolateLocked(pfn: number): void {
    const what = 'balloon_page_isolate';
    this.k.mem.checkPfn(pfn, what);
    const p = this.k.mem.pages;
    if (
      p.priv[pfn] !== this.id ||
      !hasPageType(this.k.mem, pfn, PGTY.offline) ||
      this.isolatedSet.has(pfn) ||
      !p.lists.isLinked(pfn)
    )
      throw new MopsError(
        'E_STATE',
        `${what}: pfn ${hexPfn(pfn)} is not a page on the list of balloon ${this.name}; isolate a page listPages() returns`,
        'pfn',
      );
    p.lists.del(pfn);
    this.countIsolated(pfn);
  }

  /**
   * The list-lock part of balloon_page_isolate() when the device was looked up through
   * `private` before the lock was taken ({@link BalloonMistakes.perDeviceLockWithoutPageLock}):
   * a page still on the list is isolated as by {@link isolateLocked}; a page deflation took
   * in between (off the list, `private` cleared) is counted isolated all the same, as the
   * kernel's `list_del(&page->lru)` and `isolated_pages++` would, although the balloon no
   * longer has it (what its list_del hits instead is the race scenario's to report). A pfn
   * outside the machine is E_RANGE; a page that is neither on the list nor a deflated
   * PageOffline page nobody counts isolated is E_STATE; neither changes anything.
   */
  isolateLockedAfterLookup(pfn: number): void {
    const what = 'balloon_page_isolate';
    this.k.mem.checkPfn(pfn, what);
    const p = this.k.mem.pages;
    if (p.priv[pfn] === this.id && p.lists.isLinked(pfn)) {
      this.isolateLocked(pfn);
      return;
    }
    if (
      p.priv[pfn] !== 0 ||
      !hasPageType(this.k.mem, pfn, PGTY.offline) ||
      this.isolatedSet.has(pfn)
    )
      throw new MopsError(
        'E_STATE',
        `${what}: pfn ${hexPfn(pfn)} is neither on the list of balloon ${this.name} nor a page deflated from it`,
        'pfn',
      );
    this.countIsolated(pfn);
  }

  /** `isolated_pages++` for `pfn`, in the device's counts and the checker's set. */
  private countIsolated(pfn: number): void {
    this.isolatedPages++;
    this.isolatedSet.add(pfn);
    this.stats.isolations++;
  }

  /**
   * The list-lock part of balloon_page_putback(). `pfn` must be a page this device counts
   * isolated; anything else is a MopsError (E_STATE) and changes nothing.
   */
  putbackLocked(pfn: number): void {
    this.checkIsolated(pfn, 'balloon_page_putback');
    this.k.mem.pages.lists.addHead(this.pages, pfn);
    this.isolatedPages--;
    this.isolatedSet.delete(pfn);
    this.stats.putbacks++;
  }

  /** A MopsError (E_STATE) unless `pfn` is counted in `isolatedPages`. */
  private checkIsolated(pfn: number, what: string): void {
    this.k.mem.checkPfn(pfn, what);
    if (!this.isolatedSet.has(pfn))
      throw new MopsError(
        'E_STATE',
        `${what}: pfn ${hexPfn(pfn)} is not an isolated page of balloon ${this.name} (isolated_pages ${this.isolatedPages})`,
        'pfn',
      );
  }

  /** Whether `pfn` is counted in `isolatedPages` (never, for a value that is not an integer). */
  isCountedIsolated(pfn: number): boolean {
    return Number.isInteger(pfn) && this.isolatedSet.has(pfn);
  }

  /** The pages counted in `isolatedPages`, ascending. */
  countedIsolated(): ReadonlySet<number> {
    return this.isolatedSet;
  }

  /**
   * Drops `pfn` from the isolated count (it migrated or was deflated while isolated). A
   * page this device does not count isolated is a MopsError (E_STATE) and changes nothing.
   */
  uncountIsolated(pfn: number): void {
    this.checkIsolated(pfn, 'uncountIsolated');
    this.isolatedPages--;
    this.isolatedSet.delete(pfn);
  }

  /**
   * Takes this device's list lock inside a plain function (see the module note); returns
   * whether the lock object was taken, for {@link unlockAtomic}.
   */
  lockAtomic(): boolean {
    return spinLockAtomic(this.k, this.pagesLock);
  }

  /** Releases the list lock taken by {@link lockAtomic}. */
  unlockAtomic(taken: boolean): void {
    if (taken) this.pagesLock.unlock();
  }
}
