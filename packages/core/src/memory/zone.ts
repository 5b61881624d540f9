/**
 * Nodes and zones (include/linux/mmzone.h): spans, free areas, watermarks, pageblock bits.
 * @module
 */

import type { HighatomicProfile } from '../buddy/profile.js';
import type { ZoneCompactState } from '../compaction/state.js';
import { ZONE_STAT_ITEMS } from '../vmstat/items.js';
import {
  MAX_NR_ZONES,
  MIGRATE_TYPES,
  NR_PAGE_ORDERS,
  pageblock_order,
  ZONE_NAMES,
} from './constants.js';
import type { ListId, LruLists } from './list.js';

/** Watermark indices (`enum zone_watermarks`). */
export const WMARK = { MIN: 0, LOW: 1, HIGH: 2, PROMO: 3 } as const;

/**
 * One zone of a node. Free pages sit on `free_area[order].free_list[migratetype]`, here
 * `freeList[order * MIGRATE_TYPES + mt]`, with per-list counts in `nrFreeList` (the kernel
 * keeps only the per-order `nr_free`; /proc/pagetypeinfo walks the lists).
 */
export class Zone {
  /** Zone name as /proc prints it (`DMA`, `DMA32`, `Normal`, …). */
  readonly name: string;
  /** First pfn of the zone span (`zone_start_pfn`). */
  zoneStartPfn = 0;
  /** Pages spanned, holes included. */
  spannedPages = 0;
  /** Pages that exist (spanned minus holes). */
  presentPages = 0;
  /** Pages handed to the buddy allocator (present minus reserved). */
  managedPages = 0;
  /**
   * Pages by which a known kernel accounting error leaves `managedPages` below the pages the
   * zone really hands to the buddy allocator (negative: above). The driver that makes the
   * error keeps it: v4.8's balloon, whose migratepage leaves a page's managed-page debit in
   * the old zone when the page moves to another (fixed in 5.5). The invariant checker allows
   * that many free pages above `managedPages`. 0 in a kernel without such an error.
   */
  managedMiscount = 0;
  /** List ids of the free lists, by `order * MIGRATE_TYPES + migratetype`. */
  readonly freeList: Int32Array;
  /** Number of free blocks on each free list. */
  readonly nrFreeList: Int32Array;
  /** `free_area[order].nr_free`: free blocks of each order, all migrate types. */
  readonly nrFree: Int32Array;
  /**
   * NR_FREE_PAGES: free base pages in the zone, those on MIGRATE_ISOLATE free lists excepted
   * (account_freepages()).
   */
  nrFreePages = 0;
  /** `_watermark[]`: min, low, high, promo (pages). */
  readonly watermark = [0, 0, 0, 0];
  /**
   * `nr_reserved_highatomic`: pages in the pageblocks reserve_highatomic_pageblock() made
   * MIGRATE_HIGHATOMIC (buddy/highatomic.ts).
   */
  nrReservedHighatomic = 0;
  /** The release's high-atomic rules (the profile's `highatomic`), set by initZones(). */
  highatomic: HighatomicProfile | undefined = undefined;
  /** `watermark_boost` (pages). */
  watermarkBoost = 0;
  /** ZONE_BOOSTED_WATERMARK: the boost grew; the next rmqueue() wakes kswapd. */
  boosted = false;
  /**
   * The compaction fields of `struct zone` (cached scanner positions, deferral), made on
   * first use by `zoneCompactState`.
   */
  compact: ZoneCompactState | undefined = undefined;
  /** `lowmem_reserve[]` against allocations whose highest zone is each zone index. */
  readonly lowmemReserve: number[] = new Array(MAX_NR_ZONES).fill(0);
  /** Per-zone vmstat items (`ZONE_STAT_ITEMS` order); NR_FREE_PAGES lives in `nrFreePages`. */
  readonly stat: Float64Array;

  constructor(
    /** `zone_idx()`: index within the node. */
    readonly idx: number,
    /** The node id. */
    readonly nid: number,
  ) {
    this.name = ZONE_NAMES[idx];
    // One buffer for the zone's counters and list ids, so that a snapshot of it is one copy.
    const nLists = NR_PAGE_ORDERS * MIGRATE_TYPES;
    const statBytes = ZONE_STAT_ITEMS.length * 8;
    const buf = new ArrayBuffer(statBytes + (2 * nLists + NR_PAGE_ORDERS) * 4);
    this.stat = new Float64Array(buf, 0, ZONE_STAT_ITEMS.length);
    this.freeList = new Int32Array(buf, statBytes, nLists);
    this.nrFreeList = new Int32Array(buf, statBytes + nLists * 4, nLists);
    this.nrFree = new Int32Array(buf, statBytes + nLists * 8, NR_PAGE_ORDERS);
  }

  /**
   * Creates the free lists once the zone is laid out. A zone without present pages never
   * holds a free page: its lists are all `empty`, one list every such zone shares.
   */
  initFreeLists(lists: LruLists, empty: ListId): void {
    for (let i = 0; i < this.freeList.length; i++)
      this.freeList[i] = this.populated ? lists.newList() : empty;
  }

  /** One past the last pfn of the span (`zone_end_pfn`). */
  get zoneEndPfn(): number {
    return this.zoneStartPfn + this.spannedPages;
  }

  /** populated_zone(): the zone has present pages. */
  get populated(): boolean {
    return this.presentPages > 0;
  }

  /** zone_spans_pfn(). */
  spans(pfn: number): boolean {
    return pfn >= this.zoneStartPfn && pfn < this.zoneStartPfn + this.spannedPages;
  }

  /** min_wmark_pages(), low_wmark_pages(), high_wmark_pages() (boost included). */
  wmarkPages(which: number): number {
    return this.watermark[which] + this.watermarkBoost;
  }

  /** Free blocks of `order` on the `mt` free list. */
  freeCount(order: number, mt: number): number {
    return this.nrFreeList[order * MIGRATE_TYPES + mt];
  }

  /** Pageblocks spanned by the zone (partial blocks at the edges included). */
  get nrPageblocks(): number {
    if (this.spannedPages === 0) return 0;
    const first = this.zoneStartPfn >> pageblock_order;
    const last = (this.zoneEndPfn - 1) >> pageblock_order;
    return last - first + 1;
  }
}

/** One NUMA node (`pg_data_t`); mops builds one node with five zone slots. */
export class Node {
  /** Zones by index; unpopulated zones have zero pages. */
  readonly zones: Zone[];
  constructor(
    /** Node id. */
    readonly nid: number,
  ) {
    this.zones = [];
    for (let i = 0; i < MAX_NR_ZONES; i++) this.zones.push(new Zone(i, nid));
  }

  /** node_start_pfn. */
  get startPfn(): number {
    const z = this.zones.find((x) => x.spannedPages > 0);
    return z ? z.zoneStartPfn : 0;
  }
}

/** Pageblock bits: bits 0-2 migratetype, bit 3 the compaction skip hint. */
export const PB_MIGRATETYPE_MASK = 0x7;
/** `PB_migrate_skip` / `PB_compact_skip`. */
export const PB_SKIP = 0x8;

/** The names used by /proc for the migrate types a machine shows (CMA only when configured). */
export function shownMigratetypes(withCma: boolean): number[] {
  const out: number[] = [];
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) if (mt !== 4 || withCma) out.push(mt);
  return out;
}
