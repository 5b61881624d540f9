/**
 * Reference-count primitives (include/linux/page_ref.h, mm.h; spec §1.5).
 *
 * Invariant T0 (spec §1.3): a tail page's refcount is always 0. The speculative getters
 * fail on it harmlessly; any primitive that would write it is an MmBug.
 * @module
 */

import { assertText, bug } from '../debug/dump_page.js';
import type { Memory } from '../memory/mem.js';
import { PG } from './flags.js';

/** get_page_unless_zero(): "add 1 unless 0" on the page's own count. */
export function getPageUnlessZero(mem: Memory, pfn: number): boolean {
  const r = mem.pages.refcount;
  if (r[pfn] === 0) return false;
  r[pfn]++;
  return true;
}

/**
 * folio_try_get(): "add 1 unless 0" on the folio's count. `folio` is the head pfn the caller
 * derived; without a reference that proves nothing about the page it came from (spec §9a).
 */
export function folioTryGet(mem: Memory, folio: number): boolean {
  return getPageUnlessZero(mem, folio);
}

/**
 * folio_get_nontail_page() (v6.3+): get_page_unless_zero(page), the page then being its own
 * folio — tails have refcount 0, so success proves `pfn` is a head or base page. Returns
 * the folio pfn or -1.
 */
export function folioGetNontailPage(mem: Memory, pfn: number): number {
  return getPageUnlessZero(mem, pfn) ? pfn : -1;
}

/** folio_get(): unconditional +1; the caller must already hold a reference. */
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

/** get_page(): folio_get(page_folio(page)). */
export function getPage(mem: Memory, pfn: number): void {
  const c = mem.pages.compound[pfn];
  folioGet(mem, c < 0 ? pfn + c : pfn);
}

/**
 * folio_put_testzero(): -1 on the folio's count; true when it reached 0 (the caller frees).
 * A put on a zero count is an MmBug.
 */
export function folioPutTestzero(mem: Memory, folio: number): boolean {
  const r = mem.pages.refcount;
  if (mem.pages.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  if (r[folio] === 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', folio);
  return --r[folio] === 0;
}

/** folio_ref_freeze(folio, n): compare-and-exchange `n → 0`. */
export function folioRefFreeze(mem: Memory, folio: number, count: number): boolean {
  const p = mem.pages;
  if (p.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  if (p.refcount[folio] !== count) return false;
  p.refcount[folio] = 0;
  return true;
}

/** folio_ref_unfreeze(folio, n): set a frozen (zero) count to `n`. */
export function folioRefUnfreeze(mem: Memory, folio: number, count: number): void {
  const p = mem.pages;
  if (p.compound[folio] < 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_test_tail(folio))', folio);
  if (p.refcount[folio] !== 0) bug(mem, 'VM_BUG_ON_FOLIO(folio_ref_count(folio) != 0)', folio);
  if (count <= 0) bug(mem, `VM_BUG_ON(count <= 0): folio_ref_unfreeze(${count})`, folio);
  p.refcount[folio] = count;
}

/** page_ref_count(). */
export function pageRefCount(mem: Memory, pfn: number): number {
  return mem.pages.refcount[pfn];
}

/**
 * page_ref_inc(): raw +1 on a page's own count, for a caller that already holds a
 * reference (the kernel's helper checks nothing). A speculative walker must use a
 * get-unless-zero instead. Writing a tail page's count breaks invariant T0 (spec §1.3:
 * tail pages keep refcount 0, which is what makes a speculative get on a tail fail): mops
 * stops the machine with an MmBug naming the invariant.
 */
export function pageRefInc(mem: Memory, pfn: number): void {
  if (mem.pages.compound[pfn] < 0)
    bug(mem, 'invariant T0 broken: page_ref_inc on a tail page (tail refcount must stay 0)', pfn);
  mem.pages.refcount[pfn]++;
}

/** page_ref_dec(): raw -1 on a page's own count; a tail page or a zero count is an MmBug. */
export function pageRefDec(mem: Memory, pfn: number): void {
  if (mem.pages.compound[pfn] < 0)
    bug(mem, 'invariant T0 broken: page_ref_dec on a tail page (tail refcount must stay 0)', pfn);
  if (mem.pages.refcount[pfn] === 0) bug(mem, 'VM_BUG_ON_PAGE(page_ref_count(page) == 0)', pfn);
  mem.pages.refcount[pfn]--;
}

/**
 * split_folio() reduced to what PFN walkers observe: every page of the folio becomes an
 * order-0 folio of its own; the head keeps its references and each former tail gets one.
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
