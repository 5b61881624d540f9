/**
 * Physical memory constants for x86-64 with 4 KiB pages (spec compaction-by-profile T1).
 * @module
 */

import { MopsError, valueKind } from '../errors.js';

/** log2 of the page size. */
export const PAGE_SHIFT = 12;
/** Bytes per page. */
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Highest buddy order (MAX_PAGE_ORDER, inclusive). */
export const MAX_PAGE_ORDER = 10;
/**
 * Throws E_RANGE unless `order` is an integer `min`..MAX_PAGE_ORDER; `what` starts the
 * message (`'compaction '`, `'fragmentation_index: '`, or nothing).
 */
export function checkOrder(order: unknown, what = '', min = 0): void {
  if (!Number.isInteger(order) || (order as number) < min || (order as number) > MAX_PAGE_ORDER)
    throw new MopsError(
      'E_RANGE',
      `${what}order must be an integer ${min}..${MAX_PAGE_ORDER}, got ${valueKind(order)}`,
      'order',
    );
}

/** Number of buddy orders, 0..MAX_PAGE_ORDER. */
export const NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
/** Order of a pageblock (HUGETLB_PAGE_ORDER on x86-64). */
export const pageblock_order = 9;
/** Pages per pageblock. */
export const pageblock_nr_pages = 1 << pageblock_order;
/** Orders above this are "costly". */
export const PAGE_ALLOC_COSTLY_ORDER = 3;
/** vm.watermark_boost_factor default (mm/page_alloc.c). */
export const DEFAULT_WATERMARK_BOOST_FACTOR = 15000;

/** Migrate types (`enum migratetype`). */
export const MIGRATE = {
  UNMOVABLE: 0,
  MOVABLE: 1,
  RECLAIMABLE: 2,
  HIGHATOMIC: 3,
  CMA: 4,
  ISOLATE: 5,
} as const;
/** Number of migrate types mops models (free lists per order per zone). */
export const MIGRATE_TYPES = 6;
/** The types with per-CPU lists in the kernel; the fallback table covers these. */
export const MIGRATE_PCPTYPES = 3;
/** `migratetype_names`, as /proc/pagetypeinfo prints them. */
export const MIGRATETYPE_NAMES: readonly string[] = [
  'Unmovable',
  'Movable',
  'Reclaimable',
  'HighAtomic',
  'CMA',
  'Isolate',
];

/** Zone indices (`enum zone_type`), x86-64 with ZONE_DEVICE. */
export const ZONE = { DMA: 0, DMA32: 1, NORMAL: 2, MOVABLE: 3, DEVICE: 4 } as const;
/** Number of zone slots in a node. */
export const MAX_NR_ZONES = 5;
/** Zone names, as /proc prints them. */
export const ZONE_NAMES: readonly string[] = ['DMA', 'DMA32', 'Normal', 'Movable', 'Device'];

/** Largest machine mops builds: 64 GiB. */
export const MAX_MACHINE_BYTES = 64 * 1024 ** 3;
/** Smallest machine: one pageblock (2 MiB). */
export const MIN_MACHINE_BYTES = pageblock_nr_pages * PAGE_SIZE;
