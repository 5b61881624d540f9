/**
 * "filler": a tiny built-in movable_ops driver whose pages exist only to be migrated. The
 * workloads use it to fill memory with pages compaction can move, and `compaction_test`
 * uses it the way the selftest uses mlocked memory. It publishes its pages exactly as its
 * machine's profile requires (spec §5.2) and follows the callback contract of spec §2
 * with plain (atomic) callbacks, so the VM never records a protocol violation against it.
 * @module
 */

import { putPage } from '../buddy/free_page.js';
import { __GFP, ALLOC, GFP } from '../buddy/gfp.js';
import { allocPages } from '../buddy/page_alloc.js';
import { hexPfn } from '../debug/dump_page.js';
import { checkMachine, checkOptionsObject, Errno, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { PAGE_SIZE, pageblock_nr_pages } from '../memory/constants.js';
import { memoryExt } from '../memory/mem.js';
import { PfnSet } from '../memory/pfn_set.js';
import {
  __ClearPageMovable,
  __SetPageMovable,
  defineMovableOps,
  makeAddressSpace,
  SetPageMovableOps,
  setMovableOps,
} from '../migrate/movable.js';
import type { AddressSpace, MovableOperations } from '../migrate/types.js';
import { ISOLATED, PAGE_MAPPING_FLAGS, PAGE_MAPPING_MOVABLE, PG, PGTY } from '../page/flags.js';
import { type Kctx, trylockPage, unlockPage } from '../page/lock.js';
import { getPage } from '../page/refcount.js';
import { fraction } from './options.js';

/** The filler's driver and owner name (page owner, invariant checker, messages). */
export const FILLER_NAME = 'filler';

/** Options of {@link MovableFiller.alloc}. */
export interface FillerAllocOptions {
  /**
   * Take pages below the watermarks too (ALLOC_NO_WATERMARKS), as the workloads do when
   * they mean to use every page. Default false: a normal GFP_HIGHUSER_MOVABLE allocation.
   */
  reserves?: boolean;
}

/**
 * The filler driver of one machine (see {@link createMovableFiller}). Its pages are order-0
 * pages it holds one reference on. While the VM has one isolated it is in
 * {@link MovableFiller.isolated} instead of {@link MovableFiller.pages}.
 */
export interface MovableFiller {
  /** The machine. */
  readonly machine: Machine;
  /** The driver's movable_operations (plain functions). */
  readonly ops: MovableOperations;
  /** Owner id of the filler's pages (`mem.owners`). */
  readonly owner: number;
  /** Pages the filler owns and the VM has not isolated. */
  readonly pages: ReadonlySet<number>;
  /** Pages the VM has isolated (between isolate_page and migrate_page or putback_page). */
  readonly isolated: ReadonlySet<number>;
  /** Pages migrated by the VM so far (successful migrate_page calls). */
  readonly migrations: number;
  /**
   * Allocates `n` order-0 movable pages (GFP_HIGHUSER_MOVABLE) and publishes them. Stops
   * early when memory runs out.
   * @param n how many pages (default 1)
   * @param opts whether to take pages below the watermarks too
   * @returns the pfns it got
   * @throws {@link MopsError} `E_RANGE` for an `n` that is not an integer ≥ 0
   */
  alloc(n?: number, opts?: FillerAllocOptions): number[];
  /**
   * Publishes an order-0 page the caller has just allocated (refcount 1, not published,
   * unlocked) as a filler page. The filler takes over the caller's reference and becomes
   * the page's owner.
   * @param pfn the page
   * @throws {@link MopsError} `E_RANGE` for a pfn outside the machine; `E_STATE` for a page
   *   that is not a fresh order-0 allocation, is a filler page already, or is locked
   */
  adopt(pfn: number): void;
  /**
   * The owner releases one of its pages that is not isolated: in v4.8–v6.3 under the page
   * lock it unpublishes it (`__ClearPageMovable`), then drops its reference; in v6.17 it just
   * drops the reference (the page type and PG_movable_ops go when the page is freed).
   * @param pfn a page the filler owns
   * @throws {@link MopsError} `E_STATE` for a page it does not own, the VM has isolated, or
   *   someone holds locked
   */
  free(pfn: number): void;
  /** Frees every page the filler owns that is not isolated; returns how many. */
  freeAll(): number;
  /** The filler's invariant checker (registered as `'filler'`); returns the violations. */
  check(): string[];
}

/** Bytes checked per page: a 4-byte tag at the start and at the end of the page. */
const TAG_BYTES = 4;

/**
 * The filler's movable_operations: plain (atomic) callbacks of the kernel's arity, methods
 * shared by every machine's filler. The VM calls them on the ops object, which leads to its
 * driver.
 */
class FillerOps implements MovableOperations {
  constructor(private readonly filler: Filler) {}
  isolatePage(page: number, _mode: number): boolean {
    return this.filler.isolatePage(page);
  }
  migratePage(dst: number, src: number, _mode: number): number {
    return this.filler.migratePage(dst, src);
  }
  putbackPage(page: number): void {
    this.filler.putbackPage(page);
  }
}

class Filler implements MovableFiller {
  readonly ops: MovableOperations;
  readonly owner: number;
  readonly pages: PfnSet;
  readonly isolated: PfnSet;
  migrations = 0;
  private readonly k: Kctx;
  /** Content tag of each page, 0 for none (machines with contents only). */
  private readonly tags: Uint32Array;
  private nextTag = 1;
  private readonly space: AddressSpace;
  private readonly target: AddressSpace | MovableOperations;
  private readonly handle: number;

  constructor(readonly machine: Machine) {
    const mem = machine.mem;
    this.pages = new PfnSet(mem.nrPages);
    this.tags = new Uint32Array(mem.pages.contents ? mem.nrPages : 0);
    this.isolated = new PfnSet(mem.nrPages);
    this.k = { mem, sched: machine.sched };
    this.owner = mem.owners.register(FILLER_NAME);
    this.ops = defineMovableOps(FILLER_NAME, new FillerOps(this));
    this.space = makeAddressSpace(FILLER_NAME, this.ops);
    const marker = machine.profile.movableMarker;
    this.target = marker === 'address_space' ? this.space : this.ops;
    this.handle = mem.mappings.handleOf(this.target);
    if (marker === 'page_type') {
      const rc = setMovableOps(mem, this.ops, PGTY.offline);
      if (rc !== 0)
        throw new MopsError(
          'E_PLUGIN',
          `${FILLER_NAME}: page type Offline already has movable_ops on this machine (set_movable_ops returned ${rc}); in ${machine.profile.name} the filler cannot share a machine with another Offline driver such as the balloon`,
          'filler',
        );
    }
    machine.registerInvariantChecker(FILLER_NAME, () => this.check());
  }

  // ---- owner side ----

  /** Marks `pfn` (locked by the caller) as a filler page, per profile (spec §5.2). */
  private publish(pfn: number): void {
    const mem = this.machine.mem;
    if (mem.profile.movableMarker === 'page_type') {
      mem.pages.type[pfn] = PGTY.offline << 24;
      SetPageMovableOps(mem, pfn);
    } else __SetPageMovable(mem, pfn, this.target);
  }

  /** Writes the page's tag at both ends and a fill byte between (machines with contents). */
  private stamp(pfn: number, tag: number): void {
    const data = this.machine.mem.pages.contents;
    if (!data) return;
    const base = pfn * PAGE_SIZE;
    data.fill(tag & 0xff, base + TAG_BYTES, base + PAGE_SIZE - TAG_BYTES);
    for (let i = 0; i < TAG_BYTES; i++) {
      const b = (tag >>> (8 * i)) & 0xff;
      data[base + i] = b;
      data[base + PAGE_SIZE - TAG_BYTES + i] = b;
    }
    this.tags[pfn] = tag;
  }

  /** The tag read back from a page's first and last bytes, or -1 when they disagree. */
  private readTag(pfn: number): number {
    const data = this.machine.mem.pages.contents;
    if (!data) return -1;
    const base = pfn * PAGE_SIZE;
    let head = 0;
    let tail = 0;
    for (let i = 0; i < TAG_BYTES; i++) {
      head |= data[base + i] << (8 * i);
      tail |= data[base + PAGE_SIZE - TAG_BYTES + i] << (8 * i);
    }
    return head === tail ? head >>> 0 : -1;
  }

  adopt(pfn: number): void {
    const m = this.machine;
    m.mem.assertRunning();
    m.checkPfn(pfn);
    const p = m.mem.pages;
    if (
      p.refcount[pfn] !== 1 ||
      p.compound[pfn] !== 0 ||
      p.mapping[pfn] !== 0 ||
      p.flags[pfn] & (1 << PG.reserved)
    )
      throw new MopsError(
        'E_STATE',
        `${FILLER_NAME}: pfn ${pfn} is not a freshly allocated order-0 page (refcount ${p.refcount[pfn]}, mapping ${p.mapping[pfn]}${p.flags[pfn] & (1 << PG.reserved) ? ', PG_reserved' : ''})`,
        'pfn',
      );
    if (this.pages.has(pfn) || this.isolated.has(pfn))
      throw new MopsError('E_STATE', `${FILLER_NAME}: pfn ${pfn} is already a filler page`, 'pfn');
    if (!trylockPage(m.mem, pfn))
      throw new MopsError('E_STATE', `${FILLER_NAME}: pfn ${pfn} is locked`, 'pfn');
    p.setOwner(pfn, this.owner);
    this.publish(pfn);
    unlockPage(this.k, pfn);
    this.stamp(pfn, this.nextTag);
    // Tags run 1..2^32-1: 0 means no tag.
    this.nextTag = this.nextTag === 0xffffffff ? 1 : this.nextTag + 1;
    this.pages.add(pfn);
  }

  alloc(n = 1, opts: FillerAllocOptions = {}): number[] {
    const m = this.machine;
    m.mem.assertRunning();
    if (!Number.isInteger(n) || n < 0)
      throw new MopsError(
        'E_RANGE',
        `${FILLER_NAME}: alloc(n) needs an integer n ≥ 0, got ${valueKind(n)}`,
        'n',
      );
    const out: number[] = [];
    const allocFlags = opts.reserves ? ALLOC.NO_WATERMARKS : 0;
    for (let i = 0; i < n; i++) {
      const pfn = allocPages(m.mem, GFP.HIGHUSER_MOVABLE | __GFP.NOWARN, 0, {
        owner: this.owner,
        allocFlags,
      });
      if (pfn < 0) break;
      this.adopt(pfn);
      out.push(pfn);
    }
    return out;
  }

  free(pfn: number): void {
    const m = this.machine;
    const mem = m.mem;
    mem.assertRunning();
    if (this.isolated.has(pfn))
      throw new MopsError(
        'E_STATE',
        `${FILLER_NAME}: pfn ${pfn} is isolated by the VM; free it after putback or migration`,
        'pfn',
      );
    if (!this.pages.has(pfn))
      throw new MopsError('E_STATE', `${FILLER_NAME}: pfn ${pfn} is not a filler page`, 'pfn');
    if (mem.profile.movableMarker !== 'page_type') {
      // v4.8–v6.3: unpublish under the page lock, so a scanner that peeked the tag finds the
      // pointer gone once it holds the lock (spec §4.1).
      if (!trylockPage(mem, pfn))
        throw new MopsError('E_STATE', `${FILLER_NAME}: pfn ${pfn} is locked`, 'pfn');
      __ClearPageMovable(mem, pfn);
      unlockPage(this.k, pfn);
    }
    this.pages.delete(pfn);
    if (this.tags.length) this.tags[pfn] = 0;
    putPage(mem, pfn);
  }

  freeAll(): number {
    const all = [...this.pages].sort((a, b) => a - b);
    for (const pfn of all) this.free(pfn);
    return all.length;
  }

  // ---- movable_operations (spec §2.1) ----

  /** @internal isolate_page (spec §2.1), called through {@link FillerOps}. */
  isolatePage(page: number): boolean {
    if (!this.pages.has(page)) return false;
    this.pages.delete(page);
    this.isolated.add(page);
    return true;
  }

  /** @internal migrate_page, called through {@link FillerOps}. */
  migratePage(dst: number, src: number): number {
    if (!this.isolated.has(src)) return Errno.EINVAL;
    const mem = this.machine.mem;
    const data = mem.pages.contents;
    if (data) {
      data.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
      const tags = this.tags;
      tags[dst] = tags[src];
      tags[src] = 0;
    }
    // dst becomes our page: published (the VM holds its lock) with our own reference.
    mem.pages.setOwner(dst, this.owner);
    this.publish(dst);
    getPage(mem, dst);
    this.isolated.delete(src);
    this.pages.add(dst);
    // src: v4.8–v6.3 unpublish it; then drop our reference (the VM still holds its own).
    if (mem.profile.driverClearsSrc) __ClearPageMovable(mem, src);
    putPage(mem, src);
    this.migrations++;
    return 0;
  }

  /** @internal putback_page, called through {@link FillerOps}. */
  putbackPage(page: number): void {
    this.isolated.delete(page);
    this.pages.add(page);
  }

  // ---- invariant checker ----

  check(): string[] {
    const out: string[] = [];
    const mem = this.machine.mem;
    const p = mem.pages;
    const byType = mem.profile.movableMarker === 'page_type';
    const marked = (pfn: number): boolean =>
      byType
        ? p.type[pfn] >>> 24 === PGTY.offline && (p.flags[pfn] & (1 << PG.movable_ops)) !== 0
        : (p.mapping[pfn] & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_MOVABLE &&
          p.mapping[pfn] >>> 2 === this.handle;
    for (const pfn of this.pages) {
      if (out.length >= 50) break;
      if (p.refcount[pfn] < 1)
        out.push(`pfn ${hexPfn(pfn)}: owned page has refcount ${p.refcount[pfn]}`);
      if (p.flags[pfn] & ISOLATED) out.push(`pfn ${hexPfn(pfn)}: owned page is isolated`);
      if (!marked(pfn)) out.push(`pfn ${hexPfn(pfn)}: owned page is not published as movable`);
      const tag = this.tags.length ? this.tags[pfn] : 0;
      if (tag !== 0 && this.readTag(pfn) !== tag)
        out.push(`pfn ${hexPfn(pfn)}: contents lost (tag ${tag} expected)`);
    }
    for (const pfn of this.isolated) {
      if (out.length >= 50) break;
      if (this.pages.has(pfn)) out.push(`pfn ${hexPfn(pfn)}: both owned and isolated`);
      if (!(p.flags[pfn] & ISOLATED))
        out.push(`pfn ${hexPfn(pfn)}: isolated page lacks the VM's isolated flag`);
      if (p.refcount[pfn] < 2)
        out.push(
          `pfn ${hexPfn(pfn)}: isolated page has refcount ${p.refcount[pfn]} (driver + VM need 2)`,
        );
      if (!marked(pfn)) out.push(`pfn ${hexPfn(pfn)}: isolated page is not published as movable`);
    }
    return out;
  }
}

/** The `Memory.ext` key of the machine's filler driver. */
const FILLER = {};

/**
 * The filler driver of `machine`, created on first use (one per machine: later calls return
 * the same driver). It defines its movable_operations, and in v6.17 registers them for page
 * type Offline with `set_movable_ops`; that conflicts with any other Offline driver (the
 * balloon plugin), and creating the filler then throws MopsError('E_STATE'). It registers
 * the invariant checker `'filler'`: owned pages live, published, not isolated, contents
 * intact; isolated pages flagged and holding both references.
 * @param machine the machine
 * @returns the machine's filler driver
 * @throws {@link MopsError} `E_HALTED` on a halted machine; `E_STATE` in v6.17 when another
 *   driver holds page type Offline
 */
export function createMovableFiller(machine: Machine): MovableFiller {
  machine.mem.assertRunning();
  return memoryExt(machine.mem, FILLER, () => new Filler(machine));
}

/**
 * Allocates every free page of the machine as an order-0 page owned by `owner`
 * (GFP_HIGHUSER_MOVABLE with ALLOC_NO_WATERMARKS, so the reserves below the watermarks go
 * too) and returns the pfns in allocation order. Afterwards no zone has a free page. The
 * workloads start here so they decide where every page ends up.
 * @param machine the machine
 * @param owner the owner name recorded in the pages
 * @returns the pfns taken, each with refcount 1
 * @throws {@link MopsError} `E_HALTED` on a halted machine
 */
export function allocAllFree(machine: Machine, owner = 'workload'): number[] {
  const mem = machine.mem;
  mem.assertRunning();
  const id = mem.owners.register(owner);
  let left = mem.nrFreePages();
  const out: number[] = [];
  const gfp = GFP.HIGHUSER_MOVABLE | __GFP.NOWARN;
  for (; left > 0; left--) {
    const pfn = allocPages(mem, gfp, 0, { owner: id, allocFlags: ALLOC.NO_WATERMARKS });
    if (pfn < 0) break;
    out.push(pfn);
  }
  return out;
}

/** Options of {@link fragmentWithFiller}. */
export interface FragmentWithFillerOptions {
  /** Share of the free pages that become filler pages (0..1, default 0.8); the rest stay free. */
  fill?: number;
  /** Share of the filler pages freed again afterwards, chosen at random (0..1, default 0.5). */
  free?: number;
  /**
   * One pageblock in this many gets an unmovable page at its first pfn, so it can never
   * become a free pageblock (default 16; 0 for none).
   */
  unmovableEvery?: number;
  /** Owner name of the unmovable pages (default `'unmovable'`). */
  unmovableOwner?: string;
}

/** What {@link fragmentWithFiller} left behind. */
export interface FragmentWithFillerResult {
  /** The machine's filler driver, owning the filler pages still allocated. */
  readonly filler: MovableFiller;
  /** The unmovable pages, ascending. */
  readonly unmovable: number[];
  /** Filler pages allocated. */
  readonly filled: number;
  /** Filler pages freed again. */
  readonly freed: number;
}

/**
 * A machine compaction can improve: every free page is taken, one pageblock in
 * `unmovableEvery` keeps an unmovable page at its start, a random `fill` share of the other
 * pages becomes filler (movable_ops) pages and the rest is freed, then a random `free`
 * share of the filler pages is freed. Free memory ends up scattered in small blocks between
 * movable pages, so compaction can build high-order blocks everywhere but in the pinned
 * pageblocks. Random choices come from the machine's PRNG: the same seed gives the same
 * layout.
 * @param machine the machine, best fresh from createMachine
 * @param opts the fill and free shares (0..1) and the unmovable pageblock spacing
 * @returns the filler driver and what it did: unmovable pages, filler pages allocated and
 *   freed
 * @throws {@link MopsError} `E_USAGE` when `machine` is not a machine or `opts` not an
 *   object; `E_RANGE` naming an option out of range
 */
export function fragmentWithFiller(
  machine: Machine,
  opts: FragmentWithFillerOptions = {},
): FragmentWithFillerResult {
  checkMachine(machine, 'fragmentWithFiller');
  checkOptionsObject(opts, 'fragmentWithFiller', [
    'fill',
    'free',
    'unmovableEvery',
    'unmovableOwner',
  ]);
  const fill = fraction(opts.fill, 0.8, 'fill');
  const free = fraction(opts.free, 0.5, 'free');
  const every = opts.unmovableEvery ?? 16;
  if (!Number.isInteger(every) || every < 0)
    throw new MopsError(
      'E_RANGE',
      `unmovableEvery must be an integer ≥ 0 (0 for no unmovable pages), got ${valueKind(every)}`,
      'unmovableEvery',
    );
  const filler = createMovableFiller(machine);
  const mem = machine.mem;
  const rnd = machine.prng;
  const unmovableOwner = mem.owners.register(opts.unmovableOwner ?? 'unmovable');
  const grabbed = Float64Array.from(allocAllFree(machine, 'workload')).sort();
  const unmovable: number[] = [];
  const mine: number[] = [];
  for (const pfn of grabbed) {
    if (
      every > 0 &&
      (pfn & (pageblock_nr_pages - 1)) === 0 &&
      (pfn / pageblock_nr_pages) % every === 0
    ) {
      mem.pages.setOwner(pfn, unmovableOwner);
      unmovable.push(pfn);
    } else if (rnd.float() < fill) {
      filler.adopt(pfn);
      mine.push(pfn);
    } else putPage(mem, pfn);
  }
  let freed = 0;
  for (const pfn of mine) {
    if (rnd.float() < free) {
      filler.free(pfn);
      freed++;
    }
  }
  return { filler, unmovable, filled: mine.length, freed };
}
