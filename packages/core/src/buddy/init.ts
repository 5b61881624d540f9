/**
 * Boot-time setup of a machine's memory: zone spans, memmap_init (every pageblock that
 * starts in a zone MOVABLE, reserved pages outside zones and in holes), handing present pages to the buddy
 * allocator, and the per-zone watermarks and lowmem reserves.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import {
  MAX_NR_ZONES,
  MAX_PAGE_ORDER,
  MIGRATE,
  PAGE_SHIFT,
  pageblock_nr_pages,
  ZONE,
} from '../memory/constants.js';
import type { ZoneSpan } from '../memory/layout.js';
import type { Memory } from '../memory/mem.js';
import { PG } from '../page/flags.js';
import { freeOneBlock } from './free_page.js';

/** sysctl_lowmem_reserve_ratio defaults, by zone index. */
export const LOWMEM_RESERVE_RATIO: readonly number[] = [256, 256, 32, 0, 0];
/** watermark_scale_factor default (in 1/10000 of managed pages). */
export const WATERMARK_SCALE_FACTOR = 10;

/**
 * Lays out the zones, marks every page outside a zone's present range reserved
 * (refcount 1, PG_reserved), and frees every present page to the buddy allocator in the
 * largest aligned blocks, in ascending pfn order, as memblock_free_all() does at boot.
 */
export function initZones(mem: Memory, spans: readonly ZoneSpan[]): void {
  const p = mem.pages;
  const reserved = 1 << PG.reserved;
  for (let pfn = 0; pfn < mem.nrPages; pfn++) {
    p.flags[pfn] = reserved | (1 << 24);
    p.refcount[pfn] = 1;
  }
  // memmap_init_range() marks a pageblock MOVABLE when it reaches the block's first pfn
  // inside a zone: a block a zone starts in the middle of (DMA at pfn 1) keeps its zeroed
  // bits, MIGRATE_UNMOVABLE.
  mem.pageblock.fill(MIGRATE.UNMOVABLE);
  for (const s of spans) {
    const z = mem.node.zones[s.idx];
    z.zoneStartPfn = s.startPfn;
    z.spannedPages = s.spanned;
    z.presentPages = s.present;
    z.managedPages = s.present;
    const end = s.startPfn + s.present;
    for (let pfn = s.startPfn; pfn < end; pfn++) {
      p.flags[pfn] = 0;
      p.refcount[pfn] = 0;
    }
    const first = Math.ceil(s.startPfn / pageblock_nr_pages) * pageblock_nr_pages;
    for (let pfn = first; pfn < end; pfn += pageblock_nr_pages)
      mem.setPageblockMigratetype(pfn, MIGRATE.MOVABLE);
  }
  const empty = p.lists.newList();
  for (const z of mem.node.zones) {
    z.initFreeLists(p.lists, empty);
    z.highatomic = mem.profile.highatomic;
  }
  mem.setPopulatedZones(mem.node.zones.filter((z) => z.presentPages > 0));
  for (const s of spans) freeRange(mem, s.startPfn, s.startPfn + s.present);
}

/**
 * Frees [start, end) to the buddy allocator in the largest naturally aligned blocks (at most
 * MAX_PAGE_ORDER), in ascending pfn order, as __free_pages_memory() does. Where each block
 * lands is the profile's `bootFreeToTail`: from 5.10 on ("mm/page_alloc: place pages to tail
 * in __free_pages_core()") __free_pages_core() passes FPI_TO_TAIL, so the blocks queue up in
 * pfn order and allocations start low. In v4.8 __free_pages_boot_core() calls __free_pages(),
 * and __free_one_page() adds at the head (list_add) unless a merge with the next-order buddy
 * looks likely (then at the tail): the blocks freed last, the highest, are handed out first.
 */
export function freeRange(mem: Memory, start: number, end: number): void {
  const zone = mem.zoneOf(start);
  const toTail = mem.profile.bootFreeToTail;
  let pfn = start;
  while (pfn < end) {
    let order = MAX_PAGE_ORDER;
    while (order > 0 && (pfn & ((1 << order) - 1) || pfn + (1 << order) > end)) order--;
    freeOneBlock(mem, zone, pfn, order, mem.pageblockMigratetype(pfn), toTail);
    pfn += 1 << order;
  }
}

/** int_sqrt(). */
function intSqrt(x: number): number {
  return Math.floor(Math.sqrt(x));
}

/**
 * calculate_min_free_kbytes(): √(16 · lowmem kB), clamped to [128, 65536] (v4.8) or
 * [128, 262144] (6.x).
 */
export function defaultMinFreeKbytes(mem: Memory): number {
  let lowmemPages = 0;
  for (const z of mem.node.zones) if (z.idx <= ZONE.NORMAL) lowmemPages += z.managedPages;
  const kb = lowmemPages * (1 << (PAGE_SHIFT - 10));
  const max = mem.profile.minFreeKbytesMax;
  return Math.min(max, Math.max(128, intSqrt(kb * 16)));
}

/**
 * setup_per_zone_wmarks() and setup_per_zone_lowmem_reserve() for `minFreeKbytes`.
 */
export function setupWatermarks(mem: Memory, minFreeKbytes: number): void {
  // The sysctl is an int with a lower bound of 0 (proc_dointvec_minmax).
  if (!Number.isInteger(minFreeKbytes) || minFreeKbytes < 0 || minFreeKbytes > 0x7fffffff)
    throw new MopsError(
      'E_RANGE',
      `minFreeKbytes must be an integer 0..2147483647, got ${valueKind(minFreeKbytes)}`,
      'minFreeKbytes',
    );
  const zones = mem.node.zones;
  const pagesMin = minFreeKbytes >> (PAGE_SHIFT - 10);
  // The zones sharing min_free_kbytes: all of them (x86-64 has no highmem), but v6.17 leaves
  // ZONE_MOVABLE out, as it gives that zone the highmem rule below.
  const movableAside = mem.profile.movableZoneMinClamp;
  let lowmemPages = 0;
  for (const z of zones)
    if (!(movableAside && z.idx === ZONE.MOVABLE)) lowmemPages += z.managedPages;
  for (const z of zones) {
    const managed = z.managedPages;
    const tmp = lowmemPages ? Math.floor((pagesMin * managed) / lowmemPages) : 0;
    // v6.17 gives ZONE_MOVABLE the highmem rule: managed/1024 clamped to [32, 128].
    const min =
      z.idx === ZONE.MOVABLE && mem.profile.movableZoneMinClamp
        ? Math.min(128, Math.max(32, Math.floor(managed / 1024)))
        : tmp;
    const gap = Math.max(tmp >> 2, Math.floor((managed * WATERMARK_SCALE_FACTOR) / 10000));
    z.watermark[0] = min;
    z.watermark[1] = min + gap;
    z.watermark[2] = min + 2 * gap;
    z.watermark[3] = min + 3 * gap;
    z.watermarkBoost = 0;
  }
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = zones[i];
    const ratio = LOWMEM_RESERVE_RATIO[i];
    const clear = !ratio || !z.managedPages;
    let upper = 0;
    for (let j = 0; j < MAX_NR_ZONES; j++) {
      if (j <= i) {
        z.lowmemReserve[j] = 0;
        continue;
      }
      upper += zones[j].managedPages;
      z.lowmemReserve[j] = clear ? 0 : Math.floor(upper / ratio);
    }
  }
}
