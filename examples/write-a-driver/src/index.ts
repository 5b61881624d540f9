/**
 * A small movable_ops driver: a ring buffer whose slots are pages the VM may migrate.
 *
 * This is the model for writing your own driver plugin. The driver owns pages and keeps
 * them in its own structure (here an array of slots); the VM may at any time
 * - isolate one (`isolatePage`: called with the page locked; take it out of your structure),
 * - migrate it (`migratePage`: copy, make `dst` yours with your own reference, let go of
 *   `src`), or
 * - give it back (`putbackPage`: put it back into your structure).
 * How a page is published as movable depends on the kernel release (the machine's profile):
 * v4.8 through an address_space, v6.0/v6.3 through the ops, v6.17 through a page type and
 * the `set_movable_ops` registry. See spec §2 and the `@mops/core` docs of each function.
 *
 * The driver may also give a page up for good while the VM holds it isolated
 * ({@link MovableRing.release}): the owner-release rule of spec §4, which differs between
 * releases too.
 * @module
 */

import {
  __ClearPageMovable,
  __SetPageMovable,
  defineMovableOps,
  GFP,
  getPage,
  type Machine,
  MopsError,
  type MopsPlugin,
  type MovableOperations,
  makeAddressSpace,
  PAGE_SIZE,
  PGTY,
  putPage,
  SetPageMovableOps,
  setMovableOps,
  setPageType,
  trylockPage,
  unlockPage,
} from '@mops/core';

/** A ring of `capacity` page-sized slots, each a movable page. */
export class MovableRing {
  /** pfn of each slot (-1 while the VM has the page isolated). */
  readonly slots: number[] = [];
  /** Slot index by pfn, for the pages the VM isolated. */
  private readonly isolatedSlot = new Map<number, number>();
  /**
   * v6.17: pages given up while the VM held them isolated. They keep their movable_ops
   * until freed, so the VM may still call back for them: migrate fakes success, putback
   * does nothing, and the VM's references free them. The VM may also free one without a
   * callback (only its reference was left), so a pfn that comes back to us later, as a
   * migration target or a new slot, leaves this set.
   */
  private readonly released = new Set<number>();
  private head = 0;
  readonly ops: MovableOperations;
  private readonly target;

  constructor(readonly m: Machine) {
    this.ops = defineMovableOps('movable-ring', {
      isolatePage: (page: number) => {
        if (this.released.has(page)) return false;
        const slot = this.slots.indexOf(page);
        if (slot < 0) return false; // not ours (any more)
        this.slots[slot] = -1; // the VM owns page->lru now; we remember the slot elsewhere
        this.isolatedSlot.set(page, slot);
        return true;
      },
      migratePage: (dst: number, src: number) => {
        this.released.delete(dst); // a fresh page, whatever its pfn was before
        if (this.released.delete(src)) return 0; // given up: "migrated", and freed by the VM
        const slot = this.isolatedSlot.get(src);
        if (slot === undefined) return -22; // -EINVAL: not a page we gave up
        const data = this.m.mem.pages.contents;
        if (data) data.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
        this.publish(dst); // dst is locked by the VM
        getPage(this.m.mem, dst); // our own reference on dst
        this.slots[slot] = dst;
        this.isolatedSlot.delete(src);
        if (this.m.profile.driverClearsSrc) __ClearPageMovable(this.m.mem, src);
        putPage(this.m.mem, src); // our reference on src; the VM frees it after
        return 0;
      },
      putbackPage: (page: number) => {
        if (this.released.delete(page)) return; // given up: the VM's put frees it
        const slot = this.isolatedSlot.get(page);
        if (slot === undefined) return;
        this.slots[slot] = page;
        this.isolatedSlot.delete(page);
      },
    });
    const marker = m.profile.movableMarker;
    this.target =
      marker === 'address_space' ? makeAddressSpace('movable-ring', this.ops) : this.ops;
    if (marker === 'page_type') {
      // One movable_ops per page type: another Offline driver (the balloon) may have it.
      const rc = setMovableOps(m.mem, this.ops, PGTY.offline);
      if (rc !== 0)
        throw new MopsError(
          'E_PLUGIN',
          `movable-ring: page type Offline already has movable_ops (set_movable_ops returned ${rc})`,
          'setMovableOps',
        );
    }
  }

