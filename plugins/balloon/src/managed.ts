/**
 * The balloon's managed-page accounting (adjust_managed_page_count; spec §0.2 "Balloon
 * migratepage order", §6.1-§6.3). Without VIRTIO_BALLOON_F_DEFLATE_ON_OOM an inflated page
 * leaves its zone's managed pages (and MemTotal, their sum) until it is deflated. Who adjusts
 * the count, per release:
 *
 * - v4.8: the virtio driver, in fill_balloon (-1) and release_pages_balloon (+1);
 *   virtballoon_migratepage leaves the count alone.
 * - v6.0, v6.3, v6.17: the same, and virtballoon_migratepage moves the debit to the new
 *   page's zone when the zones differ (5.5, "virtio-balloon: fix managed page counts when
 *   migrating pages between zones").
 * - The 2026 design: the balloon core, when `b_dev_info->adjust_managed_page_count` is set,
 *   in balloon_page_enqueue (-1), balloon_page_list_dequeue (+1) and balloon_page_migrate
 *   (the debit moved, or +1 on -ENOENT); the driver no longer does.
 *
 * balloon_page_enqueue and balloon_page_list_dequeue of v4.8-v6.17 never adjust it.
 * @module
 */

import { type Machine, type Memory, MopsError, valueKind } from '@mops/core';

/**
 * adjust_managed_page_count(page, delta): the zone of `pfn` gains or loses managed pages.
 * A pfn outside the machine, a delta that is not an integer, or one that would take the
 * zone's managed pages below 0 is a MopsError (E_RANGE) and changes nothing. Above the
 * zone's present pages is allowed, as in the kernel, which checks nothing: 4.8's balloon
 * gets there (see `managedPagesAdd`).
 * @see mm/page_alloc.c adjust_managed_page_count()
 */
export function adjustManagedPageCount(mem: Memory, pfn: number, delta: number): void {
  mem.checkPfn(pfn, 'adjust_managed_page_count');
  const zone = mem.zoneOf(pfn);
  const managed = zone.managedPages + delta;
  if (!Number.isInteger(delta) || managed < 0)
    throw new MopsError(
      'E_RANGE',
      `adjust_managed_page_count: delta ${valueKind(delta)} would leave zone ${zone.name} with ${managed} managed pages`,
      'delta',
    );
  mem.zoneOf(pfn).managedPages += delta;
}

/**
 * adjust_managed_page_count() as the balloon driver calls it, on a page it holds: no check,
 * as in the kernel. In 4.8, whose virtballoon_migratepage does not move the debit, a page
 * inflated in one zone and migrated to another is credited to the second when it is
 * deflated: the first stays a page short and the second gets one more than it has (fixed
 * in 5.5 by "virtio-balloon: fix managed page counts when migrating pages between zones").
 * A fill or leak must not stop halfway, with its lock held, over that count. `taken` (the
 * device's {@link BalloonDevice.managedTaken}) keeps the balloon's own share of the
 * adjustments, per zone, apart from other callers'.
 */
export function managedPagesAdd(mem: Memory, pfn: number, delta: number, taken: number[]): void {
  const zone = mem.zoneOf(pfn);
  zone.managedPages += delta;
  taken[zone.idx] -= delta;
}

/**
 * The managed-page debit of a balloon page follows it to `newpage` when the two pages lie
 * in different zones (a migration of a page the balloon keeps out of the managed count).
 */
export function moveManagedDebit(
  mem: Memory,
  page: number,
  newpage: number,
  taken: number[],
): void {
  const from = mem.zoneOf(page);
  const to = mem.zoneOf(newpage);
  if (from === to) return;
  from.managedPages++;
  to.managedPages--;
  taken[from.idx]--;
  taken[to.idx]++;
}

/** Managed pages of all populated zones (`totalram_pages`, MemTotal). */
export function managedPages(machine: Machine): number {
  let n = 0;
  for (const z of machine.mem.populatedZones) n += z.managedPages;
  return n;
}

/** Managed pages of each zone of `machine`'s node, by zone index. */
export function managedByZone(machine: Machine): number[] {
  return machine.mem.node.zones.map((z) => z.managedPages);
}

/**
 * v4.8's virtballoon_migratepage, which leaves the managed-page debit of `page` in its zone
 * when `newpage` lies in another: records in `miscount` (by zone index) that the old zone's
 * count is now a page short of what its pages give it and the new zone's a page over.
 * Deflating the page later credits the new zone, so the miscount outlives the balloon page
 * (fixed in 5.5).
 */
export function leaveManagedDebit(
  mem: Memory,
  miscount: number[],
  page: number,
  newpage: number,
): void {
  const from = mem.zoneOf(page);
  const to = mem.zoneOf(newpage);
  if (from === to) return;
  miscount[from.idx]++;
  miscount[to.idx]--;
  // For the core checker, which allows the old zone that many free pages above its count.
  from.managedMiscount++;
  to.managedMiscount--;
}
