/**
 * Page flag, page type and compound-page primitives (include/linux/page-flags.h, mm.h).
 *
 * These are plain functions: a kernel function that runs among other tasks yields a
 * scheduling point before calling one. None sleeps, so they take the machine's memory
 * (`m.mem`), not a Kctx.
 * @module
 */

import { bug } from '../debug/dump_page.js';
import { MopsError } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { PAGE_TYPE_BASE, PG, pageTypeName } from './flags.js';

/**
 * PageFoo(page): test a flag bit.
 * @param mem the machine's memory
 * @param pfn the page (flags of a folio live in its head: pass the head pfn)
 * @param bit the bit number, a {@link PG} value (e.g. `PG.dirty`)
 * @returns whether the bit is set
 */
export function testPageFlag(mem: Memory, pfn: number, bit: number): boolean {
  return (mem.pages.flags[pfn] & (1 << bit)) !== 0;
}

/**
 * SetPageFoo(page): atomic set of a flag bit.
 * @param mem the machine's memory
 * @param pfn the page
 * @param bit the bit number, a {@link PG} value
 */
export function setPageFlag(mem: Memory, pfn: number, bit: number): void {
  mem.pages.flags[pfn] |= 1 << bit;
}

/**
 * ClearPageFoo(page): atomic clear of a flag bit.
 * @param mem the machine's memory
 * @param pfn the page
 * @param bit the bit number, a {@link PG} value
 */
export function clearPageFlag(mem: Memory, pfn: number, bit: number): void {
  mem.pages.flags[pfn] &= ~(1 << bit);
}

/**
 * TestSetPageFoo(page): atomic test-and-set.
 * @param mem the machine's memory
 * @param pfn the page
 * @param bit the bit number, a {@link PG} value
 * @returns whether the bit was set before
 */
export function testAndSetPageFlag(mem: Memory, pfn: number, bit: number): boolean {
  const f = mem.pages.flags[pfn];
  mem.pages.flags[pfn] = f | (1 << bit);
  return (f & (1 << bit)) !== 0;
}

/**
 * TestClearPageFoo(page): atomic test-and-clear.
 * @param mem the machine's memory
 * @param pfn the page
 * @param bit the bit number, a {@link PG} value
 * @returns whether the bit was set before
 */
export function testAndClearPageFlag(mem: Memory, pfn: number, bit: number): boolean {
  const f = mem.pages.flags[pfn];
  mem.pages.flags[pfn] = f & ~(1 << bit);
  return (f & (1 << bit)) !== 0;
}

/**
 * PageTail(): whether the page is a tail of a compound page.
 * @param mem the machine's memory
 * @param pfn the page
 * @returns true for a tail page
 */
export function PageTail(mem: Memory, pfn: number): boolean {
  return mem.pages.compound[pfn] < 0;
}

/**
 * PageHead(): whether the page heads a compound page.
 * @param mem the machine's memory
 * @param pfn the page
 * @returns true for a head page (PG_head)
 */
export function PageHead(mem: Memory, pfn: number): boolean {
  return (mem.pages.flags[pfn] & (1 << PG.head)) !== 0;
}

/**
 * compound_head(page) / page_folio(page): the head pfn. Without a reference on the folio
 * the answer may be stale by the time it is used (spec §9a).
 * @param mem the machine's memory
 * @param pfn the page
 * @returns the head pfn; `pfn` itself when it is not a tail
 */
export function compoundHead(mem: Memory, pfn: number): number {
  const c = mem.pages.compound[pfn];
  return c < 0 ? pfn + c : pfn;
}

/** page_folio(): the folio (head pfn) holding `pfn`. */
export const pageFolio = compoundHead;

/**
 * folio_order() / compound_order().
 * @param mem the machine's memory
 * @param pfn the head (or base) page
 * @returns log2 of the folio's pages; 0 for a base page
 */
export function folioOrder(mem: Memory, pfn: number): number {
  return (mem.pages.flags[pfn] & (1 << PG.head)) !== 0 ? mem.pages.compound[pfn] : 0;
}

/**
 * The page type byte of the `page_type` word.
 * @param mem the machine's memory
 * @param pfn the page
 * @returns the type (0xf0..0xfe, a {@link PGTY} value), or 0 when the word holds a mapcount
 */
export function pageType(mem: Memory, pfn: number): number {
  const top = mem.pages.type[pfn] >>> 24;
  return top >= PAGE_TYPE_BASE && top < 0xff ? top : 0;
}

/**
 * PageBuddy(), PageOffline(), PageZsmalloc() and the other `Page<Type>()` tests.
 * @param mem the machine's memory
 * @param pfn the page
 * @param pgty the type, a {@link PGTY} value
 * @returns whether the page has that type
 */
export function hasPageType(mem: Memory, pfn: number, pgty: number): boolean {
  return mem.pages.type[pfn] >>> 24 === pgty;
}

/**
 * __SetPage<Type>() (e.g. __SetPageOffline, __SetPageZsmalloc): the page must have no type
 * and no mapcount. In v6.17 a driver sets its type before {@link SetPageMovableOps}.
 * @param mem the machine's memory
 * @param pfn the page
 * @param pgty the type, a {@link PGTY} value
 * @throws {@link MmBug} when the page already has a type or a mapcount; the machine halts
 */
export function setPageType(mem: Memory, pfn: number, pgty: number): void {
  if (mem.pages.type[pfn] !== -1)
    bug(mem, 'VM_BUG_ON_PAGE(data_race(page->page_type) != UINT_MAX)', pfn);
  mem.pages.type[pfn] = pgty << 24;
}

/**
 * __ClearPage<Type>(): the page must have that type. In v6.17 the type of a page with
 * movable_ops is sticky until the page is freed (S25): clearing it is a MopsError.
 * @param mem the machine's memory
 * @param pfn the page
 * @param pgty the type it has, a {@link PGTY} value
 * @throws {@link MopsError} `E_PLUGIN` in v6.17 when the page has PG_movable_ops
 * @throws {@link MmBug} when the page does not have that type; the machine halts
 */
export function clearPageType(mem: Memory, pfn: number, pgty: number): void {
  const p = mem.pages;
  if (p.type[pfn] >>> 24 !== pgty) notOfType(mem, pfn, pgty);
  if (mem.profile.movableMarker === 'page_type' && p.flags[pfn] & (1 << PG.movable_ops))
    stickyType(pfn);
  p.type[pfn] = -1;
}

function notOfType(mem: Memory, pfn: number, pgty: number): never {
  bug(mem, `VM_BUG_ON_PAGE(!Page${pageTypeName(pgty)}(page))`, pfn);
}

function stickyType(pfn: number): never {
  throw new MopsError(
    'E_PLUGIN',
    `pfn 0x${pfn.toString(16)}: the page type of a movable_ops page cannot change until it is freed`,
    'pageType',
  );
}

/**
 * page_mapcount() of a base page.
 * @param mem the machine's memory
 * @param pfn the page
 * @returns its mapcount; 0 for typed pages
 */
export function pageMapcount(mem: Memory, pfn: number): number {
  const w = mem.pages.type[pfn];
  return w >>> 24 >= PAGE_TYPE_BASE ? 0 : w + 1;
}
