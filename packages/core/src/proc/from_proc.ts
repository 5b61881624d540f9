/**
 * Rebuilding a real machine's free memory from its /proc files: the same number of free
 * blocks per zone, migrate type and order, and the same pageblock types, so compaction can
 * be studied on a fragmentation state taken from a real system.
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addToFreeList } from '../buddy/free_area.js';
import { defaultMinFreeKbytes, setupWatermarks } from '../buddy/init.js';
import { MopsError } from '../errors.js';
import { createMachine, type Machine } from '../machine.js';
import {
  MAX_MACHINE_BYTES,
  MAX_PAGE_ORDER,
  MIGRATE_TYPES,
  MIGRATETYPE_NAMES,
  NR_PAGE_ORDERS,
  PAGE_SIZE,
  pageblock_nr_pages,
  pageblock_order,
  ZONE,
  ZONE_NAMES,
} from '../memory/constants.js';
import type { ZoneSpan } from '../memory/layout.js';
import type { Memory } from '../memory/mem.js';
import type { Zone } from '../memory/zone.js';
import { OWNER_SHIFT, PG } from '../page/flags.js';
import type { ProfileName } from '../profile.js';
import { NODE_STAT_ITEMS, VM_EVENT_ITEMS, ZONE_STAT_ITEMS } from '../vmstat/items.js';
import {
  type ParsedZoneinfo,
  parseBuddyinfo,
  parsePagetypeinfo,
  parseVmstat,
  parseZoneinfo,
  procParseError,
} from './parse.js';
import { takeAllFree } from './take_all.js';

/** The /proc files {@link machineFromProc} reads, as text. */
export interface ProcTexts {
  /** /proc/buddyinfo (required). */
  readonly buddyinfo: string;
  /** /proc/pagetypeinfo (required). */
  readonly pagetypeinfo: string;
  /** /proc/zoneinfo: zone starts, spans, managed pages, watermarks and zone counters. */
  readonly zoneinfo?: string;
  /** /proc/vmstat: event and node counters. */
  readonly vmstat?: string;
}

/** Options of {@link machineFromProc}. */
export interface FromProcOptions {
  /** Protocol profile of the machine (default `'v6.3'`). */
  profile?: ProfileName;
  /** Seed of the machine (default 1). */
  seed?: number;
  /**
   * vm.min_free_kbytes. Default: the value that reproduces zoneinfo's `min` watermarks when
   * zoneinfo is given, else the kernel's default for the machine's size.
   */
  minFreeKbytes?: number;
  /**
   * Copy the counters of vmstat (events, node stats) and zoneinfo (zone stats, per-node
   * stats) into the machine (default true).
   */
  counters?: boolean;
}

/** Owner name of the pages that were allocated on the real machine. */
export const IMPORTED_OWNER = 'imported';

const FILES = ['buddyinfo', 'pagetypeinfo', 'zoneinfo', 'vmstat'] as const;

function loadTexts(src: string | URL | ProcTexts): ProcTexts {
  if (typeof src === 'object' && !(src instanceof URL)) {
    if (typeof src.buddyinfo !== 'string' || typeof src.pagetypeinfo !== 'string')
      throw new MopsError(
        'E_PROC_PARSE',
        'give the texts of buddyinfo and pagetypeinfo (zoneinfo and vmstat are optional)',
        'texts',
      );
    return src;
  }
  const dir = src instanceof URL ? fileURLToPath(src) : src;
  const out: Record<string, string> = {};
  for (const f of FILES) {
    const path = `${dir.replace(/\/+$/, '')}/${f}`;
    const required = f === 'buddyinfo' || f === 'pagetypeinfo';
    if (!existsSync(path)) {
      if (required)
        throw new MopsError(
          'E_PROC_PARSE',
          `${path}: no such file (buddyinfo and pagetypeinfo are required)`,
          f,
        );
      continue;
    }
    try {
      out[f] = readFileSync(path, 'utf8');
    } catch (e) {
      throw new MopsError('E_PROC_PARSE', `${path}: cannot read it (${(e as Error).message})`, f);
    }
  }
  return out as unknown as ProcTexts;
}

