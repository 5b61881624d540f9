import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  PAGE_SIZE,
  ZONE,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { WMARK, type Zone } from '../memory/zone.js';
import { OWNER_SHIFT, PG } from '../page/flags.js';
import type { Profile } from '../profile.js';
import { EV, ZS } from '../vmstat/vmstat.js';
import { runKswapd, wakeAllKswapds, wakeKswapdIfBoosted } from './boost.js';
import {
  __GFP,
  ALLOC,
  ALLOC_HARDER,
  ALLOC_RESERVES,
  checkGfp,
  gfpMigratetype,
  gfpZone,
} from './gfp.js';
import { highatomicRequest, highatomicUnusable, reserveHighatomicPageblock } from './highatomic.js';
import { rmqueue } from './rmqueue.js';

const EV_PGALLOC = [EV.pgalloc_dma, EV.pgalloc_dma32, EV.pgalloc_normal, EV.pgalloc_movable];
const ZS_NUMA_HIT = ZS.numa_hit;
const ZS_NUMA_LOCAL = ZS.numa_local;

/**
 * __zone_watermark_ok(): would `zone` stay above `mark` (plus the lowmem reserve against
 * `highestZoneidx`) after allocating a block of `order`, and does it have such a block?
 * Requests that may not use the reserves do not count the high-atomic reserve as free.
 */
export function zoneWatermarkOk(
  zone: Zone,
  order: number,
  mark: number,
  highestZoneidx: number,
  allocFlags: number,
  freePages: number = zone.nrFreePages,
): boolean {
  let min = mark;
  freePages -= (1 << order) - 1;
  if (zone.nrReservedHighatomic > 0) freePages -= highatomicUnusable(zone, allocFlags);
  if (allocFlags & ALLOC_RESERVES) {
    if (allocFlags & ALLOC.MIN_RESERVE) {
      min -= Math.floor(min / 2);
      if (allocFlags & ALLOC.NON_BLOCK) min -= Math.floor(min / 4);
    }
    if (allocFlags & ALLOC.OOM) min -= Math.floor(min / 2);
  }
  if (freePages <= min + zone.lowmemReserve[highestZoneidx]) return false;
  if (order === 0) return true;
  for (let o = order; o <= MAX_PAGE_ORDER; o++) {
    if (zone.nrFree[o] === 0) continue;
    for (let mt = 0; mt < MIGRATE_PCPTYPES; mt++)
      if (zone.nrFreeList[o * MIGRATE_TYPES + mt] > 0) return true;
    if (
      allocFlags & (ALLOC.HIGHATOMIC | ALLOC.OOM) &&
      zone.nrFreeList[o * MIGRATE_TYPES + MIGRATE.HIGHATOMIC] > 0
    )
      return true;
  }
  return false;
}

/**
 * zone_watermark_fast(): the check against the requested (boosted) watermark. An order-0
 * request that fails it may still pass: against the raw free count in v4.8 (the profile's
 * `watermarkFastOrder0`), and at WMARK_MIN in a boosted zone against the raw min watermark
 * (`z->_watermark[WMARK_MIN]`) for the requests `minWmarkIgnoresBoost` names. The kernel
 * tries the order-0 shortcut first; either order gives the same answer, and this one keeps
 * the extra work off the passing path.
 */
function zoneWatermarkFast(
  mem: Memory,
  zone: Zone,
  order: number,
  highest: number,
  allocFlags: number,
  gfp: number,
): boolean {
  const wmark = allocFlags & ALLOC.WMARK_MASK;
  const mark = zone.wmarkPages(wmark);
  if (zoneWatermarkOk(zone, order, mark, highest, allocFlags)) return true;
  if (order !== 0) return false;
  const prof = mem.profile;
  // v4.8: NR_FREE_PAGES against the mark, the high-atomic reserve counted as free.
  if (prof.watermarkFastOrder0 === 'free' && zone.nrFreePages > mark + zone.lowmemReserve[highest])
    return true;
  if (zone.watermarkBoost === 0 || wmark !== ALLOC.WMARK_MIN) return false;
  const rule = prof.minWmarkIgnoresBoost;
  const retry =
    rule === 'min_reserve'
      ? (allocFlags & ALLOC.MIN_RESERVE) !== 0
      : rule === 'gfp_atomic' && gfpAtomicStandIn(gfp);
  return retry && zoneWatermarkOk(zone, 0, zone.watermark[WMARK.MIN], highest, allocFlags);
}

