/**
 * `struct balloon_dev_info` (mm/balloon_compaction.c, from 2026 mm/balloon.c; spec §6.1-§6.2):
 * publishing pages, enqueue and dequeue, and the device side of isolation and putback. The
 * movable_operations themselves are in `balloon_ops.ts`.
 *
 * Critical sections under `pages_lock` (or the 2026 global `balloon_pages_lock`) contain no
 * scheduling point: the lock is never seen held by another task, so the movable_ops
 * callbacks that take it (isolate, putback) can be plain functions. Tasks still interleave
 * between sections, e.g. between the two locked phases of a dequeue (§0.2).
 * @module
 */

import {
  __ClearPageMovable,
  __SetPageMovable,
  type AddressSpace,
  allocPages,
  bug,
  checkOptionsObject,
  clearPageType,
  hasPageType,
  hexPfn,
  type Kctx,
  type KernelGen,
  type ListId,
  lockPage,
  type MaybeGen,
  MopsError,
  type MovableOperations,
  makeAddressSpace,
  PfnSet,
  PG,
  PGTY,
  SetPageMovableOps,
  SpinLock,
  setPageType,
  trylockPage,
  unlockPage,
  valueKind,
} from '@mops/core';
import { checkKctx, optionType } from './args.js';
import { type BalloonCore, coreOf, managedPagesAdd, spinLockAtomic } from './balloon_ops.js';
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
 * Mistakes that can be switched on to reproduce the race the dequeue rules prevent (for
 * race scenarios; never set in normal runs).
 */
export interface BalloonMistakes {
  /**
   * balloon_page_list_dequeue() does not skip a page it cannot trylock: it notes the first
   * page on the list, drops the list lock to sleep in `lock_page`, and deflates the page
   * without re-checking PG_isolated, as if a page found on the list stayed there. The VM
   * may isolate it meanwhile, so the page is deflated while isolated (spec §6.2, §6.4).
   */
  dequeueWaitsForPageLock?: boolean;
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

const ISOLATED = 1 << PG.isolated;

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
  private readonly core: BalloonCore;
  private readonly owner: number;
  /** What balloon_page_insert passes to __SetPageMovable (none in v6.17). */
  private readonly movableTarget: AddressSpace | MovableOperations | undefined;

  /**
   * balloon_devinfo_init(): a device on machine `k`. The first device of a machine sets up
   * the balloon movable_ops (v6.17: registers them for PGTY_offline).
   * @see include/linux/balloon_compaction.h balloon_devinfo_init()
   */
  constructor(
    /** The machine (memory and scheduler). */
    readonly k: Kctx,
    opts: BalloonDeviceOptions = {},
  ) {
    checkKctx(k);
    checkOptionsObject(opts, 'BalloonDevice');
    optionType(opts, 'name', 'string', 'BalloonDevice');
    optionType(opts, 'adjustManagedPageCount', 'boolean', 'BalloonDevice');
    optionType(opts, 'mistakes', 'object', 'BalloonDevice');
    const mem = k.mem;
    const design = opts.design ?? 'classic';
    if (design !== 'classic' && design !== '2026')
      throw new MopsError(
        'E_USAGE',
        `design must be 'classic' or '2026', got ${valueKind(design)}`,
        'design',
      );
    this.rules = balloonRules(mem.profile);
    if (design === '2026' && this.rules.marker !== 'page_type')
      throw new MopsError(
        'E_USAGE',
        `the 2026 balloon design builds on PG_movable_ops; use profile v6.17, not ${mem.profile.name}`,
        'design',
      );
    if (opts.migratepage !== undefined && typeof opts.migratepage !== 'function')
      throw new MopsError('E_USAGE', 'migratepage must be a function', 'migratepage');
    this.design = design;
    this.mistakes = { ...opts.mistakes };
    this.name = opts.name ?? 'balloon-kvm';
    this.migratepage = opts.migratepage;
    this.adjustManagedPageCount = opts.adjustManagedPageCount ?? false;
    this.core = coreOf(k, design);
    this.id = this.core.devices.length;
    this.core.devices.push(this);
    if (design === '2026') {
      if (!this.core.globalLock) this.core.globalLock = new SpinLock(k.sched, 'balloon_pages_lock');
      this.pagesLock = this.core.globalLock;
    } else this.pagesLock = new SpinLock(k.sched, 'pages_lock');
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
    this.k.mem.assertRunning();
    return allocPages(this.k.mem, this.rules.gfp, 0, { owner: this.owner });
  }

