/**
 * Page flag, page type and compound-page primitives (include/linux/page-flags.h, mm.h).
 *
 * These are plain functions: a kernel function that runs among other tasks yields a
 * scheduling point before calling one.
 * @module
 */

import { bug } from '../debug/dump_page.js';
import { MopsError } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { PAGE_TYPE_BASE, PG, pageTypeName } from './flags.js';

/** PageFoo(page): test a flag bit. */
export function testPageFlag(mem: Memory, pfn: number, bit: number): boolean {
  return (mem.pages.flags[pfn] & (1 << bit)) !== 0;
}

/** SetPageFoo(page): atomic set of a flag bit. */
export function setPageFlag(mem: Memory, pfn: number, bit: number): void {
  mem.pages.flags[pfn] |= 1 << bit;
}

/** ClearPageFoo(page): atomic clear of a flag bit. */
export function clearPageFlag(mem: Memory, pfn: number, bit: number): void {
  mem.pages.flags[pfn] &= ~(1 << bit);
}

/** TestSetPageFoo(page): atomic test-and-set; returns the old value. */
export function testAndSetPageFlag(mem: Memory, pfn: number, bit: number): boolean {
  const f = mem.pages.flags[pfn];
  mem.pages.flags[pfn] = f | (1 << bit);
  return (f & (1 << bit)) !== 0;
}

/** TestClearPageFoo(page): atomic test-and-clear; returns the old value. */
export function testAndClearPageFlag(mem: Memory, pfn: number, bit: number): boolean {
  const f = mem.pages.flags[pfn];
  mem.pages.flags[pfn] = f & ~(1 << bit);
  return (f & (1 << bit)) !== 0;
}

/** PageTail(). */
export function PageTail(mem: Memory, pfn: number): boolean {
  return mem.pages.compound[pfn] < 0;
}

/** PageHead(). */
export function PageHead(mem: Memory, pfn: number): boolean {
  return (mem.pages.flags[pfn] & (1 << PG.head)) !== 0;
}

/** compound_head(page) / page_folio(page): the head pfn (the page itself if not a tail). */
export function compoundHead(mem: Memory, pfn: number): number {
  const c = mem.pages.compound[pfn];
  return c < 0 ? pfn + c : pfn;
}

/** page_folio(): the folio (head pfn) holding `pfn`. */
export const pageFolio = compoundHead;

/** folio_order() / compound_order(): 0 for a base page. */
export function folioOrder(mem: Memory, pfn: number): number {
  return (mem.pages.flags[pfn] & (1 << PG.head)) !== 0 ? mem.pages.compound[pfn] : 0;
}

/** The page type byte (0xf0..0xfe), or 0 when the word holds a mapcount. */
export function pageType(mem: Memory, pfn: number): number {
  const top = mem.pages.type[pfn] >>> 24;
  return top >= PAGE_TYPE_BASE && top < 0xff ? top : 0;
}

/** PageBuddy() and the other `Page<Type>()` tests. */
export function hasPageType(mem: Memory, pfn: number, pgty: number): boolean {
  return mem.pages.type[pfn] >>> 24 === pgty;
}

/** __SetPage<Type>(): the page must have no type and no mapcount. */
export function setPageType(mem: Memory, pfn: number, pgty: number): void {
  if (mem.pages.type[pfn] !== -1)
    bug(mem, 'VM_BUG_ON_PAGE(data_race(page->page_type) != UINT_MAX)', pfn);
  mem.pages.type[pfn] = pgty << 24;
}

/**
 * __ClearPage<Type>(): the page must have that type. In v6.17 the type of a page with
 * movable_ops is sticky until the page is freed (S25): clearing it is a MopsError.
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

/** page_mapcount() of a base page (0 for typed pages). */
export function pageMapcount(mem: Memory, pfn: number): number {
  const w = mem.pages.type[pfn];
  return w >>> 24 >= PAGE_TYPE_BASE ? 0 : w + 1;
}
