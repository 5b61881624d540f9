/**
 * Rebuilding a real machine's free memory from its /proc files: the same number of free
 * blocks per zone, migrate type and order, and the same pageblock types, so compaction can
 * be studied on a fragmentation state taken from a real system.
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
import { WMARK } from '../memory/zone.js';
import type { ProfileName } from '../profile.js';
import { NODE_STAT_ITEMS, VM_EVENT_ITEMS, ZONE_STAT_ITEMS } from '../vmstat/items.js';
import { VMSTAT_ALIASES } from '../vmstat/releases.js';
import {
  type ParsedZoneinfo,
  parseBuddyinfo,
  parsePagetypeinfo,
  parseVmstat,
  parseZoneinfo,
  procParseError,
} from './parse.js';
import { rebuildZone, reservePages, type ZonePlan } from './rebuild_zone.js';
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
  /**
   * Keep page contents (default false: metadata only). Needed by plugins that store data in
   * pages, such as zsmalloc.
   */
  contents?: boolean;
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
  for (const row of free) for (let o = 0; o < NR_PAGE_ORDERS; o++) n += row[o] * 2 ** o;
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

/**
 * min_free_kbytes whose per-zone split gives zoneinfo's `min` watermarks (boost taken off),
 * found by running setup_per_zone_wmarks() ({@link setupWatermarks}, with the profile's rule
 * for ZONE_MOVABLE) on candidate values; the smallest that matches every zone with managed
 * pages. Undefined when zoneinfo lacks a `min`; when no value matches, the sum of the mins.
 */
function minFreeFromZoneinfo(mem: Memory, zi: ParsedZoneinfo): number | undefined {
  const zones = mem.node.zones.filter((z) => z.managedPages > 0);
  if (zones.length === 0) return undefined;
  const want: number[] = [];
  let sum = 0;
  let ownRule = 0;
  for (const z of zones) {
    const info = zi.zones.get(z.idx);
    if (info?.min === undefined) return undefined;
    const min = info.min - (info.boost ?? 0);
    want.push(min);
    sum += min;
    if (z.idx === ZONE.MOVABLE) ownRule = min;
  }
  // The zones sharing pages_min get floor(pages_min * managed / lowmem) each, so their mins
  // add up to between pages_min - zones and pages_min. A zone with a rule of its own (v6.17's
  // ZONE_MOVABLE) is in `sum` too, so the search starts that much lower.
  const kb = PAGE_SIZE >> 10;
  for (let pages = Math.max(0, sum - ownRule); pages <= sum + zones.length; pages++) {
    setupWatermarks(mem, pages * kb);
    if (zones.every((z, i) => z.watermark[WMARK.MIN] === want[i])) return pages * kb;
  }
  return sum * kb;
}

/**
 * Builds a machine (metadata only unless `options.contents`) whose free memory matches a
 * real machine's /proc files: per zone, migrate type and order the same number of free
 * blocks, and per zone the same number of pageblocks of each type. `src` is a directory
 * holding `buddyinfo` and `pagetypeinfo` (and optionally `zoneinfo` and `vmstat`), or their
 * texts.
 *
 * Method: the machine is created with the zones' spans, everything is allocated
 * (owner `'imported'`), and then free blocks are put back: order-10 blocks on aligned pairs
 * of whole pageblocks, order-9 blocks on whole pageblocks whose buddy block stays
 * allocated (or holds a free order-9 block of a type the profile never merges with it), and
 * smaller blocks packed into the remaining pageblocks of their type so that no two free
 * buddies of the same order could merge. Each pageblock gets the type of the free blocks
 * placed in it, and the rest of the types go to the other blocks so the "Number of blocks
 * type" counts match. pagetypeinfo prints back the migrate types (columns) of the file.
 * With zoneinfo, zone starts, spans, managed pages, watermarks and counters follow it
 * (present-but-unmanaged pages are marked reserved). mops keeps a zone's holes at the end of
 * its span, so a zone's present pages are set to cover exactly the pageblocks pagetypeinfo
 * counts: zoneinfo's `present` may differ (the sample's DMA has its holes in the first
 * pageblock; its Normal zone has offline sections).
 *
 * Throws MopsError('E_PROC_PARSE') naming the file and line for a malformed file or CMA
 * pages (mops has no CMA), and when the counts cannot be laid out (files that disagree, more
 * free blocks than pageblocks).
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
    contents: options.contents ?? false,
    ...(options.profile !== undefined ? { profile: options.profile } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.minFreeKbytes !== undefined ? { minFreeKbytes: options.minFreeKbytes } : {}),
  });
  const mem = machine.mem;
  mem.procMigratetypes = [...pti.types];
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
  machine.minFreeKbytes = mfk;
  if (zi)
    for (const plan of plans) {
      const boost = zi.zones.get(plan.idx)?.boost;
      if (boost) mem.node.zones[plan.idx].watermarkBoost = boost;
    }
  if (options.counters !== false) importCounters(mem, zi, vm);
  return machine;
}

/** The name an older release printed for a counter mops keeps (4.8's workingset_refault). */
const OLDER_NAME: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(VMSTAT_ALIASES).map(([older, now]) => [now, older]),
);

/**
 * The sum over zoneinfo's zones of a zone stat item mops keeps per node (4.8 printed
 * nr_slab_reclaimable, nr_kernel_stack, … per zone); undefined when no zone prints it.
 */
function zoneSum(zi: ParsedZoneinfo | undefined, name: string): number | undefined {
  let sum: number | undefined;
  for (const info of zi?.zones.values() ?? []) {
    const v = info.stats.get(name);
    if (v !== undefined) sum = (sum ?? 0) + v;
  }
  return sum;
}

/**
 * Copies vmstat's events and node stats and zoneinfo's zone stats into the machine; a
 * counter under the name an older release printed is read as the counter it became, and a
 * node counter that zoneinfo prints per zone (4.8) as the sum of its zones.
 */
function importCounters(
  mem: Memory,
  zi: ParsedZoneinfo | undefined,
  vm: Map<string, number> | undefined,
): void {
  const node = vm ?? zi?.nodeStats;
  NODE_STAT_ITEMS.forEach((name, i) => {
    const v = node?.get(name) ?? node?.get(OLDER_NAME[name]) ?? zoneSum(zi, name);
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