  /**
   * balloon_page_insert(): make `pfn` a balloon page of this device (PageOffline, the
   * movable marker, `private`) and add it to the list. Lock held; classic: page locked.
   * @see include/linux/balloon_compaction.h balloon_page_insert()
   */
  insert(pfn: number): void {
    const mem = this.k.mem;
    setPageType(mem, pfn, PGTY.offline);
    const target = this.movableTarget;
    if (target === undefined) SetPageMovableOps(mem, pfn);
    else __SetPageMovable(mem, pfn, target);
    mem.pages.priv[pfn] = this.id;
    mem.pages.setOwner(pfn, this.owner);
    mem.pages.lists.addHead(this.pages, pfn);
  }

  /**
   * balloon_page_delete() (v4.8-v6.3): clear PageOffline, `__ClearPageMovable`, clear
   * `private`, and unlink the page from the list unless the VM has isolated it (its lru is
   * the VM's then). Page locked.
   * @see include/linux/balloon_compaction.h balloon_page_delete()
   */
  delete(pfn: number): void {
    const mem = this.k.mem;
    clearPageType(mem, pfn, PGTY.offline);
    __ClearPageMovable(mem, pfn);
    mem.pages.priv[pfn] = 0;
    if (!(mem.pages.flags[pfn] & ISOLATED)) mem.pages.lists.del(pfn);
  }

  /**
   * balloon_page_finalize() (v6.17, 2026): clear `private` only; PageOffline and
   * PG_movable_ops are sticky until the page is freed.
   * @see mm/balloon.c balloon_page_finalize()
   */
  finalize(pfn: number): void {
    this.k.mem.pages.priv[pfn] = 0;
  }

  private checkNewPage(pfn: number, what: string): void {
    const mem = this.k.mem;
    mem.assertRunning();
    mem.checkPfn(pfn, what);
    const p = mem.pages;
    if (p.refcount[pfn] === 0 || p.compound[pfn] !== 0)
      throw new MopsError(
        'E_STATE',
        `${what}: pfn 0x${pfn.toString(16)} is not an allocated order-0 page; allocate it with balloonPageAlloc()`,
        'pfn',
      );
    if (p.type[pfn] !== -1 || p.priv[pfn] !== 0 || p.mapping[pfn] !== 0 || p.lists.isLinked(pfn))
      throw new MopsError(
        'E_STATE',
        `${what}: pfn 0x${pfn.toString(16)} is in use (typed, mapped, private or linked); enqueue a fresh page`,
        'pfn',
      );
  }

  /** balloon_page_enqueue_one(); the list lock is held. */
  private enqueueOne(pfn: number): void {
    const mem = this.k.mem;
    if (this.design === 'classic') {
      // We should be the only one holding a reference to the page; if not, memory
      // corruption is possible and we should stop.
      if (!trylockPage(mem, pfn)) bug(mem, 'kernel BUG: BUG_ON(!trylock_page(page))', pfn);
      this.insert(pfn);
      unlockPage(this.k, pfn);
    } else {
      this.insert(pfn);
      if (this.adjustManagedPageCount) managedPagesAdd(mem, pfn, -1);
    }
    mem.vmstat.count('balloon_inflate');
    if (this.rules.nrBalloonPages) mem.vmstat.modNode('nr_balloon_pages', 1);
  }

  /**
   * balloon_page_enqueue(b, page): publish a page from balloonPageAlloc() under the list
   * lock; compaction can find it from then on. The driver then tells the host.
   * @see mm/balloon_compaction.c balloon_page_enqueue()
   */
  *enqueue(pfn: number): KernelGen {
    this.checkNewPage(pfn, 'balloon_page_enqueue');
    yield* this.pagesLock.lock();
    this.enqueueOne(pfn);
    this.pagesLock.unlock();
  }

  /**
   * balloon_page_list_enqueue(b, pages): enqueue every page of `pfns` under one lock hold;
   * returns the number enqueued.
   * @see mm/balloon_compaction.c balloon_page_list_enqueue()
   */
  *listEnqueue(pfns: readonly number[]): KernelGen<number> {
    if (!Array.isArray(pfns))
      throw new MopsError(
        'E_USAGE',
        `balloon_page_list_enqueue: pfns must be an array of pfns, got ${valueKind(pfns)}`,
        'pfns',
      );
    for (const pfn of pfns) this.checkNewPage(pfn, 'balloon_page_list_enqueue');
    if (new Set(pfns).size !== pfns.length)
      throw new MopsError('E_USAGE', 'balloon_page_list_enqueue: a page appears twice', 'pfns');
    yield* this.pagesLock.lock();
    for (const pfn of pfns) this.enqueueOne(pfn);
    this.pagesLock.unlock();
    return pfns.length;
  }

