/**
 * Parsers of the /proc files {@link machineFromProc} reads: buddyinfo and pagetypeinfo
 * (here), zoneinfo and vmstat (parse_zoneinfo.ts), in the layouts of Linux 4.8 to 6.x.
 * Lines may end in LF or CRLF. mops has no CMA: CMA pages (pageblocks, free blocks,
 * zoneinfo's `cma` and `nr_free_cma`) are rejected. Counts are what the kernel prints with
 * %lu: digits, at most 2^53 - 1 (beyond, mops could not hold them exactly). Lines are
 * matched by a prefix and split on whitespace, so parsing stays linear in a line's length;
 * messages quote at most ~80 characters of it.
 * @module
 */

import {
  MIGRATE,
  MIGRATE_TYPES,
  MIGRATETYPE_NAMES,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  pageblock_order,
  ZONE,
} from '../memory/constants.js';
import { FREECOUNT_CAP } from './pagetypeinfo.js';
import {
  after,
  checkNode,
  checkText,
  exactInteger,
  noCma,
  procParseError,
  quote,
  shown,
  splitLines,
  words,
  zoneIndex,
} from './parse_util.js';

export { procParseError } from './parse_util.js';
export {
  type ParsedZoneinfo,
  type ParsedZoneinfoZone,
  parseVmstat,
  parseZoneinfo,
} from './parse_zoneinfo.js';

/**
 * `Node <n>, zone <name>` at the start of a line (buddyinfo, block-count rows); the counts
 * follow. Each part is bounded by a character the next cannot start with, so a failed match
 * never backtracks over a run of whitespace.
 */
const NODE_ZONE = /^Node\s+(\d+),\s+zone\s+(\S+)/;
/** `Node <n>, zone <name>, type <type>` at the start of a free-count row of pagetypeinfo. */
const NODE_ZONE_TYPE = /^Node\s+(\d+),\s+zone\s+([^\s,]+),\s+type\s+(\S+)/;

/** The error for free blocks in ZONE_DEVICE. */
function deviceFree(file: string, line: number): Error {
  // memremap_pages() memory is never handed to the buddy allocator (and the zone is never
  // populated, so the kernel does not list it at all).
  return procParseError(
    file,
    line,
    'zone Device has free blocks; ZONE_DEVICE pages are never in the buddy allocator',
  );
}

/**
 * `n` counts (`name` says what one is: `free count`, `block count`) in `text`, or an error
 * naming the line and quoting what was found.
 */
function counts(
  file: string,
  line: number,
  text: string,
  what: string,
  n: number,
  name: string,
): number[] {
  const parts = words(text);
  if (parts.length !== n || parts.some((p) => !/^\d+$/.test(p)))
    throw procParseError(
      file,
      line,
      `expected ${n} ${what}, found ${quote(text.trim())} (mops models orders 0..${NR_PAGE_ORDERS - 1} and ${MIGRATE_TYPES} migrate types)`,
    );
  return parts.map((p) => exactInteger(file, line, name, p));
}

/** The content of /proc/buddyinfo, with where each zone's line was. */
export interface ReadBuddyinfo {
  /** Free blocks per order, by zone index. */
  readonly free: Map<number, number[]>;
  /** The line (1-based) of each zone, by zone index. */
  readonly lines: Map<number, number>;
}

/** /proc/buddyinfo: free blocks per order, by zone index. */
export function parseBuddyinfo(text: string, file = 'buddyinfo'): Map<number, number[]> {
  return readBuddyinfo(text, file).free;
}

/** {@link parseBuddyinfo}, with the line of each zone (for messages about the zone). */
export function readBuddyinfo(text: string, file = 'buddyinfo'): ReadBuddyinfo {
  checkText('parseBuddyinfo', text, file);
  const free = new Map<number, number[]>();
  const at = new Map<number, number>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const n = i + 1;
    if (l.trim() === '') continue;
    const m = NODE_ZONE.exec(l);
    if (!m)
      throw procParseError(file, n, `expected 'Node 0, zone <name> <counts>', found ${quote(l)}`);
    checkNode(file, n, m[1]);
    const z = zoneIndex(file, n, m[2]);
    if (free.has(z)) throw procParseError(file, n, `zone ${m[2]} appears twice`);
    const row = counts(
      file,
      n,
      l.slice(m[0].length),
      `free counts for orders 0..${NR_PAGE_ORDERS - 1}`,
      NR_PAGE_ORDERS,
      'free count',
    );
    if (z === ZONE.DEVICE && row.some((c) => c > 0)) throw deviceFree(file, n);
    free.set(z, row);
    at.set(z, n);
  }
  if (free.size === 0) throw procParseError(file, 0, 'no zone lines');
  return { free, lines: at };
}

