/**
 * The invariant checker (DESIGN decision 8): every pfn is in exactly one state, the free
 * lists agree with the page metadata and the counters, tail pages have refcount 0, and
 * every plugin's own checker passes. "Nothing lost" means this checker passes.
 * @module
 */

import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { PAGEFLAGS_MASK, PG, PGTY } from '../page/flags.js';
import { hexPfn } from './dump_page.js';

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

/** Checks the memory-level invariants (buddy, compound pages, counters). */
export function checkMemoryInvariants(mem: Memory): string[] {
  const out: string[] = [];
  const add = (s: string): void => {
    if (out.length < MAX_REPORTED) out.push(s);
  };
  const p = mem.pages;
  const nrZoneFree = new Map<number, number>();
  let freeBlocks = 0;
  for (let pfn = 0; pfn < mem.nrPages; ) {
    const word = p.type[pfn];
    if (word >>> 24 === PGTY.buddy) {
      const order = p.priv[pfn];
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
        if (p.refcount[q] !== 0) add(`pfn ${hexPfn(q)}: free page has refcount ${p.refcount[q]}`);
        if (p.flags[q] & PAGEFLAGS_MASK & ~(1 << PG.hwpoison))
          add(
            `pfn ${hexPfn(q)}: free page has flags 0x${(p.flags[q] & PAGEFLAGS_MASK).toString(16)}`,
          );
        if (p.compound[q] !== 0) add(`pfn ${hexPfn(q)}: free page is part of a compound page`);
        if (i > 0 && p.type[q] !== -1)
          add(`pfn ${hexPfn(q)}: page inside a free block has a page type`);
        if (p.mapping[q] !== 0) add(`pfn ${hexPfn(q)}: free page has a mapping`);
      }
      const buddy = pfn ^ (1 << order);
      if (
        order < MAX_PAGE_ORDER &&
        zone.spans(buddy) &&
        p.type[buddy] >>> 24 === PGTY.buddy &&
        p.priv[buddy] === order
      ) {
        const a = mem.pageblockMigratetype(pfn);
        const b = mem.pageblockMigratetype(buddy);
        const unmergeable =
          order >= pageblock_order && a !== b && (a >= MIGRATE_PCPTYPES || b >= MIGRATE_PCPTYPES);
        if (!unmergeable)
          add(
            `pfn ${hexPfn(pfn)}: free block of order ${order} and its free buddy ${hexPfn(buddy)} were not merged`,
          );
      }
      pfn += 1 << order;
      continue;
    }
    const c = p.compound[pfn];
    if (c < 0) {
      const head = pfn + c;
      if (
        head < 0 ||
        !(p.flags[head] & (1 << PG.head)) ||
        p.compound[head] <= 0 ||
        pfn >= head + (1 << p.compound[head])
      )
        add(`pfn ${hexPfn(pfn)}: tail page whose head ${hexPfn(head)} does not cover it`);
      if (p.refcount[pfn] !== 0)
        add(`pfn ${hexPfn(pfn)}: tail page has refcount ${p.refcount[pfn]} (must be 0)`);
    } else {
      if (p.refcount[pfn] < 0) add(`pfn ${hexPfn(pfn)}: negative refcount ${p.refcount[pfn]}`);
      if (p.flags[pfn] & (1 << PG.head) && (c <= 0 || c > MAX_PAGE_ORDER))
        add(`pfn ${hexPfn(pfn)}: head page with bad order ${c}`);
      if (p.refcount[pfn] > 0 && p.ownerOf(pfn) === 0)
        add(`pfn ${hexPfn(pfn)}: allocated page has no owner`);
    }
    pfn++;
  }
  let listed = 0;
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
  }
  if (listed !== freeBlocks)
    add(`${freeBlocks} free blocks are marked Buddy, free lists hold ${listed}`);
  return out;
}
