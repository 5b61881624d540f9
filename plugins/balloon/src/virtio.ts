/**
 * A virtio-balloon-like driver (drivers/virtio/virtio_balloon.c; spec §6.3): fill and leak
 * tasks serialised by `balloon_lock`, the driver's migratepage, and managed-page
 * accounting.
 * @module
 */

import {
  checkMachine,
  checkOptionsObject,
  Errno,
  EV,
  getPage,
  type Kctx,
  type KernelGen,
  type Machine,
  type MaybeGen,
  MopsError,
  Mutex,
  mightSleep,
  putPage,
  valueKind,
} from '@mops/core';
import { checkCount, checkMigrateByHand, optionType } from './args.js';
import { balloonPageDelete, balloonPageFinalize, balloonPageInsert } from './balloon_page.js';
import { type BalloonDesign, BalloonDevice, type BalloonMistakes } from './device.js';
import { Hypervisor, type HypervisorOptions } from './hypervisor.js';
import {
  leaveManagedDebit,
  managedByZone,
  managedPages,
  managedPagesAdd,
  moveManagedDebit,
} from './managed.js';
import type { BalloonRules } from './rules.js';

const EV_BALLOON_MIGRATE = EV.balloon_migrate;

/** VIRTIO_BALLOON_ARRAY_PFNS_MAX: pages one fill or leak call handles at most. */
export const VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256;

/** Options of a {@link VirtioBalloon}. */
export interface VirtioBalloonOptions {
  /** The balloon design (default `'classic'`; `'2026'` needs v6.17). */
  design?: BalloonDesign;
  /**
   * VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the host lets the guest deflate under memory
   * pressure, so inflated pages stay counted as managed. Default false.
   */
  deflateOnOom?: boolean;
  /** The host (default: a new {@link Hypervisor} with `hypervisorOptions`). */
  hypervisor?: Hypervisor;
  /** Options of the default host. */
  hypervisorOptions?: HypervisorOptions;
  /** Device name (default `'balloon-kvm'`). */
  name?: string;
  /** Mistakes of the balloon core to switch on (race scenarios only). */
  mistakes?: BalloonMistakes;
}

/** Counts kept by the driver. */
export interface VirtioBalloonStats {
  /** fill_balloon calls. */
  fills: number;
  /** leak_balloon calls. */
  leaks: number;
  /** Pages balloon_page_alloc() could not get ("Out of puff!"). */
  allocFailures: number;
  /** Pages the host refused to inflate (freed again). */
  refusedPages: number;
  /** leak_balloon calls on a balloon that had no page. */
  emptyLeaks: number;
  /**
   * leak_balloon calls cut short because the dequeue found no page it could take: every
   * remaining page isolated (§6.4) or, in the classic design, locked by someone else.
   */
  leakShort: number;
  /** migratepage calls that found balloon_lock taken (-EAGAIN). */
  migrateBusy: number;
  /**
   * migratepage calls whose new page the host refused (2026 design with a host that may
   * refuse: -ENOENT).
   */
  migrateRefused: number;
}

/**
 * The virtio balloon driver: `fill` inflates (allocate, give to the host, enqueue), `leak`
 * deflates (dequeue, give back, free), both under the `balloon_lock` mutex; `migratepage`
 * moves an inflated page for compaction. `numPages` is `vb->num_pages`, what the driver
 * believes the balloon holds.
 *
 * virtio's host never refuses a page; a {@link Hypervisor} configured to refuse
 * (`limit`, `refuseRate` or `refuse`: {@link Hypervisor.mayRefuse}) models vmw_balloon's.
 * The rule: a host that never refuses gets virtio's kernel order, a host that may refuse
 * gets vmw_balloon's. So fill publishes its pages (on the balloon list, where compaction
 * can isolate them) before it tells the host, unless the host may refuse: then it tells
 * the host first, enqueues the accepted pages and frees the refused ones (counted in
 * `refusedPages`). The classic migratepage keeps virtio's order (§0.2) with any host:
 * newpage is on the balloon list while the driver waits for the host (no compactor can
 * isolate it meanwhile: the VM keeps it locked until the move ends); virtio's inflate queue has no refusal, so the host takes the
 * page. The 2026 migratepage follows the same rule: inflate the new page, then deflate the
 * old one; with a host that may refuse, deflate the old page first and return -ENOENT when
 * the new one is refused (vmw_balloon's model), which the balloon core completes as a
 * deflation.
 * @see drivers/virtio/virtio_balloon.c
 */