/** A free count of pagetypeinfo: `>100000` means the kernel stopped counting there. */
export interface FreeCount {
  /** The number printed. */
  readonly count: number;
  /** True for `>100000`: at least that many. */
  readonly overflow: boolean;
}

/** The content of /proc/pagetypeinfo. */
export interface ParsedPagetypeinfo {
  /** Free blocks by zone index, then migrate type, then order. */
  readonly free: Map<number, Map<number, FreeCount[]>>;
  /** Pageblocks by zone index, then migrate type (types missing from the file count 0). */
  readonly blocks: Map<number, number[]>;
  /**
   * The migrate types of the `Number of blocks type` header, in its order: the kernel prints
   * every migrate type of its build (CMA with CONFIG_CMA, Isolate with
   * CONFIG_MEMORY_ISOLATION), whether or not any block has it.
   */
  readonly types: readonly number[];
  /**
   * The lines (1-based) of the free-count rows by zone index and migrate type, and of the
   * block-count rows by zone index: for messages about them.
   */
  readonly lines?: {
    readonly free: ReadonlyMap<number, ReadonlyMap<number, number>>;
    readonly blocks: ReadonlyMap<number, number>;
  };
}

function migratetypeIndex(file: string, line: number, name: string): number {
  const mt = MIGRATETYPE_NAMES.indexOf(name);
  if (mt < 0)
    throw procParseError(
      file,
      line,
      `unknown migrate type ${quote(name)}; mops models ${MIGRATETYPE_NAMES.join(', ')}`,
    );
  return mt;
}

/**
 * A free-count row's counts: `n` digits, or `>100000` where the kernel stopped counting a
 * free list (pagetypeinfo_showfree_print() prints `>` only with that number).
 */
function freeCounts(file: string, line: number, text: string): FreeCount[] {
  const parts = words(text);
  if (parts.length !== NR_PAGE_ORDERS || parts.some((p) => !/^>?\d+$/.test(p)))
    throw procParseError(
      file,
      line,
      `expected ${NR_PAGE_ORDERS} free counts, found ${quote(text.trim())}`,
    );
  return parts.map((p) => {
    const overflow = p.startsWith('>');
    if (overflow && p !== `>${FREECOUNT_CAP}`)
      throw procParseError(
        file,
        line,
        `free count ${quote(p)}: the kernel prints '>' only as '>${FREECOUNT_CAP}', where it stops counting a free list`,
      );
    return { count: exactInteger(file, line, 'free count', overflow ? p.slice(1) : p), overflow };
  });
}

/**
 * The migrate types of a `Number of blocks type` header: known ones, each once (the kernel
 * prints each type of its build once; a repeated one would print its rows twice).
 */
function headerTypes(file: string, line: number, text: string): number[] {
  const names = words(text);
  if (names.length === 0)
    throw procParseError(file, line, "no migrate types in the 'Number of blocks type' header");
  const out: number[] = [];
  for (const name of names) {
    const mt = migratetypeIndex(file, line, name);
    if (out.includes(mt))
      throw procParseError(
        file,
        line,
        `migrate type ${quote(name)} appears twice in the 'Number of blocks type' header`,
      );
    out.push(mt);
  }
  return out;
}

