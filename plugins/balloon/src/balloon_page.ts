/**
 * The balloon page helpers of include/linux/balloon_compaction.h (from 2026 mm/balloon.c;
 * spec §6.1): balloon_page_insert, balloon_page_delete and balloon_page_finalize, which make
 * a page a balloon page of a device and take it back, and the checks that
 * {@link BalloonDevice}'s public methods run before them.
 *
 * The helpers themselves check nothing, as in the kernel: the enqueue, dequeue and
 * migration paths call them with pages they hold.
 * @module
 */

import {
  __ClearPageMovable,
  __SetPageMovable,
  clearPageType,
  hasPageType,
  hexPfn,
  type Memory,
  MopsError,
  PG,
  PGTY,
  SetPageMovableOps,
  setPageType,
} from '@mops/core';
import type { BalloonDevice } from './device.js';

const ISOLATED = 1 << PG.isolated;

/**
 * balloon_page_insert(): make `pfn` a balloon page of `dev` (PageOffline, the movable
 * marker, `private`) and add it to the head of its list. List lock held; classic: page
 * locked.
 * @see include/linux/balloon_compaction.h balloon_page_insert()
 */
export function balloonPageInsert(dev: BalloonDevice, pfn: number): void {
  const mem = dev.k.mem;
  setPageType(mem, pfn, PGTY.offline);
  const target = dev.movableTarget;
  if (target === undefined) SetPageMovableOps(mem, pfn);
  else __SetPageMovable(mem, pfn, target);
  mem.pages.priv[pfn] = dev.id;
  mem.pages.setOwner(pfn, dev.owner);
  mem.pages.lists.addHead(dev.pages, pfn);
}

/**
 * balloon_page_delete() (v4.8-v6.3): clear PageOffline, `__ClearPageMovable`, clear
 * `private`, and unlink the page from the list unless the VM has isolated it (its lru is
 * the VM's then). Page locked.
 * @see include/linux/balloon_compaction.h balloon_page_delete()
 */
export function balloonPageDelete(mem: Memory, pfn: number): void {
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
export function balloonPageFinalize(mem: Memory, pfn: number): void {
  mem.pages.priv[pfn] = 0;
}

/**
 * A MopsError unless `pfn` is a page fresh from the allocator that nothing uses yet, as
 * balloon_page_alloc() returns it: E_RANGE for a pfn outside the machine, E_STATE for a
 * free, compound, reserved, typed, mapped, private or linked page. `what` names the call.
 */
export function checkNewPage(mem: Memory, pfn: number, what: string): void {
  mem.assertRunning();
  mem.checkPfn(pfn, what);
  const p = mem.pages;
  if (p.refcount[pfn] === 0 || p.compound[pfn] !== 0)
    throw new MopsError(
      'E_STATE',
      `${what}: pfn ${hexPfn(pfn)} is not an allocated order-0 page; allocate it with balloonPageAlloc()`,
      'pfn',
    );
  if (
    p.type[pfn] !== -1 ||
    p.priv[pfn] !== 0 ||
    p.mapping[pfn] !== 0 ||
    p.lists.isLinked(pfn) ||
    p.flags[pfn] & (1 << PG.reserved)
  )
    throw new MopsError(
      'E_STATE',
      `${what}: pfn ${hexPfn(pfn)} is in use (reserved, typed, mapped, private or linked); enqueue a fresh page`,
      'pfn',
    );
}

/**
 * A MopsError unless `pfn` is a balloon page of `dev` (PageOffline, `private` = the
 * device): E_RANGE for a pfn outside the machine, E_STATE otherwise. `what` names the call.
 */
export function checkDevicePage(dev: BalloonDevice, pfn: number, what: string): void {
  const mem = dev.k.mem;
  mem.assertRunning();
  mem.checkPfn(pfn, what);
  if (mem.pages.priv[pfn] !== dev.id || !hasPageType(mem, pfn, PGTY.offline))
    throw new MopsError(
      'E_STATE',
      `${what}: pfn ${hexPfn(pfn)} is not a page of balloon ${dev.name} (private ${mem.pages.priv[pfn]}, device ${dev.id}); give a page listPages() returns or one the device counts isolated`,
      'pfn',
    );
}