/**
 * The stand-in for a __GFP_ATOMIC mask (4.4 to 6.2), a bit mops does not have: __GFP_HIGH
 * set and __GFP_DIRECT_RECLAIM clear, which GFP_ATOMIC is and GFP_NOWAIT is not.
 */
function gfpAtomicStandIn(gfp: number): boolean {
  return (gfp & (__GFP.HIGH | __GFP.DIRECT_RECLAIM)) === __GFP.HIGH;
}

/** prep_new_page(): make a just-removed free block an allocated page (or compound page). */
function prepNewPage(mem: Memory, pfn: number, order: number, gfp: number, owner: number): void {
  const p = mem.pages;
  p.refcount[pfn] = 1;
  p.flags[pfn] = owner << OWNER_SHIFT;
  if (order > 0 && gfp & __GFP.COMP) {
    p.flags[pfn] |= 1 << PG.head;
    p.compound[pfn] = order;
    const n = 1 << order;
    for (let i = 1; i < n; i++) {
      p.compound[pfn + i] = -i;
      p.flags[pfn + i] = owner << OWNER_SHIFT;
    }
  } else if (order > 0) {
    const n = 1 << order;
    for (let i = 1; i < n; i++) p.flags[pfn + i] = owner << OWNER_SHIFT;
  }
  if (gfp & __GFP.ZERO && p.contents)
    p.contents.fill(0, pfn * PAGE_SIZE, (pfn + (1 << order)) * PAGE_SIZE);
}

/** Options of {@link allocPages}. */
export interface AllocOptions {
  /** Owner id recorded in the pages (see `OwnerTable`); default the machine's 'kernel'. */
  owner?: number;
  /** Extra ALLOC_* flags for the first attempt (compaction's capture, tests). */
  allocFlags?: number;
}

/**
 * get_page_from_freelist(): walk the zonelist from the highest allowed zone down and take
 * a block from the first zone that passes its watermark check.
 */
export function getPageFromFreelist(
  mem: Memory,
  gfp: number,
  order: number,
  allocFlags: number,
  owner: number,
): number {
  const highest = gfpZone(gfp);
  const mt = gfpMigratetype(gfp);
  const zones = mem.node.zones;
  for (;;) {
    for (let zi = Math.min(highest, zones.length - 1); zi >= 0; zi--) {
      const zone = zones[zi];
      if (zone.managedPages === 0) continue;
      if (
        !(allocFlags & ALLOC.NO_WATERMARKS) &&
        !zoneWatermarkFast(mem, zone, order, highest, allocFlags, gfp)
      )
        continue;
      const pfn = rmqueue(mem, zone, order, mt, allocFlags);
      if (zone.boosted) wakeKswapdIfBoosted(mem, zone, allocFlags);
      if (pfn < 0) continue;
      prepNewPage(mem, pfn, order, gfp, owner);
      // A high-order atomic allocation: reserve its pageblock for the next ones.
      if (allocFlags & ALLOC_HARDER && highatomicRequest(mem.profile.highatomic, order, allocFlags))
        reserveHighatomicPageblock(mem, zone, pfn, order);
      mem.vmstat.events[EV_PGALLOC[Math.min(zi, 3)]] += 1 << order;
      // zone_statistics(): one node, so every allocation is a local hit.
      zone.stat[ZS_NUMA_HIT]++;
      zone.stat[ZS_NUMA_LOCAL]++;
      return pfn;
    }
    // defrag_mode: no fallback into other types' blocks until reclaim and compaction failed.
    if (!(allocFlags & ALLOC.NOFRAGMENT) || mem.defragMode) return -1;
    allocFlags &= ~ALLOC.NOFRAGMENT;
  }
}