  /**
   * balloon_page_list_dequeue(b, pages, n): under the list lock, take up to `n` pages off
   * the list (classic: skipping pages whose trylock fails and, v4.8-v6.3, isolated ones),
   * unpublish them and count balloon_deflate. Returns them as the kernel's `pages` list
   * holds them, each added at its head: the last dequeued first. The driver tells the host,
   * then frees them.
   * @see mm/balloon_compaction.c balloon_page_list_dequeue()
   */
  *listDequeue(n: number): KernelGen<number[]> {
    if (!Number.isInteger(n) || n < 0)
      throw new MopsError(
        'E_USAGE',
        `balloon_page_list_dequeue: n must be a non-negative integer, got ${valueKind(n)}`,
        'n',
      );
    this.k.mem.assertRunning();
    if (this.mistakes.dequeueWaitsForPageLock && this.design === 'classic' && n > 0)
      return yield* this.dequeueWaiting();
    yield* this.pagesLock.lock();
    const out = this.dequeueLocked(n);
    this.pagesLock.unlock();
    return out;
  }

  /** The {@link BalloonMistakes.dequeueWaitsForPageLock} dequeue of one page. */
  private *dequeueWaiting(): KernelGen<number[]> {
    const mem = this.k.mem;
    const lists = mem.pages.lists;
    yield* this.pagesLock.lock();
    const pfn = lists.first(this.pages);
    this.pagesLock.unlock();
    if (pfn === -1) return [];
    yield* lockPage(this.k, pfn);
    yield* this.pagesLock.lock();
    this.delete(pfn);
    mem.vmstat.count('balloon_deflate');
    unlockPage(this.k, pfn);
    this.pagesLock.unlock();
    return [pfn];
  }

  private dequeueLocked(n: number): number[] {
    const mem = this.k.mem;
    const p = mem.pages;
    const lists = p.lists;
    const classic = this.design === 'classic';
    const out: number[] = [];
    for (let pfn = lists.first(this.pages); pfn !== -1 && out.length < n; ) {
      const next = lists.nextOf(pfn);
      if (classic) {
        if (!trylockPage(mem, pfn)) {
          pfn = next;
          continue;
        }
        if (this.rules.dequeueSkipsIsolated && p.flags[pfn] & ISOLATED) {
          // Raced with isolation.
          unlockPage(this.k, pfn);
          pfn = next;
          continue;
        }
      }
      if (this.rules.finalizeOnly) {
        lists.del(pfn);
        if (!classic && this.adjustManagedPageCount) managedPagesAdd(mem, pfn, 1);
        this.finalize(pfn);
      } else this.delete(pfn);
      mem.vmstat.count('balloon_deflate');
      out.push(pfn);
      if (classic) unlockPage(this.k, pfn);
      if (this.rules.nrBalloonPages) mem.vmstat.modNode('nr_balloon_pages', -1);
      pfn = next;
    }
    // list_add(&page->lru, pages): each page goes to the head of the caller's list.
    return out.reverse();
  }

  /**
   * balloon_page_dequeue(b): one page off the balloon, or -1. Finding none is fine while
   * the VM has pages isolated (they cannot be deflated; the caller retries later, §6.4); a
   * second, separate lock hold then checks that the list is not empty with nothing
   * isolated, which would mean pages were lost: a kernel BUG (S23).
   * @see mm/balloon_compaction.c balloon_page_dequeue()
   */
  *dequeue(): KernelGen<number> {
    const got = yield* this.listDequeue(1);
    if (got.length === 1) return got[0];
    yield* this.pagesLock.lock();
    if (this.k.mem.pages.lists.isEmpty(this.pages) && this.isolatedPages === 0)
      bug(
        this.k.mem,
        'kernel BUG: balloon_page_dequeue: list empty and no page isolated, balloon pages are lost',
      );
    this.pagesLock.unlock();
    this.stats.dequeueEmpty++;
    return -1;
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

  /** Whether `pfn` is counted in `isolatedPages`. */
  isCountedIsolated(pfn: number): boolean {
    return this.isolatedSet.has(pfn);
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