/** What one zone must look like after the import. */
interface ZonePlan {
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

const zname = (idx: number) => ZONE_NAMES[idx];

/**
 * Free counts per zone: pagetypeinfo's rows, checked against buddyinfo's totals. A
 * `>100000` entry is resolved from buddyinfo when it is the only one of its order.
 */
function reconcile(
  buddy: Map<number, number[]>,
  pti: ReturnType<typeof parsePagetypeinfo>,
): Map<number, { free: number[][]; blocks: number[] }> {
  const out = new Map<number, { free: number[][]; blocks: number[] }>();
  for (const z of pti.free.keys())
    if (!buddy.has(z))
      throw procParseError('pagetypeinfo', 0, `zone ${zname(z)} is not in buddyinfo`);
  for (const z of pti.blocks.keys())
    if (!buddy.has(z))
      throw procParseError(
        'pagetypeinfo',
        0,
        `zone ${zname(z)} has block counts but is not in buddyinfo`,
      );
  for (const [z, totals] of buddy) {
    const rows = pti.free.get(z);
    const blocks = pti.blocks.get(z);
    if (!rows)
      throw procParseError('pagetypeinfo', 0, `no free counts for zone ${zname(z)} of buddyinfo`);
    if (!blocks)
      throw procParseError('pagetypeinfo', 0, `no block counts for zone ${zname(z)} of buddyinfo`);
    const free: number[][] = [];
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) free.push(new Array<number>(NR_PAGE_ORDERS).fill(0));
    for (let o = 0; o < NR_PAGE_ORDERS; o++) {
      let known = 0;
      const over: number[] = [];
      for (const [mt, row] of rows) {
        if (row[o].overflow) over.push(mt);
        else {
          free[mt][o] = row[o].count;
          known += row[o].count;
        }
      }
      if (over.length === 0 && known !== totals[o])
        throw procParseError(
          'buddyinfo',
          0,
          `zone ${zname(z)} order ${o}: ${totals[o]} free blocks, but pagetypeinfo's types add up to ${known}; ` +
            'read both files at the same moment',
        );
      if (over.length === 1) {
        const rest = totals[o] - known;
        if (rest < 100000)
          throw procParseError(
            'pagetypeinfo',
            0,
            `zone ${zname(z)} order ${o}: ${MIGRATETYPE_NAMES[over[0]]} shows >100000 but buddyinfo leaves ${rest}`,
          );
        free[over[0]][o] = rest;
      }
      if (over.length > 1)
        throw procParseError(
          'pagetypeinfo',
          0,
          `zone ${zname(z)} order ${o}: several types show >100000; their counts cannot be recovered`,
        );
    }
    out.set(z, { free, blocks });
  }
  return out;
}

/** Pages of the free blocks of a zone. */
function freePagesOf(free: number[][]): number {
  let n = 0;
  for (const row of free) for (let o = 0; o < NR_PAGE_ORDERS; o++) n += row[o] << o;
  return n;
}

/**
 * Zone spans: from zoneinfo when given (start_pfn, spanned, managed), else laid out as on
 * x86-64 (DMA from pfn 1, DMA32 from 16 MiB, Normal from 4 GiB). `present` is chosen so
 * the zone has exactly the pageblocks pagetypeinfo counts; mops keeps holes at the end of a
 * span, so it may differ from zoneinfo's `present`.
 */
