/**
 * The invariant checker: every pfn is in exactly one state, the free
 * lists agree with the page metadata and the counters, tail pages have refcount 0, and
 * every plugin's own checker passes. "Nothing lost" means this checker passes.
 *
 * The rules that concern few pages (broken list links, isolated and locked pages, compound
 * heads, v6.17 free blocks against their pageblocks, the v4.8 nr_isolated_file count) live
 * in `invariants_pages.ts`; the pfn walk only tests the cheap condition that calls them.
 * @module
 */

import { mergeGroup } from '../buddy/free_page.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_TYPES,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { page_has_movable_ops } from '../migrate/movable.js';
import {
  ISOLATED,
  PAGE_MAPPING_FLAGS,
  PAGE_MAPPING_MOVABLE,
  PAGEFLAGS_MASK,
  PG,
  PGTY,
} from '../page/flags.js';
import { hexPfn } from './dump_page.js';
import {
  checkCountedIsolated,
  checkFreeBlockPageblocks,
  checkLinks,
  checkRareFlags,
  RARE_FLAGS,
} from './invariants_pages.js';

/** A checker contributed by a plugin: returns the violations it finds (empty when fine). */
export type InvariantChecker = () => string[];

/** The outcome of {@link checkMemoryInvariants} / `checkInvariants`. */
export interface InvariantReport {
  /** True when nothing is violated. */
  readonly ok: boolean;
  /** One line per violation, naming the pfn or structure. */
  readonly violations: string[];
}

const MAX_REPORTED = 50;

/**
 * Checks the memory-level invariants (buddy, compound pages, lists, counters), and the page
 * states wrong at any scheduling point (a MOVABLE tag whose ops pointer, as `hasOps` finds
 * it, leads nowhere: only the owner's release clears it, to NULL) or, when `quiescent` (no
 * task left to finish what it started), an isolated page on no list (only the VM links an
 * isolated page, and only its putback can return it to its owner). A bad page, leaked as
 * the kernel leaks it, is left out of the latter.
 * @param mem the machine's memory
 * @param quiescent no task is live: also report what a task in progress may leave for now
 * @param hasOps whether a page tagged movable has ops to call (see `pageMovableOps`)
 * @returns the violations, at most 50
 */