/** /proc/pagetypeinfo: free counts per type and order, and pageblocks per type. */
export function parsePagetypeinfo(text: string, file = 'pagetypeinfo'): ParsedPagetypeinfo {
  checkText('parsePagetypeinfo', text, file);
  const free = new Map<number, Map<number, FreeCount[]>>();
  const blocks = new Map<number, number[]>();
  const freeLines = new Map<number, Map<number, number>>();
  const blockLines = new Map<number, number>();
  let columns: number[] | undefined;
  let sawOrders = false;
  let done = false;
  const lines = splitLines(text);
  for (let i = 0; i < lines.length && !done; i++) {
    const l = lines[i];
    const n = i + 1;
    if (l.trim() === '') continue;
    let m = /^Page block order:\s*(\d+)\s*$/.exec(l);
    if (m) {
      if (Number(m[1]) !== pageblock_order)
        throw procParseError(
          file,
          n,
          `page block order ${shown(m[1])}; mops models ${pageblock_order} (x86-64, 4 KiB pages)`,
        );
      continue;
    }
    m = /^Pages per block:\s*(\d+)\s*$/.exec(l);
    if (m) {
      if (Number(m[1]) !== pageblock_nr_pages)
        throw procParseError(
          file,
          n,
          `${shown(m[1])} pages per block; mops models ${pageblock_nr_pages}`,
        );
      continue;
    }
    let rest = after(l, 'Free pages count per migrate type at order');
    if (rest !== undefined) {
      const orders = words(rest).join(' ');
      if (orders !== Array.from({ length: NR_PAGE_ORDERS }, (_, o) => o).join(' '))
        throw procParseError(
          file,
          n,
          `orders ${quote(rest.trim())}; mops models orders 0..${NR_PAGE_ORDERS - 1}`,
        );
      sawOrders = true;
      continue;
    }
    m = NODE_ZONE_TYPE.exec(l);
    if (m) {
      if (!sawOrders) throw procParseError(file, n, 'free counts before the order header');
      checkNode(file, n, m[1]);
      const z = zoneIndex(file, n, m[2]);
      const mt = migratetypeIndex(file, n, m[3]);
      const row = freeCounts(file, n, l.slice(m[0].length));
      let byType = free.get(z);
      let lineOf = freeLines.get(z);
      if (!byType || !lineOf) {
        byType = new Map();
        lineOf = new Map();
        free.set(z, byType);
        freeLines.set(z, lineOf);
      }
      if (byType.has(mt)) throw procParseError(file, n, `zone ${m[2]} type ${m[3]} appears twice`);
      if (mt === MIGRATE.CMA && row.some((c) => c.count > 0 || c.overflow))
        throw noCma(file, n, `zone ${m[2]} has free CMA blocks`);
      if (z === ZONE.DEVICE && row.some((c) => c.count > 0 || c.overflow))
        throw deviceFree(file, n);
      byType.set(mt, row);
      lineOf.set(mt, n);
      continue;
    }
    rest = after(l, 'Number of blocks type');
    if (rest !== undefined) {
      if (columns) throw procParseError(file, n, "a second 'Number of blocks type' header");
      columns = headerTypes(file, n, rest);
      continue;
    }
    // CONFIG_PAGE_OWNER's "Number of mixed blocks" section follows; mops does not model it.
    if (l.startsWith('Number of mixed blocks')) {
      done = true;
      continue;
    }
    m = NODE_ZONE.exec(l);
    rest = m ? l.slice(m[0].length) : undefined;
    if (m && rest !== undefined && columns && !/[^\d\s]/.test(rest)) {
      checkNode(file, n, m[1]);
      const z = zoneIndex(file, n, m[2]);
      if (blocks.has(z)) throw procParseError(file, n, `zone ${m[2]} block counts appear twice`);
      const c = counts(
        file,
        n,
        rest,
        `block counts (one per column: ${columns.length})`,
        columns.length,
        'block count',
      );
      const row = new Array<number>(MIGRATE_TYPES).fill(0);
      columns.forEach((mt, k) => {
        row[mt] = c[k];
      });
      if (row[MIGRATE.CMA] > 0)
        throw noCma(file, n, `zone ${m[2]} has ${row[MIGRATE.CMA]} CMA pageblocks`);
      blocks.set(z, row);
      blockLines.set(z, n);
      continue;
    }
    throw procParseError(file, n, `unexpected line ${quote(l)}`);
  }
  if (free.size === 0)
    throw procParseError(file, 0, 'no free-count lines (Node …, zone …, type …)');
  if (blocks.size === 0 || !columns)
    throw procParseError(file, 0, "no 'Number of blocks type' section");
  return { free, blocks, types: columns, lines: { free: freeLines, blocks: blockLines } };
}