export class VirtioBalloon {
  /** The balloon device (`vb->vb_dev_info`). */
  readonly dev: BalloonDevice;
  /** The host. */
  readonly host: Hypervisor;
  /** `vb->balloon_lock`. */
  readonly balloonLock: Mutex;
  /** `vb->num_pages`. */
  numPages = 0;
  /** `vb->pfns`: the buffer the host reads requests from (balloon_lock protects it). */
  readonly pfns = new Int32Array(VIRTIO_BALLOON_ARRAY_PFNS_MAX);
  /** `vb->num_pfns`. */
  numPfns = 0;
  /** VIRTIO_BALLOON_F_DEFLATE_ON_OOM negotiated. */
  readonly deflateOnOom: boolean;
  /** Counts. */
  readonly stats: VirtioBalloonStats = {
    fills: 0,
    leaks: 0,
    allocFailures: 0,
    refusedPages: 0,
    emptyLeaks: 0,
    leakShort: 0,
    migrateBusy: 0,
    migrateRefused: 0,
  };
  /** Kernel context of the machine. */
  readonly k: Kctx;
  /** Managed pages of all zones when the driver started (the accounting baseline). */
  readonly managedBase: number;
  /** Managed pages of each zone, by zone index, when the driver started. */
  readonly managedZoneBase: readonly number[];
  /**
   * By zone index, v4.8's known managed-page miscount (pages a zone's count is short;
   * negative: over): +1 on the old zone and -1 on the new one for each balloon page migrated
   * across zones, whose debit virtballoon_migratepage leaves behind (fixed in 5.5). All 0
   * in the other profiles, in the 2026 design and with deflate-on-OOM.
   */
  readonly managedMiscount: number[];

  /**
   * virtballoon_probe(): a balloon device with this driver's migratepage.
   * @see drivers/virtio/virtio_balloon.c virtballoon_probe()
   */
  constructor(
    /** The guest machine. */
    readonly machine: Machine,
    opts: VirtioBalloonOptions = {},
  ) {
    checkMachine(machine, 'VirtioBalloon');
    checkOptionsObject(opts, 'VirtioBalloon', [
      'design',
      'deflateOnOom',
      'hypervisor',
      'hypervisorOptions',
      'name',
      'mistakes',
    ]);
    optionType(opts, 'deflateOnOom', 'boolean', 'VirtioBalloon');
    optionType(opts, 'name', 'string', 'VirtioBalloon');
    optionType(opts, 'hypervisorOptions', 'object', 'VirtioBalloon');
    if (opts.hypervisor !== undefined && !(opts.hypervisor instanceof Hypervisor))
      throw new MopsError(
        'E_USAGE',
        `VirtioBalloon: hypervisor must be a Hypervisor (new Hypervisor(machine)), got ${valueKind(opts.hypervisor)}`,
        'hypervisor',
      );
    if (opts.hypervisor !== undefined && opts.hypervisor.guest !== machine)
      throw new MopsError(
        'E_USAGE',
        'VirtioBalloon: hypervisor is the host of another machine: give this machine its own (new Hypervisor(machine))',
        'hypervisor',
      );
    this.k = machine;
    this.managedBase = managedPages(machine);
    this.managedZoneBase = managedByZone(machine);
    this.managedMiscount = this.managedZoneBase.map(() => 0);
    this.deflateOnOom = opts.deflateOnOom ?? false;
    this.host = opts.hypervisor ?? new Hypervisor(machine, opts.hypervisorOptions);
    this.balloonLock = new Mutex(machine.sched, 'balloon_lock');
    const design = opts.design ?? 'classic';
    this.dev = new BalloonDevice(machine, {
      design,
      name: opts.name,
      mistakes: opts.mistakes,
      // The VM checked both pfns (balloon_page_migrate) and holds page isolated.
      migratepage: (dev, newpage, page) => this.migrateUnchecked(dev, newpage, page),
      adjustManagedPageCount: design === '2026' && !this.deflateOnOom,
    });
  }

  /** Whether the driver adjusts managed pages itself (classic, without deflate-on-OOM). */
  private get driverAdjustsManaged(): boolean {
    return this.dev.design === 'classic' && !this.deflateOnOom;
  }

