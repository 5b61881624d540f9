/**
 * Page-level rules of the invariant checker that the pfn walk of `checkMemoryInvariants`
 * calls only for the pages they concern: list links, isolated, locked and head pages, free
 * blocks against their pageblocks (v6.17), and the v4.8 count of isolated pages. Each costs O(1) per page it is called for
 * (a compound head: O(its tails)), so the walk stays linear.
 * @module
 */

import { MAX_PAGE_ORDER, pageblock_nr_pages } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { page_has_movable_ops } from '../migrate/movable.js';
import { ISOLATED, LOCKED, PG } from '../page/flags.js';
import { NS } from '../vmstat/vmstat.js';
import { hexPfn } from './dump_page.js';

/** Where a rule reports a violation. */
export type AddViolation = (s: string) => void;

/**
 * A linked page (lru.next set): lru.prev is set too, and each neighbour, a page
 * or a list head (see `LruLists` for the encoding), links back to it (list_del's
 * CONFIG_DEBUG_LIST checks, __list_del_entry_valid).
 */
export function checkLinks(mem: Memory, pfn: number, add: AddViolation): void {
  const lists = mem.pages.lists;
  const n = lists.next[pfn];
  const pr = lists.prev[pfn];
  const self = pfn + 1;
  // A list head h is encoded -(h + 1); its own links are read through first() and last().
  const nextOk = n > 0 ? lists.prev[n - 1] === self : n < 0 && lists.last(-n - 1) === pfn;
  const prevOk = pr > 0 ? lists.next[pr - 1] === self : pr < 0 && lists.first(-pr - 1) === pfn;
  if (!nextOk)
    add(`pfn ${hexPfn(pfn)}: lru.next is ${n}, which does not link back to it (lru.prev ${pr})`);
  if (!prevOk)
    add(`pfn ${hexPfn(pfn)}: lru.prev is ${pr}, which does not link back to it (lru.next ${n})`);
}

/** The flags that call {@link checkRareFlags} from the walk: PG_isolated, PG_locked, PG_head. */
export const RARE_FLAGS = ISOLATED | LOCKED | (1 << PG.head);

/**
 * A page (not in a free block) with PG_isolated (PG_movable_ops_isolated in v6.17),
 * PG_locked or PG_head set (spec §11, §3.1, §4, §1.3).
 *
 * An isolated page holds the VM's reference, is not a tail page, and carries its movable
 * marker: v4.8–v6.3 the MOVABLE tag in `mapping` (which __ClearPageMovable keeps until the
 * page is freed), v6.17 PG_movable_ops and a movable page type. PG_locked is the head's
 * lock: a tail page never has it. A locked page may have refcount 0 (a frozen folio, spec
 * §9b). A head page has an order from 1 to MAX_PAGE_ORDER and heads its compound page
 * ({@link checkCompoundHead}).
 */
export function checkRareFlags(mem: Memory, pfn: number, add: AddViolation): void {
  const p = mem.pages;
  const f = p.flags[pfn];
  const c = p.compound[pfn];
  const tail = c < 0;
  if (f & ISOLATED) {
    if (p.refcount[pfn] < 1)
      add(`pfn ${hexPfn(pfn)}: isolated page has refcount ${p.refcount[pfn]} (the VM holds one)`);
    if (tail) add(`pfn ${hexPfn(pfn)}: tail page has the isolated flag`);
    else if (!page_has_movable_ops(mem, pfn))
      add(`pfn ${hexPfn(pfn)}: isolated page is not a movable page (no movable marker)`);
  }
  if (f & LOCKED && tail)
    add(`pfn ${hexPfn(pfn)}: tail page has PG_locked (the lock is the head's)`);
  if (f & (1 << PG.head) && !tail) {
    if (c <= 0 || c > MAX_PAGE_ORDER) add(`pfn ${hexPfn(pfn)}: head page with bad order ${c}`);
    else checkCompoundHead(mem, pfn, c, add);
  }
}

/**
 * A compound head of order `order` (1 ≤ order ≤ MAX_PAGE_ORDER): aligned to its order, and
 * every page after it up to head + 2^order - 1 is its tail (`compound` = -(offset)).
 */
export function checkCompoundHead(
  mem: Memory,
  head: number,
  order: number,
  add: AddViolation,
): void {
  const size = 1 << order;
  if (head & (size - 1)) add(`pfn ${hexPfn(head)}: compound head of order ${order} is misaligned`);
  if (head + size > mem.nrPages) {
    add(`pfn ${hexPfn(head)}: compound page of order ${order} runs past the last pfn`);
    return;
  }
  const compound = mem.pages.compound;
  for (let i = 1; i < size; i++)
    if (compound[head + i] !== -i)
      add(
        `pfn ${hexPfn(head + i)}: inside the order-${order} compound page at ${hexPfn(head)} but not its tail (compound ${compound[head + i]})`,
      );
}

/**
 * v6.17: a free block of `order` on the list of type `mt` has that type in every pageblock
 * it covers. Merging rewrites the buddy's pageblock type (`Profile.mergeRewritesBuddyType`)
 * and __add_to_free_list() warns when a block's list is not its pageblock's type.
 */
export function checkFreeBlockPageblocks(
  mem: Memory,
  pfn: number,
  order: number,
  mt: number,
  add: AddViolation,
): void {
  const end = pfn + (1 << order);
  for (let q = pfn; q < end; q += pageblock_nr_pages) {
    const pmt = mem.pageblockMigratetype(q);
    if (pmt !== mt)
      add(
        `pfn ${hexPfn(pfn)}: free block of order ${order} is on a type ${mt} list, its pageblock at ${hexPfn(q)} has type ${pmt}`,
      );
  }
}

/**
 * v4.8: nr_isolated_file counts exactly the pages compaction counted (acct_isolated) and
 * migrate_pages or putback_movable_pages has not subtracted yet (`Memory.countedIsolated`);
 * each of them is still held by the VM and still carries the MOVABLE tag.
 */
export function checkCountedIsolated(mem: Memory, add: AddViolation): void {
  const counted = mem.vmstat.node[NS.nr_isolated_file];
  if (counted !== mem.countedIsolated.size)
    add(
      `nr_isolated_file is ${counted}, ${mem.countedIsolated.size} isolated pages are counted in it`,
    );
  for (const pfn of mem.countedIsolated) {
    if (pfn < 0 || pfn >= mem.nrPages) {
      add(`pfn ${pfn}: counted in nr_isolated_file but not a pfn of the machine`);
      continue;
    }
    if (mem.pages.refcount[pfn] < 1)
      add(
        `pfn ${hexPfn(pfn)}: counted in nr_isolated_file with refcount ${mem.pages.refcount[pfn]}`,
      );
    if (!page_has_movable_ops(mem, pfn))
      add(`pfn ${hexPfn(pfn)}: counted in nr_isolated_file but has no MOVABLE tag`);
  }
}
