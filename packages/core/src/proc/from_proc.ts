/**
 * Rebuilding a real machine's free memory from its /proc files: the same number of free
 * blocks per zone, migrate type and order, and the same pageblock types, so compaction can
 * be studied on a fragmentation state taken from a real system. The allocated pages are
 * unmovable unless the caller asks for those of MIGRATE_MOVABLE pageblocks to be movable.
 * @module
 */

import { defaultMinFreeKbytes, setupWatermarks } from '../buddy/init.js';
import { createMachine, type Machine } from '../machine.js';
import {
  MAX_MACHINE_BYTES,
  MAX_PAGE_ORDER,
  MIGRATE_TYPES,
  MIGRATETYPE_NAMES,
  NR_PAGE_ORDERS,
  PAGE_SIZE,
  pageblock_nr_pages,
  ZONE,
  ZONE_NAMES,
} from '../memory/constants.js';
import type { ZoneSpan } from '../memory/layout.js';
import type { Memory } from '../memory/mem.js';
import { WMARK, type Zone } from '../memory/zone.js';
import { NODE_STAT_ITEMS, VM_EVENT_ITEMS, ZONE_STAT_ITEMS } from '../vmstat/items.js';
import { VMSTAT_ALIASES } from '../vmstat/releases.js';
import {
  checkFromProcOptions,
  type FromProcOptions,
  loadTexts,
  type ProcTexts,
} from './from_proc_args.js';
import { fromProcNotes } from './from_proc_notes.js';
import { importMovable } from './import_movable.js';
import {
  type ParsedPagetypeinfo,
  type ParsedZoneinfo,
  parsePagetypeinfo,
  parseVmstat,
  parseZoneinfo,
  procParseError,
  type ReadBuddyinfo,
  readBuddyinfo,
} from './parse.js';
import { exactCount } from './parse_util.js';
import { rebuildZone, reservePages, type ZonePlan } from './rebuild_zone.js';
import { takeAllFree } from './take_all.js';

export type { FromProcOptions, ProcTexts } from './from_proc_args.js';

/** Owner name of the pages that were allocated on the real machine. */
export const IMPORTED_OWNER = 'imported';

const zname = (idx: number) => ZONE_NAMES[idx];

/** The line of zone `z`'s free-count row of type `mt` in pagetypeinfo (0 if unknown). */
function freeLine(pti: ParsedPagetypeinfo, z: number, mt?: number): number {
  const rows = pti.lines?.free.get(z);
  if (!rows) return 0;
  return (mt === undefined ? Math.min(...rows.values()) : rows.get(mt)) ?? 0;
}

/**
 * Free counts per zone: pagetypeinfo's rows, checked against buddyinfo's totals. A
 * `>100000` entry is resolved from buddyinfo when it is the only one of its order.
 */