/**
 * A block a direct compaction captured (6.x): __alloc_pages_direct_compact() only
 * prep_new_page()s it — it never went through rmqueue(), so neither pgalloc_* nor the NUMA
 * hit counters count it — and __alloc_pages() ({@link allocPages}) traces it as the
 * allocation's page.
 */
export function allocCapturedPage(
  mem: Memory,
  pfn: number,
  order: number,
  gfp: number,
  owner: number,
): void {
  prepNewPage(mem, pfn, order, gfp, owner);
}

/**
 * trace_mm_page_alloc() at the end of __alloc_pages(): once per allocation, after everything
 * its slow path did (a direct compaction's mm_compaction_defer_reset comes first), pfn -1
 * (a NULL page) when it failed. {@link allocPages} traces what the free lists gave it and
 * its failures; a slow-path step that allocates (allocPagesDirectCompact()) traces its own
 * page, last.
 * @param mem the machine's memory
 * @param pfn the page allocated, or -1
 * @param order the allocation's order
 * @param gfp the allocation's gfp mask
 */
export function traceAlloc(mem: Memory, pfn: number, order: number, gfp: number): void {
  if (mem.trace.enabled.mm_page_alloc) traceAllocEvent(mem, pfn, order, gfp);
}

function traceAllocEvent(mem: Memory, pfn: number, order: number, gfp: number): void {
  mem.trace.fire('mm_page_alloc', { pfn, order, gfp_flags: gfp, migratetype: gfpMigratetype(gfp) });
}

/**
 * alloc_flags_nofragment(): ALLOC_NOFRAGMENT when the preferred zone (the highest populated
 * zone the request may use) is Normal (6.x; v4.8 has no such flag), and always under
 * vm.defrag_mode; ALLOC_KSWAPD when the allocation may wake kswapd.
 */
function allocFlagsNofragment(mem: Memory, gfp: number): number {
  const flags = gfp & __GFP.KSWAPD_RECLAIM ? ALLOC.KSWAPD : 0;
  if (mem.defragMode) return flags | ALLOC.NOFRAGMENT;
  if (!mem.profile.allocNofragment) return flags;
  const zones = mem.node.zones;
  for (let zi = gfpZone(gfp); zi >= 0; zi--) {
    if (zones[zi].managedPages === 0) continue;
    return zi === ZONE.NORMAL ? flags | ALLOC.NOFRAGMENT : flags;
  }
  return flags;
}

/**
 * gfp_to_alloc_flags() for the slow path: the min watermark, ALLOC_KSWAPD, __GFP_HIGH's
 * ALLOC_MIN_RESERVE, and the non-blocking reserves by the profile's `allocHarder`. 6.3 on:
 * ALLOC_NON_BLOCK for a request that may not direct reclaim and is not __GFP_NOMEMALLOC, and
 * ALLOC_HIGHATOMIC with it above order 0. v4.8 and v6.0: ALLOC_HARDER (ALLOC_NON_BLOCK |
 * ALLOC_HIGHATOMIC in mops), at any order, for __GFP_ATOMIC without __GFP_NOMEMALLOC;
 * mops has no __GFP_ATOMIC bit, so it takes __GFP_HIGH without __GFP_DIRECT_RECLAIM for it:
 * GFP_ATOMIC gets ALLOC_HARDER, GFP_NOWAIT does not. Without a profile, 6.3's rules.
 */
export function gfpToAllocFlags(gfp: number, order = 0, profile?: Profile): number {
  let flags = ALLOC.WMARK_MIN;
  if (gfp & __GFP.KSWAPD_RECLAIM) flags |= ALLOC.KSWAPD;
  if (gfp & __GFP.HIGH) flags |= ALLOC.MIN_RESERVE;
  if (profile?.allocHarder === 'gfp_atomic') {
    if (!(gfp & __GFP.NOMEMALLOC) && gfpAtomicStandIn(gfp)) flags |= ALLOC_HARDER;
    return flags;
  }
  if (!(gfp & (__GFP.DIRECT_RECLAIM | __GFP.NOMEMALLOC))) {
    flags |= ALLOC.NON_BLOCK;
    if (order > 0) flags |= ALLOC.HIGHATOMIC;
  }
  return flags;
}

