/**
 * A minimal movable-page owner for race scenarios: it publishes order-0 pages the way the
 * machine's profile requires, answers the VM's callbacks with plain (atomic) functions, and
 * releases pages as a task so the release can interleave with isolation.
 * @module
 */

import {
  __ClearPageMovable,
  __GFP,
  __SetPageMovable,
  type AddressSpace,
  defineMovableOps,
  GFP,
  getPage,
  hexPfn,
  ISOLATED,
  type Kctx,
  type KernelGen,
  lockPage,
  type Machine,
  type MovableOperations,
  makeAddressSpace,
  PAGE_MAPPING_FLAGS,
  PAGE_MAPPING_MOVABLE,
  PfnSet,
  PG,
  PGTY,
  putPage,
  SetPageMovableOps,
  setMovableOps,
  trylockPage,
  unlockPage,
} from '@mops/core';

/**
 * The scenario driver of one machine. `owned` holds the pages it owns that the VM has not
 * isolated, `isolated` those the VM has isolated.
 */
export class RaceDriver {
  /** Pages owned and not isolated. */
  readonly owned: PfnSet;
  /** Pages the VM isolated through this driver's `isolate_page`. */
  readonly isolated: PfnSet;
  /** The driver's movable_operations. */
  readonly ops: MovableOperations;
  private readonly k: Kctx;
  private readonly target: AddressSpace | MovableOperations;
  private readonly handle: number;
  private readonly owner: number;

  /**
   * @param machine the machine (its checker is registered as `name`)
   * @param name driver name, used for the owner tag and in reports
   */
  constructor(
    readonly machine: Machine,
    readonly name = 'racedrv',
  ) {
    const mem = machine.mem;
    // Sets of pfns in bytes: an explorer run restores the few bytes a run changed.
    this.owned = new PfnSet(mem.nrPages);
    this.isolated = new PfnSet(mem.nrPages);
    this.k = { mem, sched: machine.sched };
    this.owner = mem.owners.register(name);
    this.ops = defineMovableOps(name, {
      isolatePage: (page: number): boolean => this.isolatePage(page),
      migratePage: (dst: number, src: number): number => this.migratePage(dst, src),
      putbackPage: (page: number): void => this.putbackPage(page),
    });
    const marker = machine.profile.movableMarker;
    this.target = marker === 'address_space' ? makeAddressSpace(name, this.ops) : this.ops;
    this.handle = mem.mappings.handleOf(this.target);
    if (marker === 'page_type') setMovableOps(mem, this.ops, PGTY.offline);
    machine.registerInvariantChecker(name, () => this.check());
  }

  /** Publishes `pfn` (locked by the caller) as this driver's movable page. */
  publish(pfn: number): void {
    const mem = this.machine.mem;
    if (mem.profile.movableMarker === 'page_type') {
      mem.pages.type[pfn] = PGTY.offline << 24;
      SetPageMovableOps(mem, pfn);
    } else __SetPageMovable(mem, pfn, this.target);
  }

  /** Allocates and publishes one order-0 page; returns its pfn, or -1 when memory is out. */
  alloc(): number {
    const mem = this.machine.mem;
    const pfn = this.machine.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.NOWARN, 0, this.name);
    if (pfn < 0) return -1;
    trylockPage(mem, pfn);
    this.publish(pfn);
    unlockPage(this.k, pfn);
    this.owned.add(pfn);
    return pfn;
  }

  /**
   * The owner lets go of a page, isolated or not (v4.8–v6.3, spec §4.1): under the page
   * lock it clears the movable pointer and keeps the tag, then drops its reference. In
   * v6.17 it only drops the reference.
   */
  *release(pfn: number): KernelGen {
    const { mem, sched } = this.k;
    if (mem.profile.ownerMayRelease) {
      yield* lockPage(this.k, pfn);
      if (sched.preemptible) yield { op: '__ClearPageMovable', pfn };
      __ClearPageMovable(mem, pfn);
      this.forget(pfn);
      if (sched.preemptible) yield { op: 'unlock_page', pfn };
      unlockPage(this.k, pfn);
    } else this.forget(pfn);
    if (sched.preemptible) yield { op: 'put_page', pfn };
    putPage(mem, pfn);
  }

  /** The driver no longer counts `pfn` as its own (in the step that unpublishes it). */
  private forget(pfn: number): void {
    this.owned.delete(pfn);
    this.isolated.delete(pfn);
  }

  /**
   * The v3-draft release (spec §4.2): under the page lock the owner clears PG_isolated
   * itself and keeps the page movable, believing it owns the page again.
   */
  *draftReclaim(pfn: number): KernelGen {
    const { mem, sched } = this.k;
    yield* lockPage(this.k, pfn);
    if (sched.preemptible) yield { op: 'ClearPageIsolated', pfn, note: 'by the owner' };
    if (mem.pages.flags[pfn] & ISOLATED) {
      mem.pages.flags[pfn] &= ~ISOLATED;
      this.isolated.delete(pfn);
      this.owned.add(pfn);
    }
    if (sched.preemptible) yield { op: 'unlock_page', pfn };
    unlockPage(this.k, pfn);
  }

  private published(pfn: number): boolean {
    const p = this.machine.mem.pages;
    if (this.machine.profile.movableMarker === 'page_type')
      return p.type[pfn] >>> 24 === PGTY.offline && (p.flags[pfn] & (1 << PG.movable_ops)) !== 0;
    return (
      (p.mapping[pfn] & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_MOVABLE &&
      p.mapping[pfn] >>> 2 === this.handle
    );
  }

  private isolatePage(page: number): boolean {
    if (!this.owned.has(page)) return false;
    this.owned.delete(page);
    this.isolated.add(page);
    return true;
  }

  private migratePage(dst: number, src: number): number {
    const mem = this.machine.mem;
    mem.pages.setOwner(dst, this.owner);
    this.publish(dst);
    getPage(mem, dst);
    this.isolated.delete(src);
    this.owned.add(dst);
    if (mem.profile.driverClearsSrc) __ClearPageMovable(mem, src);
    putPage(mem, src);
    return 0;
  }

  private putbackPage(page: number): void {
    this.isolated.delete(page);
    this.owned.add(page);
  }

  /**
   * The driver's checker, valid at every scheduling point: owned pages are live and
   * published; isolated pages are published and hold both the owner's and the VM's
   * reference.
   */
  check(): string[] {
    const out: string[] = [];
    const p = this.machine.mem.pages;
    for (const pfn of this.owned) {
      if (p.refcount[pfn] < 1)
        out.push(`pfn ${hexPfn(pfn)}: owned page has refcount ${p.refcount[pfn]}`);
      else if (!this.published(pfn))
        out.push(`pfn ${hexPfn(pfn)}: owned page is not published as movable`);
    }
    for (const pfn of this.isolated) {
      if (this.owned.has(pfn)) out.push(`pfn ${hexPfn(pfn)}: both owned and isolated`);
      if (p.refcount[pfn] < 2)
        out.push(`pfn ${hexPfn(pfn)}: isolated page has refcount ${p.refcount[pfn]} (needs 2)`);
    }
    return out;
  }
}