export function checkMemoryInvariants(
  mem: Memory,
  quiescent = false,
  hasOps?: (pfn: number) => boolean,
): string[] {
  const out: string[] = [];
  const add = (s: string): void => {
    if (out.length < MAX_REPORTED) out.push(s);
  };
  const p = mem.pages;
  const { type, priv, refcount, flags, compound, mapping } = p;
  const { next, prev } = p.lists;
  const rewrites = mem.profile.mergeRewritesBuddyType;
  const byTag = hasOps !== undefined && mem.profile.movableMarker !== 'page_type';
  const byType = hasOps !== undefined && !byTag;
  const nrZoneFree = new Map<number, number>();
  let freeBlocks = 0;
  for (let pfn = 0; pfn < mem.nrPages; ) {
    const word = type[pfn];
    // A linked page (LruLists.isLinked: lru.next set) and its neighbours link to each other;
    // checkLinks() also reads list heads.
    const ln = next[pfn];
    if (ln !== 0) {
      const lp = prev[pfn];
      if (!(ln > 0 && lp > 0 && prev[ln - 1] === pfn + 1 && next[lp - 1] === pfn + 1))
        checkLinks(mem, pfn, add);
    }
    if (word >>> 24 === PGTY.buddy) {
      const order = priv[pfn];
      const zone = mem.zoneOf(pfn);
      if (order < 0 || order > MAX_PAGE_ORDER || pfn & ((1 << order) - 1)) {
        add(`pfn ${hexPfn(pfn)}: free block of order ${order} is misaligned or has a bad order`);
        pfn++;
        continue;
      }
      if (!zone.spans(pfn) || !zone.spans(pfn + (1 << order) - 1))
        add(`pfn ${hexPfn(pfn)}: free block of order ${order} crosses its zone's span`);
      freeBlocks++;
      nrZoneFree.set(zone.idx, (nrZoneFree.get(zone.idx) ?? 0) + (1 << order));
      for (let i = 0; i < 1 << order; i++) {
        const q = pfn + i;
        if (refcount[q] !== 0) add(`pfn ${hexPfn(q)}: free page has refcount ${refcount[q]}`);
        if (flags[q] & PAGEFLAGS_MASK & ~(1 << PG.hwpoison))
          add(
            `pfn ${hexPfn(q)}: free page has flags 0x${(flags[q] & PAGEFLAGS_MASK).toString(16)}`,
          );
        if (compound[q] !== 0) add(`pfn ${hexPfn(q)}: free page is part of a compound page`);
        if (i > 0 && type[q] !== -1)
          add(`pfn ${hexPfn(q)}: page inside a free block has a page type`);
        if (mapping[q] !== 0) add(`pfn ${hexPfn(q)}: free page has a mapping`);
        // Only the first page of a free block is on a list (lru of the others is unused).
        if (i > 0 && (next[q] | prev[q]) !== 0)
          add(`pfn ${hexPfn(q)}: page inside the free block at ${hexPfn(pfn)} is on a list`);
      }
      if (rewrites) checkFreeBlockPageblocks(mem, pfn, order, word & 0xff, add);
      const buddy = pfn ^ (1 << order);
      if (
        order < MAX_PAGE_ORDER &&
        zone.spans(buddy) &&
        type[buddy] >>> 24 === PGTY.buddy &&
        priv[buddy] === order
      ) {
        // Inside a pageblock free buddies always merge; across pageblocks only when the
        // profile's rule lets their types merge (__free_one_page).
        const unmergeable =
          order >= pageblock_order &&
          mergeGroup(mem, mem.pageblockMigratetype(pfn)) !==
            mergeGroup(mem, mem.pageblockMigratetype(buddy));
        if (!unmergeable)
          add(
            `pfn ${hexPfn(pfn)}: free block of order ${order} and its free buddy ${hexPfn(buddy)} were not merged`,
          );
      }
      pfn += 1 << order;
      continue;
    }
    const c = compound[pfn];
    const f = flags[pfn];
    const r = refcount[pfn];
    if (f & RARE_FLAGS) checkRareFlags(mem, pfn, add);
    if (c < 0) {
      const head = pfn + c;
      if (
        head < 0 ||
        !(flags[head] & (1 << PG.head)) ||
        compound[head] <= 0 ||
        pfn >= head + (1 << compound[head])
      )
        add(`pfn ${hexPfn(pfn)}: tail page whose head ${hexPfn(head)} does not cover it`);
      if (r !== 0) add(`pfn ${hexPfn(pfn)}: tail page has refcount ${r} (must be 0)`);
    } else {
      if (c > 0 && !(f & (1 << PG.head)))
        add(`pfn ${hexPfn(pfn)}: compound order ${c} recorded on a page that is not a head`);
      if (r < 0) add(`pfn ${hexPfn(pfn)}: negative refcount ${r}`);
      if (r > 0 && p.ownerOf(pfn) === 0) add(`pfn ${hexPfn(pfn)}: allocated page has no owner`);
      const m = mapping[pfn];
      if (byTag && (m & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_MOVABLE && m >>> 2 !== 0)
        if (!hasOps(pfn))
          add(`pfn ${hexPfn(pfn)}: tagged movable, but its ops pointer leads to no movable_ops`);
      if (byType && f & (1 << PG.movable_ops) && page_has_movable_ops(mem, pfn) && !hasOps?.(pfn))
        add(
          `pfn ${hexPfn(pfn)}: marked PG_movable_ops, but its page type has no movable_ops registered (setMovableOps)`,
        );
      if (quiescent && !mem.leaked.has(pfn)) {
        if (f & ISOLATED && ln === 0)
          add(
            `pfn ${hexPfn(pfn)}: isolated, but on no list: no putback can return it to its owner`,
          );
        if (f & (1 << PG.locked))
          add(`pfn ${hexPfn(pfn)}: locked, but no task is left to unlock it (a lost unlock_page)`);
      }
    }
    pfn++;
  }
  if (mem.profile.movableCountedIsolated) checkCountedIsolated(mem, add);
  let listed = 0;
  const lost = mergeGroup(mem, MIGRATE.HIGHATOMIC) === mergeGroup(mem, MIGRATE.MOVABLE);
  let reservedSum = 0;
  for (const zone of mem.populatedZones) {
    let pages = 0;
    let counted = 0;
    for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
      let perOrder = 0;
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        const i = o * MIGRATE_TYPES + mt;
        let n = 0;
        for (let q = p.lists.first(zone.freeList[i]); q !== -1; q = p.lists.nextOf(q)) {
          n++;
          if (p.type[q] >>> 24 !== PGTY.buddy || p.priv[q] !== o || (p.type[q] & 0xff) !== mt)
            add(
              `zone ${zone.name}: pfn ${hexPfn(q)} on free list order ${o} type ${mt} is not a free block of that order and type`,
            );
          if (!zone.spans(q))
            add(`zone ${zone.name}: pfn ${hexPfn(q)} on its free list lies outside the zone`);
          if (n > mem.nrPages) {
            add(`zone ${zone.name}: free list order ${o} type ${mt} loops`);
            break;
          }
        }
        if (n !== zone.nrFreeList[i])
          add(
            `zone ${zone.name}: free list order ${o} type ${mt} holds ${n} blocks, counted ${zone.nrFreeList[i]}`,
          );
        perOrder += n;
        pages += n << o;
        if (mt !== MIGRATE.ISOLATE) counted += n << o;
      }
      if (perOrder !== zone.nrFree[o])
        add(`zone ${zone.name}: nr_free[${o}] is ${zone.nrFree[o]}, lists hold ${perOrder}`);
      listed += perOrder;
    }
    // NR_FREE_PAGES leaves out the MIGRATE_ISOLATE lists (account_freepages()).
    if (counted !== zone.nrFreePages)
      add(
        `zone ${zone.name}: NR_FREE_PAGES is ${zone.nrFreePages}, lists other than Isolate hold ${counted} pages`,
      );
    const walked = nrZoneFree.get(zone.idx) ?? 0;
    if (walked !== pages)
      add(`zone ${zone.name}: ${walked} pages are marked free, free lists hold ${pages}`);
    // Free pages are managed pages: a page outside them (a hole, a reserved page) never
    // reaches the buddy allocator. A known kernel miscount may leave the count short.
    const short = Math.max(0, zone.managedMiscount);
    if (pages > zone.managedPages + short)
      add(
        `zone ${zone.name}: ${pages} free pages, more than its ${zone.managedPages} managed${short ? ` and the ${short} a known kernel miscount leaves out of them` : ''}`,
      );
    const start = zone.zoneStartPfn;
    const end = start + zone.spannedPages;
    // HighAtomic blocks inside the zone, and those crossing its start or end: the zone of
    // the allocation that reserved one of these counted it (either zone).
    let highatomic = 0;
    let shared = 0;
    for (let b = start & ~(pageblock_nr_pages - 1); b < end; b += pageblock_nr_pages) {
      const mt = mem.pageblockMigratetype(b);
      if (mt >= MIGRATE_TYPES) add(`pfn ${hexPfn(b)}: pageblock has migratetype ${mt}`);
      if (mt !== MIGRATE.HIGHATOMIC) continue;
      if (sharedWithAnotherZone(mem, zone, b)) shared += pageblock_nr_pages;
      else highatomic += pageblock_nr_pages;
    }
    // Only reserve_highatomic_pageblock() makes a block HighAtomic, counting it (mops never
    // unreserves one). Where HighAtomic blocks merge with other types (v4.8), one can still
    // lose its type uncounted: a fallback claims the merged block.
    const reserved = zone.nrReservedHighatomic;
    if (reserved < highatomic || (!lost && reserved > highatomic + shared))
      add(
        `zone ${zone.name}: HighAtomic pageblocks hold ${highatomic} pages${shared ? ` (and ${shared} in blocks shared with another zone)` : ''}, nr_reserved_highatomic is ${reserved}`,
      );
    reservedSum += reserved;
  }
  // Each block shared by two zones is counted by one of them.
  const blocks = highatomicBlocks(mem);
  if (lost ? reservedSum < blocks : reservedSum !== blocks)
    add(
      `HighAtomic pageblocks hold ${blocks} pages, the zones' nr_reserved_highatomic add up to ${reservedSum}`,
    );
  if (listed !== freeBlocks)
    add(`${freeBlocks} free blocks are marked Buddy, free lists hold ${listed}`);
  return out;
}

/** Pages in the HighAtomic pageblocks of the populated zones, each block counted once. */
function highatomicBlocks(mem: Memory): number {
  let pages = 0;
  let last = -1;
  for (const zone of mem.populatedZones) {
    const end = zone.zoneStartPfn + zone.spannedPages;
    for (let b = zone.zoneStartPfn & ~(pageblock_nr_pages - 1); b < end; b += pageblock_nr_pages)
      if (b > last && mem.pageblockMigratetype(b) === MIGRATE.HIGHATOMIC) {
        pages += pageblock_nr_pages;
        last = b;
      }
  }
  return pages;
}

/** Whether the pageblock at `b` also holds pages of a populated zone other than `zone`. */
function sharedWithAnotherZone(mem: Memory, zone: Zone, b: number): boolean {
  const bEnd = b + pageblock_nr_pages;
  return mem.populatedZones.some(
    (z) => z !== zone && z.zoneStartPfn < bEnd && b < z.zoneStartPfn + z.spannedPages,
  );
}
