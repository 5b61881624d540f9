/**
 * Reference-count primitives (include/linux/page_ref.h, mm.h; spec §1.5).
 *
 * Invariant T0 (spec §1.3): a tail page's refcount is always 0. The speculative getters
 * fail on it harmlessly; any primitive that would write it is an MmBug.
 *
 * None of them sleeps or wakes anyone, so they take the machine's {@link Memory} (`m.mem`),
 * not a {@link Kctx}.
 * @module
 */

import { assertText, bug } from '../debug/dump_page.js';
import type { Memory } from '../memory/mem.js';
import { PG } from './flags.js';

/**
 * get_page_unless_zero(): "add 1 unless 0" on the page's own count, the speculative get of
 * a PFN walker that holds no reference yet.
 * @param mem the machine's memory
 * @param pfn the page whose own count is tried (a tail's count is 0: the get fails)
 * @returns true if a reference was taken (drop it with {@link putPage}); false on a free,
 *   frozen, being-freed or tail page, left untouched
 */
export function getPageUnlessZero(mem: Memory, pfn: number): boolean {
  const r = mem.pages.refcount;
  if (r[pfn] === 0) return false;
  r[pfn]++;
  return true;
}

/**
 * folio_try_get(): "add 1 unless 0" on the folio's count. `folio` is the head pfn the caller
 * derived; without a reference that proves nothing about the page it came from (spec §9a).
 * @param mem the machine's memory
 * @param folio the head pfn whose count is tried
 * @returns true if a reference was taken; false when the count was 0
 */
export function folioTryGet(mem: Memory, folio: number): boolean {
  return getPageUnlessZero(mem, folio);
}

/**
 * folio_get_nontail_page() (v6.3+): get_page_unless_zero(page), the page then being its own
 * folio — tails have refcount 0, so success proves `pfn` is a head or base page.
 * @param mem the machine's memory
 * @param pfn the page to take a reference on
 * @returns `pfn` (now its own folio, with the reference taken), or -1 (NULL) when its count
 *   was 0
 */
export function folioGetNontailPage(mem: Memory, pfn: number): number {
  return getPageUnlessZero(mem, pfn) ? pfn : -1;
}

/**
 * folio_get(): unconditional +1; the caller must already hold a reference.
 * @param mem the machine's memory
 * @param folio the head pfn (a tail is an MmBug)
 * @throws {@link MmBug} on a tail page or a count of 0 (`VM_BUG_ON_FOLIO`); the machine
 *   halts
 */
