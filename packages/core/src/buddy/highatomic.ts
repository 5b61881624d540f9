/**
 * The high-atomic pageblock reserve (mm/page_alloc.c): a high-order atomic allocation that
 * succeeds turns its pageblock MIGRATE_HIGHATOMIC, so that later ones find a block of their
 * order; the watermark check hides those pages from requests that may not use the reserves.
 * The release differences are the profile's `highatomic` rows (buddy/profile.ts), which also
 * say why unreserve_highatomic_pageblock() is left out.
 * @module
 */

import {
  MIGRATE,
  MIGRATE_PCPTYPES,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { ALLOC, ALLOC_HARDER, ALLOC_RESERVES } from './gfp.js';
import type { HighatomicProfile } from './profile.js';
import { changePageblockRange, moveFreepagesBlock } from './rmqueue.js';

/**
 * The request reserves a pageblock when it succeeds, and rmqueue_buddy() first looks on the
 * MIGRATE_HIGHATOMIC lists for it. Callers test `allocFlags & ALLOC_HARDER` first, so that
 * ordinary requests never get here.
 */
export function highatomicRequest(rules: HighatomicProfile, order: number, allocFlags: number) {
  if (rules.trigger === 'highatomic') return (allocFlags & ALLOC.HIGHATOMIC) !== 0;
  return order > 0 && (allocFlags & ALLOC_HARDER) !== 0;
}

/** rmqueue_buddy()'s last resort after __rmqueue() failed may take a reserved page. */
export function highatomicLastResort(rules: HighatomicProfile, allocFlags: number): boolean {
  if (rules.lastResort === 'none') return false;
  const mask = rules.lastResort === 'oom' ? ALLOC.OOM : ALLOC.OOM | ALLOC.NON_BLOCK;
  return (allocFlags & mask) !== 0;
}

/** The cap on nr_reserved_highatomic; 0 when the zone may reserve nothing. */
export function highatomicLimit(rules: HighatomicProfile, managed: number): number {
  const onePercent = Math.floor(managed / 100);
  if (rules.limit === 'plus_block') return onePercent + pageblock_nr_pages;
  if (onePercent < pageblock_nr_pages) return 0;
  return Math.ceil(onePercent / pageblock_nr_pages) * pageblock_nr_pages;
}

/**
 * reserve_highatomic_pageblock(): after a successful high-order atomic allocation of the
 * block at `pfn`, make its pageblock MIGRATE_HIGHATOMIC (moving its free pages) unless the
 * zone is at its cap or the block is not of a mergeable type (HighAtomic already, Isolate,
 * CMA). A pageblock reaching past the zone's end is still counted and retyped up to 6.9
 * (move_freepages_block() moves none of its pages, and its result is not looked at); from
 * 6.10 (v6.17) a block move_freepages_block() refuses, any not wholly inside the zone, is
 * left alone (the profile's `highatomic.reserveNeedsMove`).
 */
export function reserveHighatomicPageblock(
  mem: Memory,
  zone: Zone,
  pfn: number,
  order: number,
): void {
  const rules = mem.profile.highatomic;
  const max = highatomicLimit(rules, zone.managedPages);
  if (zone.nrReservedHighatomic >= max) return;
  const mt = mem.pageblockMigratetype(pfn);
  if (mt >= MIGRATE_PCPTYPES) return;
  if (order >= pageblock_order && rules.multiBlock) {
    changePageblockRange(mem, pfn, order, MIGRATE.HIGHATOMIC);
    zone.nrReservedHighatomic += 1 << order;
    return;
  }
  if (!moveFreepagesBlock(mem, zone, pfn, MIGRATE.HIGHATOMIC) && rules.reserveNeedsMove) return;
  mem.setPageblockMigratetype(pfn, MIGRATE.HIGHATOMIC);
  zone.nrReservedHighatomic += pageblock_nr_pages;
}

/**
 * __zone_watermark_unusable_free()'s high-atomic part: the reserved pages a request that may
 * not use the reserves must not count as free (nr_reserved_highatomic, or from 6.13
 * nr_free_highatomic). Called only when the zone has reserved blocks.
 */
export function highatomicUnusable(zone: Zone, allocFlags: number): number {
  const rules = zone.highatomic;
  if (!rules) return 0;
  const exempt = rules.wmarkExempt === 'harder' ? ALLOC_HARDER | ALLOC.OOM : ALLOC_RESERVES;
  if (allocFlags & exempt) return 0;
  if (rules.wmarkSubtracts === 'reserved') return zone.nrReservedHighatomic;
  let free = 0;
  for (let o = 0; o < NR_PAGE_ORDERS; o++) free += zone.freeCount(o, MIGRATE.HIGHATOMIC) << o;
  return free;
}