function reconcile(
  buddy: ReadBuddyinfo,
  pti: ParsedPagetypeinfo,
): Map<number, { free: number[][]; blocks: number[] }> {
  const out = new Map<number, { free: number[][]; blocks: number[] }>();
  for (const z of pti.free.keys())
    if (!buddy.free.has(z))
      throw procParseError(
        'pagetypeinfo',
        freeLine(pti, z),
        `zone ${zname(z)} is not in buddyinfo`,
      );
  for (const z of pti.blocks.keys())
    if (!buddy.free.has(z))
      throw procParseError(
        'pagetypeinfo',
        pti.lines?.blocks.get(z) ?? 0,
        `zone ${zname(z)} has block counts but is not in buddyinfo`,
      );
  for (const [z, totals] of buddy.free) {
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
          buddy.lines.get(z) ?? 0,
          `zone ${zname(z)} order ${o}: ${totals[o]} free blocks, but pagetypeinfo's types add up to ${exactCount(known)}; ` +
            'read both files at the same moment',
        );
      if (over.length === 1) {
        const rest = totals[o] - known;
        if (rest < 100000)
          throw procParseError(
            'pagetypeinfo',
            freeLine(pti, z, over[0]),
            `zone ${zname(z)} order ${o}: ${MIGRATETYPE_NAMES[over[0]]} shows >100000, but buddyinfo's ${totals[o]} free blocks ${
              rest < 0 ? `are fewer than the other types' ${exactCount(known)}` : `leave it ${rest}`
            }`,
          );
        free[over[0]][o] = rest;
      }
      if (over.length > 1)
        throw procParseError(
          'pagetypeinfo',
          freeLine(pti, z, over[1]),
          `zone ${zname(z)} order ${o}: ${over.map((mt) => MIGRATETYPE_NAMES[mt]).join(' and ')} show >100000; their counts cannot be recovered`,
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
 * The first pfn of the pageblock holding `pfn`. Division, not `>>`/`<<`: those work on 32
 * bits and turn a pfn of 2^32 or a span of 2^22 pageblocks into nonsense.
 */
const blockFloor = (pfn: number) => Math.floor(pfn / pageblock_nr_pages) * pageblock_nr_pages;

/** The pfns mops can emulate: 64 GiB of 4 KiB pages. */
const MAX_PFNS = MAX_MACHINE_BYTES / PAGE_SIZE;

/**
 * Zone spans: from zoneinfo when given (start_pfn, spanned, managed), else laid out as on
 * x86-64 (DMA from pfn 1, DMA32 from 16 MiB, Normal from 4 GiB). `present` is chosen so
 * the zone has exactly the pageblocks pagetypeinfo counts; mops keeps holes at the end of a
 * span, so it may differ from zoneinfo's `present`. A span that cannot be is said of the
 * file it came from (zoneinfo, or pagetypeinfo's block counts without it), with the line.
 */
function planZones(
  counts: Map<number, { free: number[][]; blocks: number[] }>,
  zi: ParsedZoneinfo | undefined,
  pti: ParsedPagetypeinfo,
): ZonePlan[] {
  const plans: ZonePlan[] = [];
  let cursor = 0;
  for (const idx of [...counts.keys()].sort((a, b) => a - b)) {
    const { free, blocks } = counts.get(idx)!;
    const nrBlocks = blocks.reduce((a, b) => a + b, 0);
    const freePages = freePagesOf(free);
    const name = zname(idx);
    const blockLine = pti.lines?.blocks.get(idx) ?? 0;
    if (nrBlocks === 0)
      throw procParseError(
        'pagetypeinfo',
        blockLine,
        `zone ${name} has no pageblocks but buddyinfo lists it`,
      );
    let startPfn: number;
    let spanned: number | undefined;
    let managed: number | undefined;
    let startLine = blockLine;
    let spanLine = blockLine;
    const zz = zi?.zones.get(idx);
    if (zi) {
      if (!zz || zz.startPfn === undefined || zz.spanned === undefined)
        throw procParseError(
          'zoneinfo',
          zz?.lines?.header ?? 0,
          `zone ${name} is populated in buddyinfo but zoneinfo gives no start_pfn/spanned for it`,
        );
      startPfn = zz.startPfn;
      spanned = zz.spanned;
      managed = zz.managed;
      startLine = zz.lines?.startPfn ?? 0;
      spanLine = zz.lines?.spanned ?? 0;
    } else {
      const maxBlock = 2 ** MAX_PAGE_ORDER;
      if (idx === ZONE.DMA) startPfn = 1;
      else {
        startPfn = Math.ceil(cursor / maxBlock) * maxBlock;
        if (idx === ZONE.DMA32) startPfn = Math.max(startPfn, 4096);
        if (idx === ZONE.NORMAL && counts.has(ZONE.DMA32)) startPfn = Math.max(startPfn, 2 ** 20);
      }
    }
    const blockEnd = blockFloor(startPfn) + nrBlocks * pageblock_nr_pages;
    // Without zoneinfo the zone spans exactly its pageblocks.
    spanned ??= blockEnd - startPfn;
    const prev = plans.at(-1);
    if (prev && startPfn < cursor)
      throw procParseError(
        'zoneinfo',
        startLine,
        `zone ${name} starts at pfn ${startPfn}, inside zone ${zname(prev.idx)} (pfns ${prev.startPfn} to ${cursor - 1})`,
      );
    if (startPfn + spanned > MAX_PFNS) {
      if (!zi)
        throw procParseError(
          'pagetypeinfo',
          blockLine,
          `zone ${name} has ${exactCount(nrBlocks)} pageblocks (${(nrBlocks / 512).toFixed(1)} GiB), which laid out from pfn ${startPfn} end beyond 64 GiB; mops emulates at most 64 GiB`,
        );
      throw procParseError(
        'zoneinfo',
        startPfn >= MAX_PFNS ? startLine : spanLine,
        `zone ${name} spans pfns ${startPfn} to ${exactCount(startPfn + spanned - 1)}, beyond 64 GiB; mops emulates at most 64 GiB`,
      );
    }
    const present = Math.min(spanned, blockEnd - startPfn);
    if (Math.ceil(present / pageblock_nr_pages) !== nrBlocks)
      throw procParseError(
        zi ? 'zoneinfo' : 'pagetypeinfo',
        spanLine,
        `zone ${name} spans ${spanned} pages from pfn ${startPfn}, fewer than the ${exactCount(nrBlocks)} pageblocks pagetypeinfo counts`,
      );
    const m = Math.min(managed ?? present, present);
    if (freePages > m)
      throw procParseError(
        zi ? 'zoneinfo' : 'pagetypeinfo',
        zi ? (zz?.lines?.managed ?? 0) : blockLine,
        `zone ${name}: ${exactCount(freePages)} free pages do not fit in ${m} managed pages`,
      );
    plans.push({ idx, free, blocks, nrBlocks, freePages, startPfn, spanned, present, managed: m });
    cursor = startPfn + spanned;
  }
  return plans;
}

/** The largest vm.min_free_kbytes: the sysctl is an int with bounds 0..INT_MAX. */
const MAX_MIN_FREE_KBYTES = 0x7fffffff;

/**
 * The most pages of `min` any vm.min_free_kbytes can give zone `zones[i]` under either
 * kernel rule for ZONE_MOVABLE, `top` being what the largest value gives each zone under
 * the profile's: up to v6.16 every zone takes a share of pages_min by its managed pages;
 * v6.17 leaves ZONE_MOVABLE out of the split (the others' shares grow) and gives it 32..128
 * pages of its own. A zoneinfo from a kernel of the other rule is still one a kernel wrote.
 */
function highestMin(zones: readonly Zone[], i: number, top: number[], maxPages: number): number {
  let all = 0;
  let movable = 0;
  for (const z of zones) {
    all += z.managedPages;
    if (z.idx === ZONE.MOVABLE) movable += z.managedPages;
  }
  const z = zones[i];
  const other =
    z.idx === ZONE.MOVABLE
      ? Math.max(128, Math.floor((maxPages * z.managedPages) / all))
      : Math.floor((maxPages * z.managedPages) / (all - movable));
  return Math.max(top[i], other);
}

/**
 * min_free_kbytes whose per-zone split gives zoneinfo's `min` watermarks (boost taken off),
 * by running setup_per_zone_wmarks() ({@link setupWatermarks}, with the profile's rule for
 * ZONE_MOVABLE): the smallest that matches every zone with managed pages. Undefined when
 * zoneinfo lacks a `min`. A min that no value 0..INT_MAX can give its zone is an error
 * naming its line; when each is within reach but no one value gives them all (a kernel's
 * managed pages may have changed since it set its watermarks), the sum of the mins.
 */
function minFreeFromZoneinfo(mem: Memory, zi: ParsedZoneinfo): number | undefined {
  const zones = mem.node.zones.filter((z) => z.managedPages > 0);
  if (zones.length === 0) return undefined;
  const want: number[] = [];
  for (const z of zones) {
    const info = zi.zones.get(z.idx);
    if (info?.min === undefined) return undefined;
    // The printed min includes the boost (parseZoneinfo checks it is not below it).
    want.push(info.min - (info.boost ?? 0));
  }
  const kb = PAGE_SIZE >> 10;
  const maxPages = Math.floor(MAX_MIN_FREE_KBYTES / kb);
  const mins = (pages: number) => {
    setupWatermarks(mem, pages * kb);
    return zones.map((z) => z.watermark[WMARK.MIN]);
  };
  const reaches = (got: number[]) => got.every((v, i) => v >= want[i]);
  const top = mins(maxPages);
  for (const [i, z] of zones.entries()) {
    const most = highestMin(zones, i, top, maxPages);
    if (want[i] > most) {
      const info = zi.zones.get(z.idx)!;
      throw procParseError(
        'zoneinfo',
        info.lines?.min ?? 0,
        `zone ${z.name}: min ${info.min} (boost ${info.boost ?? 0}) is more than any vm.min_free_kbytes (0..${MAX_MIN_FREE_KBYTES}) gives it: at most ${most} pages, with its ${z.managedPages} managed pages`,
      );
    }
  }
  // Each zone's min is non-decreasing in min_free_kbytes (its share
  // floor(pages_min * managed / lowmem), or v6.17's ZONE_MOVABLE rule, which does not depend
  // on it). So bisection finds the smallest value giving every zone at least its min, and that
  // value gives each exactly its min whenever any value does: ~30 runs, not one per page.
  if (reaches(top)) {
    let lo = 0;
    let hi = maxPages;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (reaches(mins(mid))) hi = mid;
      else lo = mid + 1;
    }
    if (mins(lo).every((v, i) => v === want[i])) return lo * kb;
  }
  let sum = 0;
  for (const w of want) sum += w;
  return Math.min(sum, maxPages) * kb;
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
 * counts: zoneinfo's `present` may differ (a DMA zone has its holes in its first
 * pageblock; a Normal zone may have offline sections). The holes have no memmap:
 * compaction's scanners pass over them as pageblock_pfn_to_page() makes the kernel's do.
 * The fragmentation score weights each zone by its present pages, so where zoneinfo's
 * `present` is larger the node's score differs from the real machine's (on the Linux 6.18
 * machine of the package's test fixtures, `packages/core/test/proc/fixtures`, whose Normal
 * zone is the fragmented one: present 5505024, offline sections included, against the
 * 688128 pages of its online pageblocks, and a score of 9 against the machine's 18).
 * `options.onNote` hears of each such difference.
 *
 * Every allocated page is unmovable (owner `'imported'`): /proc does not say what a page
 * holds, so compaction finds nothing to migrate. With `options.movable` the allocated pages
 * of MIGRATE_MOVABLE pageblocks become movable pages of the built-in filler driver instead,
 * and compaction has real work on the same free state.
 *
 * Throws MopsError('E_PROC_PARSE') naming the file and line for a malformed file, a value
 * no kernel prints (a negative count, a duplicate column, free ZONE_DEVICE blocks, a `min`
 * no vm.min_free_kbytes gives) or mops cannot hold (beyond 2^53 - 1, more than 64 GiB), CMA
 * pages (mops has no CMA), and when the counts cannot be laid out (files that disagree,
 * more free blocks than pageblocks). A `src` or options of the wrong kind are E_USAGE, an
 * unknown or mistyped option E_CONFIG (as createMachine).
 */
export function machineFromProc(
  src: string | URL | ProcTexts,
  options: FromProcOptions = {},
): Machine {
  checkFromProcOptions(options);
  const texts = loadTexts(src);
  const buddy = readBuddyinfo(texts.buddyinfo);
  const pti = parsePagetypeinfo(texts.pagetypeinfo);
  const zi = texts.zoneinfo !== undefined ? parseZoneinfo(texts.zoneinfo) : undefined;
  const vm = texts.vmstat !== undefined ? parseVmstat(texts.vmstat) : undefined;
  // planZones keeps every zone below 64 GiB, so the machine fits.
  const plans = planZones(reconcile(buddy, pti), zi, pti);

  let maxEnd = 0;
  for (const p of plans) maxEnd = Math.max(maxEnd, p.startPfn + p.spanned);
  const nrPages = Math.ceil(maxEnd / pageblock_nr_pages) * pageblock_nr_pages;
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
  if (options.movable === true) importMovable(machine, IMPORTED_OWNER);
  if (options.counters !== false) importCounters(mem, zi, vm);
  if (options.onNote)
    for (const note of fromProcNotes(machine, zi, vm, options.counters !== false))
      options.onNote(note);
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
