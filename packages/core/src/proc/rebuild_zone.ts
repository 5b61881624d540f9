/**
 * Laying out one zone to a {@link ZonePlan}: pageblocks assigned a migrate type and a role,
 * free blocks placed so none of them can merge, and the rest of the zone allocated.
 * @module
 */

import { addToFreeList } from '../buddy/free_area.js';
import { mergeGroup } from '../buddy/free_page.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_TYPES,
  MIGRATETYPE_NAMES,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { OWNER_SHIFT, PG } from '../page/flags.js';
import { procParseError } from './parse.js';

/** What one zone must look like after the import. */
export interface ZonePlan {
  readonly idx: number;
  /** Free blocks by migrate type, then order. */
  readonly free: number[][];
  /** Pageblocks by migrate type. */
  readonly blocks: number[];
  readonly nrBlocks: number;
  readonly freePages: number;
  startPfn: number;
  spanned: number;
  present: number;
  managed: number;
}

/** A pageblock of a zone being rebuilt. */
interface Block {
  /** Pageblock index (pfn >> pageblock_order). */
  readonly b: number;
  /** First pfn of the zone inside the block. */
  readonly lo: number;
  /** One past the last present pfn of the zone inside the block. */
  readonly hi: number;
  /** The whole block is in the zone. */
  readonly clean: boolean;
  /** Assigned migrate type, -1 while unassigned. */
  type: number;
  /** What the block holds: an order-10 half, an order-9 block, small blocks. */
  role: 'max' | 'pb' | 'small' | 'none';
}

/**
 * Minimal counts of "mixed" (partly allocated) buddy regions per order needed to hold the
 * small free blocks `n[0..8]`: `need[k]` regions of order k. A mixed region of order k may
 * hold one free block of order k-1 and must keep its other half mixed or allocated, so the
 * two halves can never be merged buddies. `need[9]` is the number of whole pageblocks.
 */
function mixedNeeds(n: readonly number[]): number[] {
  const need = new Array<number>(pageblock_order + 1).fill(0);
  need[1] = n[0];
  for (let k = 2; k <= pageblock_order; k++)
    need[k] = Math.max(n[k - 1], Math.ceil((n[k - 1] + need[k - 1]) / 2));
  return need;
}

/**
 * Up to `want` pairs of free order-9 blocks of types that never merge, taken from the
 * counts `left` (by type, decremented): each time one block of the largest group with one
 * of the next largest.
 */
function unmergeablePairs(mem: Memory, left: number[], want: number): [number, number][] {
  const out: [number, number][] = [];
  while (out.length < want) {
    const groups = new Map<number, number>();
    for (let mt = 0; mt < MIGRATE_TYPES; mt++)
      if (left[mt] > 0) {
        const g = mergeGroup(mem, mt);
        groups.set(g, (groups.get(g) ?? 0) + left[mt]);
      }
    const [g1, g2] = [...groups].sort((a, b) => b[1] - a[1]).map(([g]) => g);
    if (g2 === undefined) break;
    const pick = (g: number): number => {
      let best = -1;
      for (let mt = 0; mt < MIGRATE_TYPES; mt++)
        if (left[mt] > 0 && mergeGroup(mem, mt) === g && (best < 0 || left[mt] > left[best]))
          best = mt;
      left[best]--;
      return best;
    };
    out.push([pick(g1), pick(g2)]);
  }
  return out;
}