export function folioGet(mem: Memory, folio: number): void {
  const p = mem.pages;
  if (p.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  if (p.refcount[folio] <= 0)
    bug(
      mem,
      assertText(
        mem,
        'VM_BUG_ON_FOLIO(folio_ref_zero_or_close_to_overflow(folio))',
        'VM_BUG_ON_PAGE(page_ref_count(page) <= 0)',
      ),
      folio,
    );
  p.refcount[folio]++;
}

/**
 * get_page(): folio_get(page_folio(page)), +1 on the folio holding `pfn` for a caller that
 * already holds a reference (a driver taking its own reference on a page it allocated, or
 * the target page in migrate_page). Never sleeps, hence the memory rather than a Kctx.
 * Drop the reference with {@link putPage} (or `m.putPage(pfn)`).
 * @param mem the machine's memory (`m.mem`)
 * @param pfn any page of the folio
 * @throws {@link MmBug} when the folio's count is 0 (a get without holding a reference);
 *   the machine halts
 */
export function getPage(mem: Memory, pfn: number): void {
  const c = mem.pages.compound[pfn];
  folioGet(mem, c < 0 ? pfn + c : pfn);
}

/**
 * folio_put_testzero(): -1 on the folio's count, without freeing.
 * @param mem the machine's memory
 * @param folio the head pfn
 * @returns true when the count reached 0: the caller must free the folio
 * @throws {@link MmBug} on a tail page or a count already 0; the machine halts
 */
export function folioPutTestzero(mem: Memory, folio: number): boolean {
  const r = mem.pages.refcount;
  if (mem.pages.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  if (r[folio] === 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', folio);
  return --r[folio] === 0;
}

/**
 * folio_ref_freeze(folio, n): compare-and-exchange `n → 0`, so that no speculative get
 * succeeds until {@link folioRefUnfreeze}.
 * @param mem the machine's memory
 * @param folio the head pfn
 * @param count the references the caller expects (all of them known to it)
 * @returns true if the count was `count` and is now 0 (frozen); false, unchanged, otherwise
 * @throws {@link MmBug} on a tail page; the machine halts
 */
export function folioRefFreeze(mem: Memory, folio: number, count: number): boolean {
  const p = mem.pages;
  if (p.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  if (p.refcount[folio] !== count) return false;
  p.refcount[folio] = 0;
  return true;
}

/**
 * folio_ref_unfreeze(folio, n): set a frozen (zero) count to `n`.
 * @param mem the machine's memory
 * @param folio the head pfn, frozen by {@link folioRefFreeze}
 * @param count the new count (> 0)
 * @throws {@link MmBug} on a tail page, a count that is not 0 or a `count` ≤ 0; the machine
 *   halts
 */
export function folioRefUnfreeze(mem: Memory, folio: number, count: number): void {
  const p = mem.pages;
  if (p.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  // folio_ref_unfreeze() is page_ref_unfreeze() on the head page, in every release.
  if (p.refcount[folio] !== 0) bug(mem, 'VM_BUG_ON_PAGE(page_count(page) != 0)', folio);
  if (count === 0) bug(mem, 'VM_BUG_ON(count == 0)', folio);
  // The kernel would store a negative count as it is; mops refuses to make one.
  if (count < 0) bug(mem, `folio_ref_unfreeze(${count}): a negative reference count`, folio);
  p.refcount[folio] = count;
}

/**
 * page_ref_count(): the page's own count (0 for tails, free pages and frozen folios).
 * @param mem the machine's memory
 * @param pfn the page
 * @returns its reference count
 */
export function pageRefCount(mem: Memory, pfn: number): number {
  return mem.pages.refcount[pfn];
}

/**
 * page_ref_inc(): raw +1 on a page's own count, for a caller that already holds a
 * reference (the kernel's helper checks nothing). A speculative walker must use a
 * get-unless-zero instead. Writing a tail page's count breaks invariant T0 (spec §1.3:
 * tail pages keep refcount 0, which is what makes a speculative get on a tail fail): mops
 * stops the machine with an MmBug naming the invariant.
 * @param mem the machine's memory
 * @param pfn the page (a head or base page)
 * @throws {@link MmBug} on a tail page; the machine halts
 */
export function pageRefInc(mem: Memory, pfn: number): void {
  if (mem.pages.compound[pfn] < 0)
    bug(mem, 'invariant T0 broken: page_ref_inc on a tail page (tail refcount must stay 0)', pfn);
  mem.pages.refcount[pfn]++;
}

/**
 * page_ref_dec(): raw -1 on a page's own count; never frees (use {@link putPage} for that).
 * @param mem the machine's memory
 * @param pfn the page (a head or base page)
 * @throws {@link MmBug} on a tail page or a zero count; the machine halts
 */
export function pageRefDec(mem: Memory, pfn: number): void {
  if (mem.pages.compound[pfn] < 0)
    bug(mem, 'invariant T0 broken: page_ref_dec on a tail page (tail refcount must stay 0)', pfn);
  if (mem.pages.refcount[pfn] === 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', pfn);
  mem.pages.refcount[pfn]--;
}

/**
 * split_folio() reduced to what PFN walkers observe: every page of the folio becomes an
 * order-0 folio of its own; the head keeps its references and each former tail gets one.
 * @param mem the machine's memory
 * @param head the head pfn of a compound folio
 * @throws {@link MmBug} when `head` is not the head of a large folio; the machine halts
 */
export function splitFolio(mem: Memory, head: number): void {
  const p = mem.pages;
  if (!(p.flags[head] & (1 << PG.head)) || p.compound[head] <= 0)
    bug(mem, 'VM_BUG_ON_FOLIO(!folio_test_large(folio))', head);
  const n = 1 << p.compound[head];
  for (let i = 1; i < n; i++) {
    p.compound[head + i] = 0;
    p.refcount[head + i] = 1;
  }
  p.flags[head] &= ~(1 << PG.head);
  p.compound[head] = 0;
}
