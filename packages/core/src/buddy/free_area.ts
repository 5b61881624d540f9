/**
 * Free lists of the buddy allocator (mm/page_alloc.c): the first page of a free block has
 * the Buddy page type, its order in `private`, and the free list it sits on in the low bits
 * of its page-type word.
 * @module
 */

import { MIGRATE, MIGRATE_TYPES } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { PGTY } from '../page/flags.js';

const BUDDY_WORD = PGTY.buddy << 24;
const MIGRATE_ISOLATE = MIGRATE.ISOLATE;

/**
 * page_is_buddy(): `pfn` starts a free block of exactly `order`.
 * @param mem the machine's memory
 * @param pfn the page
 * @param order the block order asked about
 * @returns true for the first page of a free block of that order
 */
export function pageIsBuddy(mem: Memory, pfn: number, order: number): boolean {
  return mem.pages.type[pfn] >>> 24 === PGTY.buddy && mem.pages.priv[pfn] === order;
}

/**
 * PageBuddy(): the page starts a free block (of any order) in the buddy allocator.
 * @param mem the machine's memory
 * @param pfn the page
 * @returns true for the first page of a free block
 */
export function PageBuddy(mem: Memory, pfn: number): boolean {
  return mem.pages.type[pfn] >>> 24 === PGTY.buddy;
}

/** buddy_order(): order of the free block starting at `pfn`. */
export function buddyOrder(mem: Memory, pfn: number): number {
  return mem.pages.priv[pfn];
}

/** The migrate type of the free list a free block sits on. */
export function freeListType(mem: Memory, pfn: number): number {
  return mem.pages.type[pfn] & 0xff;
}

/**
 * __add_to_free_list(): marks the block free and links it at the head or tail. NR_FREE_PAGES
 * grows unless the list is MIGRATE_ISOLATE's (account_freepages(); before 6.10
 * __mod_zone_freepage_state() was skipped for isolate the same way).
 */
export function addToFreeList(
  mem: Memory,
  zone: Zone,
  pfn: number,
  order: number,
  mt: number,
  tail: boolean,
): void {
  const p = mem.pages;
  p.type[pfn] = BUDDY_WORD | mt;
  p.priv[pfn] = order;
  const i = order * MIGRATE_TYPES + mt;
  if (tail) p.lists.addTail(zone.freeList[i], pfn);
  else p.lists.addHead(zone.freeList[i], pfn);
  zone.nrFreeList[i]++;
  zone.nrFree[order]++;
  if (mt !== MIGRATE_ISOLATE) zone.nrFreePages += 1 << order;
}

/**
 * del_page_from_free_list(): unlinks a free block and clears its Buddy type; NR_FREE_PAGES
 * shrinks unless the block was on a MIGRATE_ISOLATE list.
 */
export function delFromFreeList(mem: Memory, zone: Zone, pfn: number): void {
  const p = mem.pages;
  const order = p.priv[pfn];
  const mt = p.type[pfn] & 0xff;
  p.lists.del(pfn);
  p.type[pfn] = -1;
  p.priv[pfn] = 0;
  const i = order * MIGRATE_TYPES + mt;
  zone.nrFreeList[i]--;
  zone.nrFree[order]--;
  if (mt !== MIGRATE_ISOLATE) zone.nrFreePages -= 1 << order;
}

/**
 * move_to_free_list(): moves a free block to another type's list, at the tail (6.x,
 * list_move_tail) or, for v4.8's move_freepages() (list_move), the head.
 */
export function moveToFreeList(mem: Memory, zone: Zone, pfn: number, mt: number): void {
  const order = mem.pages.priv[pfn];
  delFromFreeList(mem, zone, pfn);
  addToFreeList(mem, zone, pfn, order, mt, mem.profile.moveFreepagesTail);
}

/** get_page_from_free_area(): first block of a list, or -1. */
export function firstFree(mem: Memory, zone: Zone, order: number, mt: number): number {
  return mem.pages.lists.first(zone.freeList[order * MIGRATE_TYPES + mt]);
}