/** Places the free blocks of one zone and sets its pageblock types. */
export function rebuildZone(mem: Memory, zone: Zone, plan: ZonePlan): void {
  const name = zone.name;
  const fail = (msg: string): never => {
    throw procParseError('pagetypeinfo', 0, `zone ${name}: ${msg}`);
  };
  const start = zone.zoneStartPfn;
  const end = start + zone.presentPages;
  const blocks: Block[] = [];
  const byIndex = new Map<number, Block>();
  for (let pfn = start; pfn < end; pfn += pageblock_nr_pages) {
    const b = pfn >> pageblock_order;
    const base = b << pageblock_order;
    const lo = Math.max(base, start);
    const hi = Math.min(base + pageblock_nr_pages, end);
    const blk: Block = {
      b,
      lo,
      hi,
      clean: lo === base && hi === base + pageblock_nr_pages,
      type: -1,
      role: 'none',
    };
    blocks.push(blk);
    byIndex.set(b, blk);
  }
  if (blocks.length !== plan.nrBlocks)
    fail(`has ${blocks.length} pageblocks, pagetypeinfo counts ${plan.nrBlocks}`);
  const free = plan.free.map((row) => row.slice());
  const quota = plan.blocks.slice();

  for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
    const big = 2 * free[mt][MAX_PAGE_ORDER] + free[mt][pageblock_order];
    if (big > quota[mt])
      fail(
        `${quota[mt]} ${MIGRATETYPE_NAMES[mt]} pageblocks cannot hold ${free[mt][MAX_PAGE_ORDER]} free order-10 and ` +
          `${free[mt][pageblock_order]} order-9 ${MIGRATETYPE_NAMES[mt]} blocks`,
      );
  }
  const assign = (blk: Block, mt: number, role: Block['role']): void => {
    blk.type = mt;
    blk.role = role;
    quota[mt]--;
  };

  // Order-10 blocks need two whole, aligned pageblocks.
  const pairs: [Block, Block][] = [];
  for (const blk of blocks) {
    if (blk.b & 1 || !blk.clean) continue;
    const mate = byIndex.get(blk.b + 1);
    if (mate?.clean) pairs.push([blk, mate]);
  }
  let nextPair = 0;
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
    for (let i = 0; i < free[mt][MAX_PAGE_ORDER]; i++) {
      const pair = pairs[nextPair++];
      if (!pair) fail(`not enough aligned pairs of whole pageblocks for the free order-10 blocks`);
      assign(pair[0], mt, 'max');
      assign(pair[1], mt, 'max');
      placeFree(mem, zone, pair[0].b << pageblock_order, MAX_PAGE_ORDER, mt);
    }
  }

  // Order-9 blocks: whole pageblocks whose buddy block is not also a free order-9 block,
  // or the two would have merged, unless their types never merge (__free_one_page() stops
  // at pageblock order between types migratetype_is_mergeable() keeps apart). Blocks whose
  // buddy cannot be one go first; both halves of a pair are used only when needed.
  const single: Block[] = [];
  const paired: [Block, Block][] = [];
  for (const blk of blocks) {
    if (blk.type >= 0 || !blk.clean) continue;
    const mate = byIndex.get(blk.b ^ 1);
    if (mate?.clean && mate.type < 0) {
      if (!(blk.b & 1)) paired.push([blk, mate]);
    } else single.push(blk);
  }
  const left9 = free.map((row) => row[pageblock_order]);
  const total9 = left9.reduce((a, b) => a + b, 0);
  const doubles = Math.max(0, total9 - single.length - paired.length);
  const twins = unmergeablePairs(mem, left9, doubles);
  if (twins.length < doubles || doubles > paired.length)
    fail(
      `${total9} free order-9 blocks need whole pageblocks whose buddy pageblock holds no free ` +
        `order-9 block they would merge with; its ${single.length + 2 * paired.length} whole ` +
        `pageblocks left (after the order-10 blocks) hold at most ` +
        `${single.length + paired.length + Math.min(paired.length, twins.length)} of them`,
    );
  twins.forEach(([a, b], i) => {
    const [even, odd] = paired[i];
    assign(even, a, 'pb');
    placeFree(mem, zone, even.b << pageblock_order, pageblock_order, a);
    assign(odd, b, 'pb');
    placeFree(mem, zone, odd.b << pageblock_order, pageblock_order, b);
  });
  const pbCandidates = [...single, ...paired.slice(twins.length).map((pair) => pair[0])];
  let nextPb = 0;
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
    for (let i = 0; i < left9[mt]; i++) {
      const blk = pbCandidates[nextPb++];
      assign(blk, mt, 'pb');
      placeFree(mem, zone, blk.b << pageblock_order, pageblock_order, mt);
    }
  }

  // Smaller blocks share pageblocks of their type. Each type first gets the whole blocks it
  // needs at least, then the rest of its quota.
  const rest = blocks.filter((blk) => blk.type < 0);
  const needs = free.map((row) => mixedNeeds(row));
  const order = [...Array(MIGRATE_TYPES).keys()].sort(
    (a, b) => needs[b][pageblock_order] - needs[a][pageblock_order],
  );
  const hosts: Block[][] = Array.from({ length: MIGRATE_TYPES }, () => []);
  const cleanRest = rest.filter((blk) => blk.clean);
  let nextClean = 0;
  for (const mt of order) {
    const want = Math.min(needs[mt][pageblock_order], quota[mt]);
    for (let i = 0; i < want && nextClean < cleanRest.length; i++) {
      const blk = cleanRest[nextClean++];
      assign(blk, mt, 'small');
      hosts[mt].push(blk);
    }
  }
  let r = 0;
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
    while (quota[mt] > 0) {
      while (r < rest.length && rest[r].type >= 0) r++;
      if (r >= rest.length) fail('the pageblock counts do not add up');
      assign(rest[r], mt, 'small');
      hosts[mt].push(rest[r]);
    }
  }
  // The reserve follows the sample's HighAtomic blocks (nr_reserved_highatomic is not in
  // /proc; every reservation adds one block's pages).
  zone.nrReservedHighatomic = 0;
  for (const blk of blocks) {
    if (blk.type < 0) fail('the pageblock counts do not add up');
    mem.setPageblockMigratetype(blk.b << pageblock_order, blk.type);
    if (blk.type === MIGRATE.HIGHATOMIC) zone.nrReservedHighatomic += pageblock_nr_pages;
  }

  for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
    if (hosts[mt].length === 0) {
      if (free[mt].slice(0, pageblock_order).some((n) => n > 0))
        fail(`no ${MIGRATETYPE_NAMES[mt]} pageblock left for its free blocks below order 9`);
      continue;
    }
    placeSmall(mem, zone, hosts[mt], free[mt], needs[mt], byIndex, mt, fail);
  }
}

