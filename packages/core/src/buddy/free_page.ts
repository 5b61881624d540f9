/**
 * Freeing to the buddy allocator (mm/page_alloc.c): the free_pages_prepare() checks,
 * __free_one_page() merging across pageblocks, and the put_page()/folio_put() entry points.
 *
 * mops has no per-CPU page lists: an order-0 free goes straight to the buddy allocator and
 * merges at once (spec §0.2).
 * @module
 */

import { bug } from '../debug/dump_page.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  pageblock_order,
} from '../memory/constants.js';
import type { FreeCapture, Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { PG } from '../page/flags.js';
import { EV } from '../vmstat/vmstat.js';
import { addToFreeList, delFromFreeList, pageIsBuddy } from './free_area.js';
import { changePageblockRange } from './rmqueue.js';

const EV_PGFREE = EV.pgfree;

/** Called when a free block merges or lands; the buddy of `pfn` at `order` is free. */
function buddyMergeLikely(mem: Memory, zone: Zone, pfn: number, buddy: number, order: number) {
  if (order >= MAX_PAGE_ORDER - 1) return false;
  const higher = buddy & pfn;
  const higherBuddy = higher ^ (1 << (order + 1));
  return zone.spans(higherBuddy) && pageIsBuddy(mem, higherBuddy, order + 1);
}

/**
 * The group of migrate types a free block of `mt` merges with at pageblock order and above
 * (blocks of different groups never merge): 6.x's migratetype_is_mergeable() joins only the
 * per-CPU types, each other type keeps to itself; v4.8 joins every type but MIGRATE_ISOLATE.
 */
export function mergeGroup(mem: Memory, mt: number): number {
  if (mem.profile.mergeableTypes === 'not_isolate') return mt === MIGRATE.ISOLATE ? 1 : 0;
  return mt < MIGRATE_PCPTYPES ? -1 : mt;
}

/** Whether free blocks of types `a` and `b` may merge across pageblocks. */
function mergeableTypes(mem: Memory, a: number, b: number): boolean {
  return a === b || mergeGroup(mem, a) === mergeGroup(mem, b);
}

/**
 * A merge with a buddy of pageblock order or more: whether the types allow it; the buddy's
 * pageblocks take `mt` when the profile says so.
 */
function mergeAcrossBlocks(mem: Memory, buddy: number, order: number, mt: number): boolean {
  const bmt = mem.pageblockMigratetype(buddy);
  if (!mergeableTypes(mem, mt, bmt)) return false;
  if (bmt !== mt && mem.profile.mergeRewritesBuddyType) changePageblockRange(mem, buddy, order, mt);
  return true;
}

/**
 * __free_one_page(): merge with free buddies as far as possible and put the block on the
 * `mt` free list, at the tail if `toTail` or if a further merge looks likely.
 */
export function freeOneBlock(
  mem: Memory,
  zone: Zone,
  pfn: number,
  order: number,
  mt: number,
  toTail = false,
): void {
  let buddy = 0;
  const captures = mem.captures;
  while (order < MAX_PAGE_ORDER) {
    if (captures.length !== 0 && offerCapture(captures, zone, pfn, order, mt)) return;
    buddy = pfn ^ (1 << order);
    if (!zone.spans(buddy) || !pageIsBuddy(mem, buddy, order)) break;
    if (order >= pageblock_order && !mergeAcrossBlocks(mem, buddy, order, mt)) break;
    delFromFreeList(mem, zone, buddy);
    pfn &= buddy;
    order++;
  }
  const tail = toTail || buddyMergeLikely(mem, zone, pfn, pfn ^ (1 << order), order);
  addToFreeList(mem, zone, pfn, order, mt, tail);
}

/** compaction_capture() of each direct compaction under way; true once one took the block. */
function offerCapture(
  captures: readonly FreeCapture[],
  zone: Zone,
  pfn: number,
  order: number,
  mt: number,
): boolean {
  for (const c of captures) if (c.offer(zone, pfn, order, mt)) return true;
  return false;
}

/**
 * The reason free_pages_check_bad() (v4.8) or page_bad_reason() (6.x) gives, or undefined
 * when the page may be freed. The kernel runs every check, mapcount, mapping, _refcount, the
 * PAGE_FLAGS_CHECK_AT_FREE flags, in that order, and the last one that matches names the
 * page; the releases mops models agree on the checks and their words (the memcg and
 * page_pool ones that follow them in the kernel have nothing to check in mops). So the
 * checks run here from the last: the first match is the kernel's last.
 */
function badPageReason(mem: Memory, pfn: number): string | undefined {
  const p = mem.pages;
  if (p.flags[pfn] & mem.freeCheckMask) return 'PAGE_FLAGS_CHECK_AT_FREE flag(s) set';
  if (p.refcount[pfn] !== 0) return 'nonzero _refcount';
  const prof = mem.profile;
  const m = p.mapping[pfn];
  if (m !== 0) {
    const resets = prof.freeResetsMapping === 'tag' ? (m & 3) !== 0 : (m & 1) !== 0;
    if (!resets) return 'non-NULL mapping';
  }
  const word = p.type[pfn];
  if (word !== -1 && !(prof.freeClearsPageType && word >>> 24 >= 0xf0 && word >>> 24 < 0xff))
    return 'nonzero mapcount';
  return undefined;
}

/** bad_page(): report and leak the page, as the kernel does. */
function badPage(mem: Memory, pfn: number, reason: string): void {
  mem.leaked.add(pfn);
  const text = `BUG: Bad page state in process ${mem.currentComm()}  pfn:${pfn.toString(16).padStart(5, '0')}`;
  mem.warn('bad_page', `${text}\n(${reason})`, pfn);
}

/**
 * free_pages_prepare(): fire `mm_page_free` (first, as the kernel does, so a bad page is
 * traced too), dismantle a compound page, check for a bad page, and reset what the kernel
 * resets: `mapping` (per profile), every flag but hwpoison, the page type (v6.17),
 * `private`. Returns false when a page was bad (the block is then leaked, not freed). The
 * checks run in every release, as in a kernel built with CONFIG_DEBUG_VM; from 6.4 a kernel
 * without it (nor debug_pagealloc, init_on_alloc or init_on_free) skips them
 * (is_check_pages_enabled()).
 */
export function freePagesPrepare(mem: Memory, pfn: number, order: number): boolean {
  if (mem.trace.enabled.mm_page_free) traceFree(mem, pfn, order);
  const p = mem.pages;
  // The common case first: an order-0 page with nothing to reset but its flags.
  const m = p.mapping[pfn];
  const f = p.flags[pfn];
  if (
    order === 0 &&
    p.type[pfn] === -1 &&
    (m === 0 || (m & mem.freeResetMappingBits) !== 0) &&
    p.refcount[pfn] === 0 &&
    !(f & mem.freeSlowMask)
  ) {
    p.flags[pfn] = f & (1 << PG.hwpoison);
    p.mapping[pfn] = 0;
    p.priv[pfn] = 0;
    p.compound[pfn] = 0;
    return true;
  }
  return freePagesPrepareSlow(mem, pfn, order);
}

/** {@link freePagesPrepare} beyond the common case: compound pages, bad pages, types. */
function freePagesPrepareSlow(mem: Memory, pfn: number, order: number): boolean {
  const p = mem.pages;
  let ok = true;
  const n = 1 << order;
  // v6.17: an mlocked folio is munlocked here, not reported (mops keeps no NR_MLOCK: it
  // has no mlock()).
  if (mem.profile.freeFlagRules === 'v6.17' && p.flags[pfn] & (1 << PG.mlocked)) {
    p.flags[pfn] &= ~(1 << PG.mlocked);
    mem.vmstat.count('unevictable_pgs_cleared', n);
  }
  for (let i = n - 1; i >= 0; i--) {
    const q = pfn + i;
    if (i > 0 && p.compound[q] < 0) p.compound[q] = 0;
    const reason = badPageReason(mem, q);
    if (reason) {
      badPage(mem, q, reason);
      ok = false;
    }
  }
  if (!ok) return false;
  for (let i = 0; i < n; i++) {
    const q = pfn + i;
    p.flags[q] &= 1 << PG.hwpoison;
    p.mapping[q] = 0;
    p.priv[q] = 0;
    p.type[q] = -1;
    p.compound[q] = 0;
  }
  return true;
}

/**
 * __free_pages_ok() / free_the_page(): prepare and give the block to the buddy allocator;
 * pgfree counts it only then, as the kernel does after free_pages_prepare() succeeded.
 */
export function freeTheBlock(mem: Memory, pfn: number, order: number): void {
  if (mem.migratedHeld.size !== 0) mem.migratedHeld.delete(pfn);
  if (!freePagesPrepare(mem, pfn, order)) return;
  const zone = mem.zoneOf(pfn);
  freeOneBlock(mem, zone, pfn, order, mem.pageblockMigratetype(pfn));
  mem.vmstat.events[EV_PGFREE] += 1 << order;
}

function traceFree(mem: Memory, pfn: number, order: number): void {
  mem.trace.fire('mm_page_free', { pfn, order });
}

/**
 * folio_put() / put_page(): drop a reference on the folio holding `pfn`; free it to the
 * buddy allocator on zero. Freeing never sleeps, so it takes the memory (`m.mem`), not a
 * Kctx. `m.putPage(pfn)` is the machine's shorthand, which also refuses a pfn outside the
 * machine (E_RANGE) and a halted machine (E_HALTED); this primitive checks neither.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn any page of the folio
 * @throws {@link MmBug} `VM_BUG_ON_PAGE(page_ref_count(page) == 0)` on a put with no
 *   reference left; the machine halts
 */
export function putPage(mem: Memory, pfn: number): void {
  const p = mem.pages;
  const c = p.compound[pfn];
  const folio = c < 0 ? pfn + c : pfn;
  const r = p.refcount[folio];
  if (r > 1) p.refcount[folio] = r - 1;
  else putLastRef(mem, folio, r);
}

/** The end of {@link putPage} when the count was 1 (free the folio) or already 0 (a bug). */
function putLastRef(mem: Memory, folio: number, r: number): void {
  const p = mem.pages;
  if (r <= 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', folio);
  p.refcount[folio] = 0;
  freeTheBlock(mem, folio, p.flags[folio] & (1 << PG.head) ? p.compound[folio] : 0);
}

/**
 * folio_put(): {@link putPage} on a folio (head) pfn.
 * @param mem the machine's memory
 * @param folio the head pfn
 * @throws {@link MmBug} on a tail page or a count already 0; the machine halts
 */
export function folioPut(mem: Memory, folio: number): void {
  if (mem.pages.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  putPage(mem, folio);
}

/**
 * __free_pages(page, order): for a block from a non-compound high-order allocation. If
 * someone else still holds a reference on the first page, the rest is freed now and the
 * first page later, when that reference goes. `m.freePages(pfn, order)` is the machine's
 * shorthand, which also checks the pfn and the order (E_RANGE).
 * @param mem the machine's memory
 * @param pfn the first page of the block, as allocPages returned it
 * @param order the order it was allocated with (ignored for a compound page, which knows
 *   its own)
 * @throws {@link MmBug} on a tail page or a count already 0; the machine halts
 */
export function freePages(mem: Memory, pfn: number, order: number): void {
  const p = mem.pages;
  const head = (p.flags[pfn] & (1 << PG.head)) !== 0;
  if (p.compound[pfn] < 0) bug(mem, 'VM_BUG_ON_PAGE(PageTail(page))', pfn);
  if (p.refcount[pfn] <= 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', pfn);
  if (--p.refcount[pfn] === 0) {
    freeTheBlock(mem, pfn, head ? p.compound[pfn] : order);
  } else if (!head) {
    while (order-- > 0) freeTheBlock(mem, pfn + (1 << order), order);
  }
}

/**
 * NR_FREE_PAGES_BLOCKS (6.15+): free pages in free blocks of at least pageblock order, those
 * on MIGRATE_ISOLATE lists excepted.
 */
export function freePagesInBlocks(zone: Zone): number {
  let n = 0;
  for (let o = pageblock_order; o <= MAX_PAGE_ORDER; o++)
    n += (zone.nrFree[o] - zone.nrFreeList[o * MIGRATE_TYPES + MIGRATE.ISOLATE]) << o;
  return n;
}