/**
 * A slow-path step that may make an allocation succeed (direct compaction plugs in here).
 * Returns a pfn or -1.
 */
export type SlowpathHook = (gfp: number, order: number, allocFlags: number) => number;

/**
 * alloc_pages(gfp, order): the fast path at the low watermark, then the slow path at the
 * min watermark with the reserves `gfp` allows, then the hooks (direct compaction). The
 * slow path first wakes kswapd for the order (`__GFP_KSWAPD_RECLAIM`), whose pass may leave
 * kcompactd a request for that order, which `kcompactdRun` then serves. Returns
 * the first pfn, or -1 when the allocation fails (failures are normal and counted). Fires
 * `mm_page_alloc` once either way, with pfn -1 for a failure. `m.allocPages(gfp, order,
 * owner)` is the machine's shorthand, naming the owner and checking the order.
 * @param mem the machine's memory
 * @param gfp the gfp mask ({@link GFP}, {@link __GFP} bits): which zones, which
 *   migratetype, which reserves, whether kswapd and direct compaction may run
 * @param order log2 of the number of pages (0..MAX_PAGE_ORDER); above 0 the block is a
 *   compound page only with `__GFP_COMP`
 * @param opts the owner id recorded in the pages and extra ALLOC_* flags
 * @returns the first pfn of the block, with refcount 1; -1 (NULL) when no zone could
 *   serve it
 * @throws {@link MopsError} `E_RANGE` for a gfp mask with bits mops does not model
 * @throws {@link MmBug} for two zone modifiers at once (gfp_zone()'s GFP_ZONE_BAD)
 */
export function allocPages(mem: Memory, gfp: number, order: number, opts?: AllocOptions): number {
  checkGfp(mem, gfp);
  const owner = opts?.owner ?? 1;
  const extra = opts?.allocFlags ?? 0;
  const first = ALLOC.WMARK_LOW | allocFlagsNofragment(mem, gfp) | extra;
  let pfn = getPageFromFreelist(mem, gfp, order, first, owner);
  if (pfn >= 0) {
    traceAlloc(mem, pfn, order, gfp);
    return pfn;
  }
  // wake_all_kswapds(); the kswapd stand-in, if that woke it, runs its pass at once.
  if (gfp & __GFP.KSWAPD_RECLAIM) {
    wakeAllKswapds(mem, gfp, order);
    runKswapd(mem);
  }
  const slow =
    gfpToAllocFlags(gfp, order, mem.profile) | extra | (mem.defragMode ? ALLOC.NOFRAGMENT : 0);
  mem.allocTraceAs = undefined;
  pfn = slowpathAttempts(mem, gfp, order, slow, owner);
  // defrag_mode: reclaim and compaction failed to prevent the fallback; retry allowing it.
  if (pfn < 0 && mem.defragMode)
    pfn = slowpathAttempts(mem, gfp, order, slow & ~ALLOC.NOFRAGMENT, owner);
  const as = takeAllocTraceAs(mem);
  if (pfn >= 0) return pfn;
  mem.allocFailures++;
  if (as) as(() => traceAlloc(mem, -1, order, gfp));
  else traceAlloc(mem, -1, order, gfp);
  return -1;
}

/** {@link Memory.allocTraceAs}, cleared. */
function takeAllocTraceAs(mem: Memory): Memory['allocTraceAs'] {
  const as = mem.allocTraceAs;
  mem.allocTraceAs = undefined;
  return as;
}

/** The slow path's freelist attempt at the min watermark, then the hooks. */
function slowpathAttempts(
  mem: Memory,
  gfp: number,
  order: number,
  flags: number,
  owner: number,
): number {
  const pfn = getPageFromFreelist(mem, gfp, order, flags, owner);
  if (pfn >= 0) {
    traceAlloc(mem, pfn, order, gfp);
    return pfn;
  }
  // A hook that allocates traces its page (see traceAlloc).
  for (const hook of mem.slowpath) {
    const got = hook(gfp, order, flags);
    if (got >= 0) return got;
  }
  return -1;
}

export { WMARK };
