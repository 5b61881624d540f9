/**
 * Fragmentation metrics (spec §8.7, compaction-by-profile T11/T12): the free-area summary
 * of a zone, the fragmentation and unusable-free-space indexes of debugfs `extfrag/`, the
 * proactive-compaction score and its watermarks. All arithmetic is the kernel's integer
 * arithmetic: results are whole numbers (thousandths or percent), divisions truncate.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import { checkOrder, NR_PAGE_ORDERS, pageblock_order } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import type { Profile } from '../profile.js';

/** `struct contig_page_info`: what {@link fillContigPageInfo} reads off a zone's free areas. */
export interface ContigPageInfo {
  /** Free base pages: Σ nr_free·2^order. */
  readonly freePages: number;
  /** Free buddy blocks of any order: Σ nr_free. */
  readonly freeBlocksTotal: number;
  /** Blocks of the target order obtainable from free blocks of at least that order. */
  readonly freeBlocksSuitable: number;
}

/**
 * `COMPACTION_HPAGE_ORDER`: the order the fragmentation score is measured at (PMD order, 9
 * on x86-64 with 4 KiB pages; equal to pageblock_order in every profile).
 */
export const COMPACTION_HPAGE_ORDER = pageblock_order;

/** `vm.compaction_proactiveness` default. */
export const DEFAULT_COMPACTION_PROACTIVENESS = 20;

/** `vm.extfrag_threshold` default (compared with {@link fragmentationIndex}). */
export const DEFAULT_EXTFRAG_THRESHOLD = 500;

/**
 * Whether the profile has proactive compaction, `extfrag_for_order` and the fragmentation
 * score (added in 5.9: every profile but v4.8). Read from the profile's compaction row,
 * `profile.compaction.proactive !== 'none'`.
 */
export function profileHasProactiveCompaction(profile: Profile): boolean {
  return profile.compaction.proactive !== 'none';
}

/**
 * fill_contig_page_info(zone, order): free pages, free blocks and the blocks of `order`
 * the free lists could supply without compaction. Reads `nr_free` per order only, as the
 * kernel does (no attempt to count what migrating movable pages would free up).
 * @see mm/vmstat.c fill_contig_page_info()
 */
export function fillContigPageInfo(zone: Zone, order: number): ContigPageInfo {
  checkOrder(order, 'fill_contig_page_info: ');
  let freePages = 0;
  let freeBlocksTotal = 0;
  let freeBlocksSuitable = 0;
  for (let o = 0; o < NR_PAGE_ORDERS; o++) {
    const blocks = zone.nrFree[o];
    freeBlocksTotal += blocks;
    freePages += blocks * 2 ** o;
    if (o >= order) freeBlocksSuitable += blocks * 2 ** (o - order);
  }
  return { freePages, freeBlocksTotal, freeBlocksSuitable };
}

/**
 * __fragmentation_index(order, info): in thousandths. 0 when there is no free block at
 * all; -1000 when a block of `order` is free (the allocation would succeed, so the index
 * means nothing); otherwise `1000 - (1000 + free_pages*1000/2^order) / free_blocks_total`,
 * near 0 when an allocation would fail for lack of memory and near 1000 when it would fail
 * from fragmentation. The kernel computes the subtraction in unsigned long and returns it
 * as int, so a zone with few, large-but-not-large-enough blocks gets a negative value (one
 * free order-9 block at order 10: -500); that is reproduced. The 6.x guard returning 0 for
 * an order above MAX_PAGE_ORDER is unreachable here: such orders are a usage error.
 * @see mm/vmstat.c __fragmentation_index()
 */
export function fragmentationIndexOf(order: number, info: ContigPageInfo): number {
  checkOrder(order, 'fragmentation_index: ');
  if (info.freeBlocksTotal === 0) return 0;
  if (info.freeBlocksSuitable > 0) return -1000;
  const requested = 2 ** order;
  const x = Math.floor((info.freePages * 1000) / requested);
  return 1000 - Math.floor((1000 + x) / info.freeBlocksTotal);
}

/**
 * fragmentation_index(zone, order): {@link fragmentationIndexOf} of the zone's free areas.
 * Compaction compares it with `vm.extfrag_threshold` ({@link DEFAULT_EXTFRAG_THRESHOLD}).
 * Throws MopsError('E_RANGE') for an order outside 0..10.
 * @see mm/vmstat.c fragmentation_index()
 */
export function fragmentationIndex(zone: Zone, order: number): number {
  return fragmentationIndexOf(order, fillContigPageInfo(zone, order));
}

/**
 * unusable_free_index(order, info), in thousandths: the share of free memory in blocks
 * too small for `order`; 1000 when the zone has no free page at all.
 * @see mm/vmstat.c unusable_free_index()
 */
export function unusableFreeIndexOf(order: number, info: ContigPageInfo): number {
  checkOrder(order, 'unusable_free_index: ');
  if (info.freePages === 0) return 1000;
  return Math.floor(
    ((info.freePages - info.freeBlocksSuitable * 2 ** order) * 1000) / info.freePages,
  );
}

/**
 * The unusable free space index of debugfs `extfrag/unusable_index` for one zone and
 * order, in thousandths (same in every profile). Throws E_RANGE for an order outside 0..10.
 * @see mm/vmstat.c unusable_free_index()
 */