  /**
   * Allocates up to `num - out.length` pages onto `out`; stops at the first allocation
   * failure. With `publish` (v4.8's balloon_page_enqueue, which allocates and enqueues), each
   * page is published as soon as it is allocated.
   */
  private *allocBatch(num: number, out: number[], publish = false): KernelGen {
    const { sched } = this.k;
    while (out.length < num) {
      if (sched.preemptible) yield { op: 'alloc_page', note: 'balloon_page_alloc' };
      const pfn = this.dev.balloonPageAlloc();
      if (pfn < 0) {
        // "Out of puff! Can't get 1 pages"; sleep before the next attempt.
        this.stats.allocFailures++;
        if (sched.preemptible) yield { op: 'msleep', note: 'msleep(200)' };
        return;
      }
      out.push(pfn);
      if (publish) yield* this.publish(pfn);
    }
  }

  /**
   * One page of fill_balloon's loop, balloon_lock held: balloon_page_enqueue (on the list,
   * PageOffline, movable, balloon_inflate), its pfn in the buffer, `num_pages` up and,
   * without deflate-on-OOM (classic), one managed page fewer.
   */
  private *publish(pfn: number): KernelGen {
    yield* this.dev.enqueue(pfn);
    this.pfns[this.numPfns++] = pfn;
    this.numPages++;
    if (this.driverAdjustsManaged) managedPagesAdd(this.k.mem, pfn, -1, this.dev.managedTaken);
  }