/**
 * Places the free blocks of order 0..8 of one migrate type in its pageblocks, level by
 * level from order 9 down: each partly allocated region frees at most one of its halves,
 * so no free block ever has a free buddy of the same order.
 */
function placeSmall(
  mem: Memory,
  zone: Zone,
  hosts: readonly Block[],
  n: number[],
  need: readonly number[],
  byIndex: Map<number, Block>,
  mt: number,
  fail: (msg: string) => never,
): void {
  const usable = (pfn: number, order: number): number => {
    const blk = byIndex.get(pfn >> pageblock_order)!;
    return Math.max(0, Math.min(pfn + (1 << order), blk.hi) - Math.max(pfn, blk.lo));
  };
  let nodes: number[] = hosts.map((blk) => blk.b << pageblock_order);
  for (let k = pageblock_order; k >= 1; k--) {
    const j = k - 1;
    let left = 0;
    for (let o = 0; o <= j; o++) left += n[o];
    if (left === 0) break;
    const size = 1 << j;
    const freed = new Uint8Array(nodes.length);
    const total = n[j];
    for (let i = 0; i < nodes.length && n[j] > 0; i++) {
      const c0 = nodes[i];
      const c1 = c0 + size;
      if (usable(c1, j) === size) freed[i] = 2;
      else if (usable(c0, j) === size) freed[i] = 1;
      else continue;
      placeFree(mem, zone, freed[i] === 2 ? c1 : c0, j, mt);
      n[j]--;
    }
    if (n[j] > 0)
      fail(
        `${n[j]} of the ${total} free order-${j} ${MIGRATETYPE_NAMES[mt]} blocks do not fit in its ` +
          `${hosts.length} pageblocks (beside its larger free blocks)`,
      );
    if (j === 0) break;
    const next: number[] = [];
    let clean = 0;
    for (let i = 0; i < nodes.length; i++) {
      for (let h = 0; h < 2; h++) {
        if (freed[i] === h + 1) continue;
        const c = nodes[i] + h * size;
        const u = usable(c, j);
        if (u === 0) continue;
        if (u < size) next.push(c);
        else if (clean < need[j]) {
          next.push(c);
          clean++;
        }
      }
    }
    nodes = next;
  }
}

/** Turns an allocated range back into one free block on the `mt` list. */
function placeFree(mem: Memory, zone: Zone, pfn: number, order: number, mt: number): void {
  const p = mem.pages;
  const end = pfn + (1 << order);
  p.refcount.fill(0, pfn, end);
  p.flags.fill(0, pfn, end);
  addToFreeList(mem, zone, pfn, order, mt, true);
}

/** Marks `count` allocated pages of the zone reserved (present but not managed). */
export function reservePages(mem: Memory, zone: Zone, count: number): void {
  const p = mem.pages;
  const flags = (1 << PG.reserved) | (mem.owners.register('kernel') << OWNER_SHIFT);
  const end = zone.zoneStartPfn + zone.presentPages;
  for (let pfn = zone.zoneStartPfn; pfn < end && count > 0; pfn++) {
    if (p.refcount[pfn] !== 1 || p.type[pfn] !== -1) continue;
    p.flags[pfn] = flags;
    count--;
  }
}