export function unusableIndex(zone: Zone, order: number): number {
  return unusableFreeIndexOf(order, fillContigPageInfo(zone, order));
}

function requireProactive(profile: Profile | undefined, what: string): void {
  if (profile && !profileHasProactiveCompaction(profile))
    throw new MopsError(
      'E_USAGE',
      `${what} does not exist in ${profile.name} (proactive compaction arrived in 5.9); use a v6.x profile, or fragmentationIndex/unusableIndex`,
      'profile',
    );
}

/**
 * extfrag_for_order(zone, order), in percent: the share of free memory not usable for an
 * allocation of `order`; 0 when the zone has no free page. Absent in v4.8: pass the
 * machine's `profile` and a v4.8 profile throws MopsError('E_USAGE') (callers already on a
 * proactive path, which v4.8 never reaches, may leave it out). Throws E_RANGE for an order
 * outside 0..10.
 * @see mm/vmstat.c extfrag_for_order()
 */
export function extfragForOrder(zone: Zone, order: number, profile?: Profile): number {
  requireProactive(profile, 'extfrag_for_order');
  const info = fillContigPageInfo(zone, order);
  if (info.freePages === 0) return 0;
  return Math.floor(
    ((info.freePages - info.freeBlocksSuitable * 2 ** order) * 100) / info.freePages,
  );
}

/**
 * fragmentation_score_zone(zone): {@link extfragForOrder} at COMPACTION_HPAGE_ORDER (9),
 * 0..100. Proactive compaction of a zone stops once this is at most the low watermark.
 * Absent in v4.8: given a v4.8 `profile` it throws MopsError('E_USAGE'), as
 * {@link extfragForOrder} does.
 * @see mm/compaction.c fragmentation_score_zone()
 */
export function fragmentationScoreZone(zone: Zone, profile?: Profile): number {
  requireProactive(profile, 'fragmentation_score_zone');
  return extfragForOrder(zone, COMPACTION_HPAGE_ORDER, profile);
}

/**
 * fragmentation_score_zone_weighted(zone): `present_pages * zone_score /
 * (node_present_pages + 1)`, truncated. Absent in v4.8 (MopsError('E_USAGE')).
 * @see mm/compaction.c fragmentation_score_zone_weighted()
 */
export function fragmentationScoreZoneWeighted(mem: Memory, zone: Zone): number {
  let nodePresent = 0;
  for (const z of mem.node.zones) nodePresent += z.presentPages;
  return Math.floor(
    (zone.presentPages * fragmentationScoreZone(zone, mem.profile)) / (nodePresent + 1),
  );
}

/**
 * fragmentation_score_node(pgdat): the sum over populated zones of the weighted zone
 * scores (each division truncated separately, so a one-zone node scores one less than its
 * zone once the zone's score is high). kcompactd compares it with the high watermark of
 * {@link proactiveThresholds}. Absent in v4.8 (MopsError('E_USAGE')).
 * @param mem the machine's memory (`m.mem`)
 * @returns the node's score, 0 (no fragmentation) to 100: the zones' scores weighted by
 *   their present pages
 * @throws {@link MopsError} `E_USAGE` in v4.8
 * @see mm/compaction.c fragmentation_score_node()
 */
export function fragmentationScoreNode(mem: Memory): number {
  requireProactive(mem.profile, 'fragmentation_score_node');
  let score = 0;
  for (const z of mem.node.zones) {
    if (!z.populated) continue;
    score += fragmentationScoreZoneWeighted(mem, z);
  }
  return score;
}

/** The proactive compaction watermarks of {@link proactiveThresholds} (score units, 0..100). */
export interface ProactiveThresholds {
  /** A zone's proactive run stops once its score is at most this (`fragmentation_score_wmark(true)`). */
  readonly low: number;
  /** kcompactd starts a proactive run when the node score exceeds this (`fragmentation_score_wmark(false)`). */
  readonly high: number;
}

/**
 * fragmentation_score_wmark(low) for `vm.compaction_proactiveness` = `proactiveness`
 * (0..100, default 20; T12). v6.0/v6.3: low = max(100 − p, 5), high = min(low + 10, 100).
 * v6.17: low = 100 − p, high = min(low + min(10, low/2), 100). All give 80/90 at p = 20; at
 * p = 100 v6.0/v6.3 give 5/15 and v6.17 0/0. v4.8 has no proactive compaction:
 * MopsError('E_USAGE'). A proactiveness outside 0..100 (or not an integer) is E_RANGE.
 * The rule is the profile's `compaction.proactive` row.
 * @see mm/compaction.c fragmentation_score_wmark()
 */
export function proactiveThresholds(profile: Profile, proactiveness: number): ProactiveThresholds {
  if (!Number.isInteger(proactiveness) || proactiveness < 0 || proactiveness > 100)
    throw new MopsError(
      'E_RANGE',
      `vm.compaction_proactiveness must be an integer 0..100, got ${valueKind(proactiveness)}`,
      'proactiveness',
    );
  requireProactive(profile, 'proactive compaction (vm.compaction_proactiveness)');
  if (profile.compaction.proactive === 'v6.17') {
    const low = 100 - proactiveness;
    return { low, high: Math.min(low + Math.min(10, Math.floor(low / 2)), 100) };
  }
  const low = Math.max(100 - proactiveness, 5);
  return { low, high: Math.min(low + 10, 100) };
}