function planZones(
  counts: Map<number, { free: number[][]; blocks: number[] }>,
  zi: ParsedZoneinfo | undefined,
): ZonePlan[] {
  const plans: ZonePlan[] = [];
  let cursor = 0;
  for (const idx of [...counts.keys()].sort((a, b) => a - b)) {
    const { free, blocks } = counts.get(idx)!;
    const nrBlocks = blocks.reduce((a, b) => a + b, 0);
    const freePages = freePagesOf(free);
    const name = zname(idx);
    if (nrBlocks === 0)
      throw procParseError(
        'pagetypeinfo',
        0,
        `zone ${name} has no pageblocks but buddyinfo lists it`,
      );
    let startPfn: number;
    let spanned: number;
    let managed: number | undefined;
    const zz = zi?.zones.get(idx);
    if (zi) {
      if (!zz || zz.startPfn === undefined || zz.spanned === undefined)
        throw procParseError(
          'zoneinfo',
          0,
          `zone ${name} is populated in buddyinfo but zoneinfo gives no start_pfn/spanned for it`,
        );
      startPfn = zz.startPfn;
      spanned = zz.spanned;
      managed = zz.managed;
    } else {
      if (idx === ZONE.DMA) startPfn = 1;
      else {
        startPfn = Math.ceil(cursor / (1 << MAX_PAGE_ORDER)) * (1 << MAX_PAGE_ORDER);
        if (idx === ZONE.DMA32) startPfn = Math.max(startPfn, 4096);
        if (idx === ZONE.NORMAL && counts.has(ZONE.DMA32)) startPfn = Math.max(startPfn, 1 << 20);
      }
      spanned = (((startPfn >> pageblock_order) + nrBlocks) << pageblock_order) - startPfn;
    }
    if (startPfn < cursor)
      throw procParseError(
        'zoneinfo',
        0,
        `zone ${name} starts at pfn ${startPfn}, inside the zone before it`,
      );
    const blockEnd = ((startPfn >> pageblock_order) + nrBlocks) << pageblock_order;
    const present = Math.min(spanned, blockEnd - startPfn);
    if (Math.ceil(present / pageblock_nr_pages) !== nrBlocks)
      throw procParseError(
        'zoneinfo',
        0,
        `zone ${name} spans ${spanned} pages from pfn ${startPfn}, fewer than the ${nrBlocks} pageblocks pagetypeinfo counts`,
      );
    const m = Math.min(managed ?? present, present);
    if (freePages > m)
      throw procParseError(
        zi ? 'zoneinfo' : 'pagetypeinfo',
        0,
        `zone ${name}: ${freePages} free pages do not fit in ${m} managed pages`,
      );
    plans.push({ idx, free, blocks, nrBlocks, freePages, startPfn, spanned, present, managed: m });
    cursor = startPfn + spanned;
  }
  return plans;
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

/** Places the free blocks of one zone and sets its pageblock types. */
function rebuildZone(mem: Memory, zone: Zone, plan: ZonePlan): void {
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
  // or the two would have merged. Blocks whose buddy cannot be one go first.
  const single: Block[] = [];
  const paired: Block[] = [];
  for (const blk of blocks) {
    if (blk.type >= 0 || !blk.clean) continue;
    const mate = byIndex.get(blk.b ^ 1);
    if (mate?.clean && mate.type < 0) {
      if (!(blk.b & 1)) paired.push(blk);
    } else single.push(blk);
  }
  const pbCandidates = [...single, ...paired];
  let nextPb = 0;
  for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
    for (let i = 0; i < free[mt][pageblock_order]; i++) {
      const blk = pbCandidates[nextPb++];
      if (!blk) fail(`not enough whole pageblocks for the free order-9 blocks`);
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
  for (const blk of blocks) {
    if (blk.type < 0) fail('the pageblock counts do not add up');
    mem.setPageblockMigratetype(blk.b << pageblock_order, blk.type);
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
function reservePages(mem: Memory, zone: Zone, count: number): void {
  const p = mem.pages;
  const flags = (1 << PG.reserved) | (mem.owners.register('kernel') << OWNER_SHIFT);
  const end = zone.zoneStartPfn + zone.presentPages;
  for (let pfn = zone.zoneStartPfn; pfn < end && count > 0; pfn++) {
    if (p.refcount[pfn] !== 1 || p.type[pfn] !== -1) continue;
    p.flags[pfn] = flags;
    count--;
  }
}

/**
 * min_free_kbytes whose per-zone split (setup_per_zone_wmarks()) gives zoneinfo's `min`
 * watermarks, or undefined.
 */
function minFreeFromZoneinfo(mem: Memory, zi: ParsedZoneinfo): number | undefined {
  let lowmem = 0;
  for (const z of mem.node.zones) if (z.idx !== ZONE.MOVABLE) lowmem += z.managedPages;
  const zones = mem.node.zones.filter((z) => z.idx !== ZONE.MOVABLE && z.managedPages > 0);
  let sum = 0;
  for (const z of zones) {
    const info = zi.zones.get(z.idx);
    if (info?.min === undefined) return undefined;
    sum += info.min - (info.boost ?? 0);
  }
  if (lowmem === 0) return undefined;
  for (let pages = sum; pages <= sum + zones.length; pages++) {
    const ok = zones.every(
      (z) =>
        Math.floor((pages * z.managedPages) / lowmem) ===
        zi.zones.get(z.idx)!.min! - (zi.zones.get(z.idx)!.boost ?? 0),
    );
    if (ok) return pages * (PAGE_SIZE >> 10);
  }
  return sum * (PAGE_SIZE >> 10);
}

/**
 * Builds a metadata-only machine whose free memory matches a real machine's /proc files:
 * per zone, migrate type and order the same number of free blocks, and per zone the same
 * number of pageblocks of each type. `src` is a directory holding `buddyinfo` and
 * `pagetypeinfo` (and optionally `zoneinfo` and `vmstat`), or their texts.
 *
 * Method: the machine is created with the zones' spans, everything is allocated
 * (owner `'imported'`), and then free blocks are put back: order-10 blocks on aligned pairs
 * of whole pageblocks, order-9 blocks on whole pageblocks whose buddy block stays
 * allocated, and smaller blocks packed into the remaining pageblocks of their type so that
 * no two free buddies of the same order could merge. Each pageblock gets the type of the
 * free blocks placed in it, and the rest of the types go to the other blocks so the
 * "Number of blocks type" counts match. With zoneinfo, zone starts, spans, managed pages,
 * watermarks and counters follow it (present-but-unmanaged pages are marked reserved).
 * mops keeps a zone's holes at the end of its span, so a zone's present pages are set to
 * cover exactly the pageblocks pagetypeinfo counts: zoneinfo's `present` may differ (the
 * sample's DMA has its holes in the first pageblock; its Normal zone has offline sections).
 *
 * Throws MopsError('E_PROC_PARSE') naming the file and line for a malformed file, and when
 * the counts cannot be laid out (files that disagree, more free blocks than pageblocks).
 */
export function machineFromProc(
  src: string | URL | ProcTexts,
  options: FromProcOptions = {},
): Machine {
  const texts = loadTexts(src);
  const buddy = parseBuddyinfo(texts.buddyinfo);
  const pti = parsePagetypeinfo(texts.pagetypeinfo);
  const zi = texts.zoneinfo !== undefined ? parseZoneinfo(texts.zoneinfo) : undefined;
  const vm = texts.vmstat !== undefined ? parseVmstat(texts.vmstat) : undefined;
  const plans = planZones(reconcile(buddy, pti), zi);

  let maxEnd = 0;
  for (const p of plans) maxEnd = Math.max(maxEnd, p.startPfn + p.spanned);
  const nrPages = Math.ceil(maxEnd / pageblock_nr_pages) * pageblock_nr_pages;
  if (nrPages * PAGE_SIZE > MAX_MACHINE_BYTES)
    throw procParseError(
      zi ? 'zoneinfo' : 'pagetypeinfo',
      0,
      `the machine spans ${(nrPages * PAGE_SIZE) / 1024 ** 3} GiB of physical addresses; mops emulates at most 64 GiB`,
    );
  const spans: ZoneSpan[] = plans.map((p) => ({
    idx: p.idx,
    startPfn: p.startPfn,
    spanned: p.spanned,
    present: p.present,
  }));
  const machine = createMachine({
    memory: nrPages * PAGE_SIZE,
    zones: spans,
    contents: false,
    ...(options.profile !== undefined ? { profile: options.profile } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.minFreeKbytes !== undefined ? { minFreeKbytes: options.minFreeKbytes } : {}),
  });
  const mem = machine.mem;
  takeAllFree(machine, IMPORTED_OWNER);
  for (const plan of plans) {
    const zone = mem.node.zones[plan.idx];
    rebuildZone(mem, zone, plan);
    reservePages(mem, zone, zone.presentPages - plan.managed);
    zone.managedPages = plan.managed;
  }
  const mfk =
    options.minFreeKbytes ??
    (zi ? minFreeFromZoneinfo(mem, zi) : undefined) ??
    defaultMinFreeKbytes(mem);
  setupWatermarks(mem, mfk);
  machine.minFreeKbytes = mfk;
  if (zi)
    for (const plan of plans) {
      const boost = zi.zones.get(plan.idx)?.boost;
      if (boost) mem.node.zones[plan.idx].watermarkBoost = boost;
    }
  if (options.counters !== false) importCounters(mem, zi, vm);
  return machine;
}

/** Copies vmstat's events and node stats and zoneinfo's zone stats into the machine. */
function importCounters(
  mem: Memory,
  zi: ParsedZoneinfo | undefined,
  vm: Map<string, number> | undefined,
): void {
  const node = vm ?? zi?.nodeStats;
  if (node)
    NODE_STAT_ITEMS.forEach((name, i) => {
      const v = node.get(name);
      if (v !== undefined) mem.vmstat.node[i] = v;
    });
  if (vm)
    VM_EVENT_ITEMS.forEach((name, i) => {
      const v = vm.get(name);
      if (v !== undefined) mem.vmstat.events[i] = v;
    });
  if (zi)
    for (const [idx, info] of zi.zones) {
      const zone = mem.node.zones[idx];
      if (!zone.populated) continue;
      // nr_free_pages and nr_free_pages_blocks follow from the free lists.
      for (let i = 2; i < ZONE_STAT_ITEMS.length; i++) {
        const v = info.stats.get(ZONE_STAT_ITEMS[i]);
        if (v !== undefined) zone.stat[i] = v;
      }
    }
}