  /** Adds `n` slots: allocates pages and publishes them as movable. Returns their pfns. */
  grow(n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const pfn = this.m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'movable-ring');
      if (pfn < 0) throw new Error('movable-ring: out of memory');
      trylockPage(this.m.mem, pfn); // publishing happens under the page lock
      this.publish(pfn);
      unlockPage(this.m, pfn);
      this.slots.push(pfn);
      out.push(pfn);
    }
    return out;
  }

  private publish(pfn: number): void {
    this.released.delete(pfn);
    const mem = this.m.mem;
    if (this.m.profile.movableMarker === 'page_type') {
      // A page type first (__SetPageOffline, as the balloon does), then the movable_ops.
      setPageType(mem, pfn, PGTY.offline);
      SetPageMovableOps(mem, pfn);
    } else __SetPageMovable(mem, pfn, this.target);
  }

  /**
   * Gives up the slot holding page `pfn` for good: the ring shrinks by one slot and the page
   * goes back to the system, even while the VM holds it isolated (spec §4). Call it outside
   * tasks. What the driver may do depends on the release:
   * - v4.8–v6.3: under the page lock, `__ClearPageMovable` (the VM then sees the page is no
   *   longer movable: its migration "succeeds" without calling us and its putback frees
   *   the page), then drop our reference. Never touch the isolated flag or `lru`.
   * - v6.17: movability is sticky until the page is freed. Drop our reference and remember
   *   the page, so our callbacks behave as if done with it (migrate returns 0, putback
   *   does nothing); the VM's own references free it.
   */
  release(pfn: number): void {
    const isolated = this.isolatedSlot.get(pfn);
    const slot = isolated ?? this.slots.indexOf(pfn);
    if (slot < 0) throw new MopsError('E_USAGE', `movable-ring: pfn ${pfn} is not ours`, 'pfn');
    const mem = this.m.mem;
    if (this.m.profile.movableMarker === 'page_type') {
      if (isolated !== undefined) this.released.add(pfn);
    } else {
      if (!trylockPage(mem, pfn))
        throw new MopsError('E_STATE', `movable-ring: pfn ${pfn} is locked`, 'pfn');
      __ClearPageMovable(mem, pfn);
      unlockPage(this.m, pfn);
    }
    this.isolatedSlot.delete(pfn);
    this.slots.splice(slot, 1);
    for (const [p, i] of this.isolatedSlot) if (i > slot) this.isolatedSlot.set(p, i - 1);
    if (this.head > slot) this.head--;
    if (this.head >= this.slots.length) this.head = 0;
    putPage(mem, pfn); // our reference
  }

  /** Writes a record into the next slot (wrapping). Returns the slot index. */
  push(record: Uint8Array): number {
    const slot = this.head;
    this.head = (this.head + 1) % this.slots.length;
    const pfn = this.slots[slot];
    const page = this.m.mem.pages.pageData(pfn);
    page.fill(0);
    page.set(record.subarray(0, PAGE_SIZE));
    return slot;
  }

  /** Reads a slot back (the first `len` bytes). */
  read(slot: number, len: number): Uint8Array {
    return this.m.mem.pages.pageData(this.slots[slot]).slice(0, len);
  }

  /** The driver's invariant checker: every slot is a live page of ours. */
  check(): string[] {
    return this.slots.flatMap((pfn, i) =>
      pfn >= 0 && this.m.mem.pages.refcount[pfn] < 1
        ? [`slot ${i}: pfn ${pfn} is not a live page`]
        : [],
    );
  }
}

/** Rings created per machine, so tests and the conformance suite can find them. */
export const rings = new WeakMap<Machine, MovableRing>();

/** The plugin: a manifest and `register`, which sets the ring up in a machine. */
export const plugin: MopsPlugin = {
  manifest: {
    name: 'movable-ring',
    version: '0.1.0',
    profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'],
    // The ring keeps its records in its pages: a machine without page contents has no room.
    needsContents: true,
  },
  register(_container, machine) {
    const ring = new MovableRing(machine);
    rings.set(machine, ring);
    machine.registerInvariantChecker('movable-ring', () => ring.check());
  },
};
export default plugin;

function ringOf(machine: Machine): MovableRing {
  const ring = rings.get(machine);
  if (!ring) throw new MopsError('E_STATE', 'movable-ring is not installed on this machine');
  return ring;
}

/**
 * How the conformance suite drives the driver: grow the ring by `n` slots, or give a slot's
 * page up (the owner-release rule).
 */
export const conformance = {
  /** Adds `n` slots to the ring of `machine`; returns their pfns. */
  populate(machine: Machine, n: number): number[] {
    return ringOf(machine).grow(n);
  },
  /** Gives up the slot holding `pfn` ({@link MovableRing.release}); returns `[pfn]`. */
  release(machine: Machine, pfn: number): number[] {
    ringOf(machine).release(pfn);
    return [pfn];
  },
};