  /**
   * fill_balloon(vb, num): inflate by up to `num` pages (at most
   * {@link VIRTIO_BALLOON_ARRAY_PFNS_MAX}); returns the pages inflated. Allocation failures
   * and host refusals end with fewer pages, never with an error.
   *
   * With a host that never refuses (virtio's), the kernel's order: every page is published
   * (balloon_page_enqueue: on the balloon list, PageOffline, movable, balloon_inflate
   * counted, `num_pages` raised) before the host is told, once, after the loop. v4.8
   * publishes each page right after allocating it, balloon_lock held; later kernels allocate
   * the batch before taking balloon_lock, then enqueue it last-allocated first
   * ({@link BalloonRules.fillEnqueueLifo}). While fill waits for the host,
   * compaction may isolate its pages; their migration finds balloon_lock taken (-EAGAIN).
   *
   * With a host that may refuse ({@link Hypervisor.mayRefuse}), vmw_balloon's order: the
   * batch goes to the host first, only the accepted pages are enqueued and the refused ones
   * are freed (counted in `refusedPages`).
   * @see drivers/virtio/virtio_balloon.c fill_balloon()
   * @see drivers/misc/vmw_balloon.c vmballoon_inflate()
   */
  *fill(num: number): KernelGen<number> {
    checkCount(num, 'fill');
    this.k.mem.assertRunning();
    const { sched } = this.k;
    num = Math.min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX);
    this.stats.fills++;
    const rules = this.dev.rules;
    const asking = this.host.mayRefuse;
    const pages: number[] = [];
    if (!rules.fillAllocsUnderLock) yield* this.allocBatch(num, pages);
    // The batch sat on a local list, newest first, and is enqueued from its head.
    if (rules.fillEnqueueLifo) pages.reverse();
    yield* this.balloonLock.lock();
    this.numPfns = 0;
    if (rules.fillAllocsUnderLock) yield* this.allocBatch(num, pages, !asking);
    else if (!asking) for (const pfn of pages) yield* this.publish(pfn);
    let inflated = pages.length;
    if (asking) inflated = yield* this.inflateAccepted(pages);
    else if (this.numPfns !== 0) yield* this.tellHost('inflate', false);
    if (sched.preemptible) yield this.balloonLock.points.unlock;
    this.balloonLock.unlock();
    return inflated;
  }

  /**
   * vmw_balloon's order, balloon_lock held: the host is told of `pages` first; the pages it
   * accepted are enqueued, the refused ones freed. Returns the number accepted.
   */
  private *inflateAccepted(pages: readonly number[]): KernelGen<number> {
    for (const pfn of pages) this.pfns[this.numPfns++] = pfn;
    const accepted = pages.length ? yield* this.tellHost('inflate') : [];
    if (accepted.length !== pages.length) {
      const ok = new Set(accepted);
      for (const pfn of pages)
        if (!ok.has(pfn)) {
          this.stats.refusedPages++;
          putPage(this.k.mem, pfn);
        }
    }
    for (const pfn of accepted) {
      yield* this.dev.enqueue(pfn);
      this.numPages++;
      if (this.driverAdjustsManaged) managedPagesAdd(this.k.mem, pfn, -1, this.dev.managedTaken);
    }
    return accepted.length;
  }

  /**
   * leak_balloon(vb, num): deflate by up to `num` pages (never more than the balloon
   * holds); returns the pages released. Stops early when the remaining pages are isolated
   * by compaction (they cannot be deflated now; call again later).
   * @see drivers/virtio/virtio_balloon.c leak_balloon()
   */
  *leak(num: number): KernelGen<number> {
    checkCount(num, 'leak');
    this.k.mem.assertRunning();
    const { mem, sched } = this.k;
    this.stats.leaks++;
    num = Math.min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX);
    yield* this.balloonLock.lock();
    if (this.numPages === 0) this.stats.emptyLeaks++;
    // We can't release more pages than taken.
    num = Math.min(num, this.numPages);
    const pages: number[] = [];
    this.numPfns = 0;
    while (pages.length < num) {
      const pfn = yield* this.dev.dequeue();
      if (pfn < 0) {
        this.stats.leakShort++;
        break;
      }
      this.pfns[this.numPfns++] = pfn;
      pages.push(pfn);
      this.numPages--;
    }
    // With VIRTIO_BALLOON_F_MUST_TELL_HOST the host must hear of it before the pages go.
    if (pages.length) yield* this.tellHost('deflate');
    // release_pages_balloon(): the local list holds the last-dequeued page first (v4.8
    // walks vb->pfns instead).
    if (this.dev.rules.leakReleasesLifo) pages.reverse();
    for (const pfn of pages) {
      if (this.driverAdjustsManaged) managedPagesAdd(mem, pfn, 1, this.dev.managedTaken);
      if (sched.preemptible) yield { op: 'put_page', pfn };
      putPage(mem, pfn);
    }
    if (sched.preemptible) yield this.balloonLock.points.unlock;
    this.balloonLock.unlock();
    return pages.length;
  }

  /**
   * virtballoon_migratepage(), called by hand: trylock balloon_lock or -EAGAIN; put
   * `newpage` in the balloon with a reference of its own and inflate it at the host, deflate
   * `page` and drop the balloon's reference on it (classic, §0.2 order). In the 2026 design
   * only the two host calls, the balloon core doing the rest (§6.3 P5 form): with a host
   * that never refuses, inflate `newpage`, then deflate `page`, and return 0; with a host
   * that may refuse ({@link Hypervisor.mayRefuse}), vmw_balloon's order: deflate `page`
   * first, then inflate `newpage`, and return -ENOENT if the host refused it (the core
   * completes the migration as a deflation).
   *
   * The VM reaches the driver through `dev.migratepage` (`b_dev_info->migratepage`), having
   * checked the pages itself. Called by hand, the arguments are checked first and a bad one
   * is a MopsError that changes nothing: a `newpage` or `page` that is no page of the
   * machine (E_RANGE), a `dev` other than this driver's device (E_USAGE), a `page` the device
   * does not count isolated (E_STATE: only a page the VM isolated can migrate), a `newpage`
   * that is not a fresh allocated order-0 page nothing uses (E_STATE).
   * @see drivers/virtio/virtio_balloon.c virtballoon_migratepage()
   * @see drivers/misc/vmw_balloon.c vmballoon_migratepage()
   */
  migratepage(dev: BalloonDevice, newpage: number, page: number, _mode: number): MaybeGen<number> {
    checkMigrateByHand(this, dev, newpage, page);
    return this.migrateUnchecked(dev, newpage, page);
  }

  /** {@link migratepage} once its arguments are known good. */
  private migrateUnchecked(dev: BalloonDevice, newpage: number, page: number): MaybeGen<number> {
    // A task running alone cannot be interleaved: it runs the same steps as a plain
    // function, needing only the mutex to be free (see BalloonDevice.lockAtomic).
    return this.k.sched.preemptible
      ? this.migrateTask(dev, newpage, page)
      : this.migrateAlone(dev, newpage, page);
  }

  /** {@link migratepage} among other tasks, with its scheduling points and locks. */
  private *migrateTask(dev: BalloonDevice, newpage: number, page: number): KernelGen<number> {
    const lock = this.balloonLock;
    // Do not contend with fill/leak (or recurse when fill itself triggers compaction):
    // retrying the migration later is easier.
    yield lock.points.trylock;
    if (!lock.trylock()) {
      this.stats.migrateBusy++;
      return Errno.EAGAIN;
    }
    let rc = 0;
    if (dev.design === '2026') {
      if (this.host.mayRefuse) {
        // vmw_balloon: the old page goes first; the host may then refuse the new one.
        yield* this.tellOne('deflate', page);
        rc = this.newpageTaken(yield* this.tellOne('inflate', newpage));
      } else {
        yield* this.tellOne('inflate', newpage, false);
        yield* this.tellOne('deflate', page);
      }
    } else {
      // First step: inflate newpage (on the list first, then the host; no refusal).
      yield* dev.pagesLock.lock();
      this.takeNewpage(dev, newpage, page);
      dev.pagesLock.unlock();
      yield* this.tellOne('inflate', newpage, false);
      // Second step: deflate page.
      if (!dev.rules.finalizeOnly) {
        const locked = dev.rules.migrateDeleteUnderListLock;
        if (locked) yield* dev.pagesLock.lock();
        balloonPageDelete(this.k.mem, page);
        if (locked) dev.pagesLock.unlock();
      }
      yield* this.tellOne('deflate', page);
    }
    yield lock.points.unlock;
    lock.unlock();
    if (rc === 0 && dev.design === 'classic') {
      yield { op: 'put_page', pfn: page };
      this.dropOldpage(dev, page);
    }
    return rc;
  }

  /** {@link migratepage} for a task running alone. */
  private migrateAlone(dev: BalloonDevice, newpage: number, page: number): number {
    if (this.balloonLock.locked) {
      this.stats.migrateBusy++;
      return Errno.EAGAIN;
    }
    if (dev.design === '2026') {
      if (!this.host.mayRefuse) {
        this.inflateNow(newpage, false);
        this.deflateNow(page);
        return 0;
      }
      this.deflateNow(page);
      return this.newpageTaken(this.inflateNow(newpage));
    }
    this.takeNewpage(dev, newpage, page);
    this.inflateNow(newpage, false);
    if (!dev.rules.finalizeOnly) balloonPageDelete(this.k.mem, page);
    this.deflateNow(page);
    this.dropOldpage(dev, page);
    return 0;
  }

  /** 2026: 0, or -ENOENT when the host refused newpage (the balloon shrank by a page). */
  private newpageTaken(ok: boolean): number {
    if (ok) return 0;
    this.stats.migrateRefused++;
    this.numPages--;
    return Errno.ENOENT;
  }

  /**
   * Classic first step, list lock held: a balloon reference on newpage, the managed-page
   * debit moved along if the zone changes (before the lock in the kernel; nothing observes
   * the difference), newpage on the list, one isolated page fewer, balloon_migrate.
   */
  private takeNewpage(dev: BalloonDevice, newpage: number, page: number): void {
    const mem = this.k.mem;
    getPage(mem, newpage);
    if (!this.deflateOnOom) {
      if (dev.rules.migrateAdjustsManaged) moveManagedDebit(mem, page, newpage, dev.managedTaken);
      else leaveManagedDebit(mem, this.managedMiscount, page, newpage);
    }
    balloonPageInsert(dev, newpage);
    dev.uncountIsolated(page);
    mem.vmstat.events[EV_BALLOON_MIGRATE]++;
  }

  /** Classic, after balloon_lock: finalize (v6.17) and drop the balloon's reference. */
  private dropOldpage(dev: BalloonDevice, page: number): void {
    if (dev.rules.finalizeOnly) balloonPageFinalize(this.k.mem, page);
    putPage(this.k.mem, page);
  }

  /** tell_host() with the first `numPfns` entries of `pfns`. */
  private tellHost(op: 'inflate' | 'deflate', refusable = true): KernelGen<number[]> {
    return this.host.tellHost(this.k, op, this.pfns.subarray(0, this.numPfns), refusable);
  }

  /**
   * `vb->num_pfns = 1; set_page_pfns(vb, vb->pfns, page); tell_host(vb, vq)`; whether the
   * host took the page.
   */
  private *tellOne(op: 'inflate' | 'deflate', pfn: number, refusable = true): KernelGen<boolean> {
    this.numPfns = 1;
    this.pfns[0] = pfn;
    return (yield* this.tellHost(op, refusable)).length === 1;
  }

  /**
   * {@link tellOne} of an inflate for a task running alone: the host answers before anything
   * else runs. Whether it took the page.
   */
  private inflateNow(pfn: number, refusable = true): boolean {
    this.numPfns = 1;
    this.pfns[0] = pfn;
    mightSleep(this.k.sched, 'tell_host');
    return this.host.inflateOne(pfn, refusable);
  }

  /** {@link tellOne} of a deflate for a task running alone. */
  private deflateNow(pfn: number): void {
    this.numPfns = 1;
    this.pfns[0] = pfn;
    mightSleep(this.k.sched, 'tell_host');
    this.host.deflateOne(pfn);
  }

  /** Whether no fill, leak or migration is under way (the counts must then agree). */
  quiescent(): boolean {
    return !this.balloonLock.locked && this.dev.inFlight === 0;
  }
}
