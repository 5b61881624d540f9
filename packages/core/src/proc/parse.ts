/**
 * Parsers of the /proc files {@link machineFromProc} reads: buddyinfo, pagetypeinfo,
 * zoneinfo and vmstat, in the layouts of Linux 4.8 to 6.x. Lines may end in LF or CRLF.
 * mops has no CMA: CMA pages (pageblocks, free blocks, zoneinfo's `cma` and `nr_free_cma`)
 * are rejected.
 * @module
 */

import { MopsError } from '../errors.js';
import {
  MIGRATE,
  MIGRATE_TYPES,
  MIGRATETYPE_NAMES,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  pageblock_order,
  ZONE_NAMES,
} from '../memory/constants.js';

/** A parse error: `E_PROC_PARSE` naming the file and the line. */
export function procParseError(file: string, line: number, message: string): MopsError {
  return new MopsError(
    'E_PROC_PARSE',
    line > 0 ? `${file} line ${line}: ${message}` : `${file}: ${message}`,
    file,
  );
}

/** The lines of a /proc file; CRLF line ends are accepted as LF. */
function splitLines(text: string): string[] {
  return text.split(/\r?\n/);
}

/** The error for CMA pages: mops does not model CMA. */
function noCma(file: string, line: number, what: string): MopsError {
  return procParseError(
    file,
    line,
    `${what}; mops has no CMA (no MIGRATE_CMA pageblocks, no CMA allocations), so it cannot rebuild this machine`,
  );
}

function zoneIndex(file: string, line: number, name: string): number {
  const idx = ZONE_NAMES.indexOf(name);
  if (idx < 0)
    throw procParseError(
      file,
      line,
      `unknown zone '${name}'; mops models the zones ${ZONE_NAMES.join(', ')}`,
    );
  return idx;
}

function checkNode(file: string, line: number, node: string): void {
  if (node !== '0')
    throw procParseError(file, line, `node ${node}: mops emulates a single node (node 0)`);
}

function counts(file: string, line: number, text: string, what: string, n: number): number[] {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== n || parts.some((p) => !/^\d+$/.test(p)))
    throw procParseError(
      file,
      line,
      `expected ${n} ${what}, found '${text.trim()}' (mops models orders 0..${NR_PAGE_ORDERS - 1} and ${MIGRATE_TYPES} migrate types)`,
    );
  return parts.map(Number);
}

/** /proc/buddyinfo: free blocks per order, by zone index. */
export function parseBuddyinfo(text: string, file = 'buddyinfo'): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    const m = /^Node\s+(\d+),\s+zone\s+(\S+)\s+(.*)$/.exec(l);
    if (!m)
      throw procParseError(file, i + 1, `expected 'Node 0, zone <name> <counts>', found '${l}'`);
    checkNode(file, i + 1, m[1]);
    const z = zoneIndex(file, i + 1, m[2]);
    if (out.has(z)) throw procParseError(file, i + 1, `zone ${m[2]} appears twice`);
    out.set(
      z,
      counts(file, i + 1, m[3], `free counts for orders 0..${NR_PAGE_ORDERS - 1}`, NR_PAGE_ORDERS),
    );
  }
  if (out.size === 0) throw procParseError(file, 0, 'no zone lines');
  return out;
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
}

function migratetypeIndex(file: string, line: number, name: string): number {
  const mt = MIGRATETYPE_NAMES.indexOf(name);
  if (mt < 0)
    throw procParseError(
      file,
      line,
      `unknown migrate type '${name}'; mops models ${MIGRATETYPE_NAMES.join(', ')}`,
    );
  return mt;
}

/** /proc/pagetypeinfo: free counts per type and order, and pageblocks per type. */
export function parsePagetypeinfo(text: string, file = 'pagetypeinfo'): ParsedPagetypeinfo {
  const free = new Map<number, Map<number, FreeCount[]>>();
  const blocks = new Map<number, number[]>();
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
          `page block order ${m[1]}; mops models ${pageblock_order} (x86-64, 4 KiB pages)`,
        );
      continue;
    }
    m = /^Pages per block:\s*(\d+)\s*$/.exec(l);
    if (m) {
      if (Number(m[1]) !== pageblock_nr_pages)
        throw procParseError(file, n, `${m[1]} pages per block; mops models ${pageblock_nr_pages}`);
      continue;
    }
    m = /^Free pages count per migrate type at order\s+(.*)$/.exec(l);
    if (m) {
      const orders = m[1].trim().split(/\s+/);
      if (orders.join(' ') !== Array.from({ length: NR_PAGE_ORDERS }, (_, o) => o).join(' '))
        throw procParseError(
          file,
          n,
          `orders '${m[1].trim()}'; mops models orders 0..${NR_PAGE_ORDERS - 1}`,
        );
      sawOrders = true;
      continue;
    }
    m = /^Node\s+(\d+),\s+zone\s+(\S+),\s+type\s+(\S+)\s+(.*)$/.exec(l);
    if (m) {
      if (!sawOrders) throw procParseError(file, n, 'free counts before the order header');
      checkNode(file, n, m[1]);
      const z = zoneIndex(file, n, m[2]);
      const mt = migratetypeIndex(file, n, m[3]);
      const parts = m[4].trim().split(/\s+/);
      if (parts.length !== NR_PAGE_ORDERS || parts.some((p) => !/^>?\d+$/.test(p)))
        throw procParseError(
          file,
          n,
          `expected ${NR_PAGE_ORDERS} free counts, found '${m[4].trim()}'`,
        );
      let byType = free.get(z);
      if (!byType) {
        byType = new Map();
        free.set(z, byType);
      }
      if (byType.has(mt)) throw procParseError(file, n, `zone ${m[2]} type ${m[3]} appears twice`);
      const row = parts.map((p) => ({
        count: Number(p.replace('>', '')),
        overflow: p.startsWith('>'),
      }));
      if (mt === MIGRATE.CMA && row.some((c) => c.count > 0 || c.overflow))
        throw noCma(file, n, `zone ${m[2]} has free CMA blocks`);
      byType.set(mt, row);
      continue;
    }
    m = /^Number of blocks type\s+(.*)$/.exec(l);
    if (m) {
      if (columns) throw procParseError(file, n, "a second 'Number of blocks type' header");
      columns = m[1]
        .trim()
        .split(/\s+/)
        .map((t) => migratetypeIndex(file, n, t));
      continue;
    }
    // CONFIG_PAGE_OWNER's "Number of mixed blocks" section follows; mops does not model it.
    if (/^Number of mixed blocks/.test(l)) {
      done = true;
      continue;
    }
    m = /^Node\s+(\d+),\s+zone\s+(\S+)\s+([\d\s]+)$/.exec(l);
    if (m && columns) {
      checkNode(file, n, m[1]);
      const z = zoneIndex(file, n, m[2]);
      if (blocks.has(z)) throw procParseError(file, n, `zone ${m[2]} block counts appear twice`);
      const c = counts(
        file,
        n,
        m[3],
        `block counts (one per column: ${columns.length})`,
        columns.length,
      );
      const row = new Array<number>(MIGRATE_TYPES).fill(0);
      columns.forEach((mt, k) => {
        row[mt] = c[k];
      });
      if (row[MIGRATE.CMA] > 0)
        throw noCma(file, n, `zone ${m[2]} has ${row[MIGRATE.CMA]} CMA pageblocks`);
      blocks.set(z, row);
      continue;
    }
    throw procParseError(file, n, `unexpected line '${l}'`);
  }
  if (free.size === 0)
    throw procParseError(file, 0, 'no free-count lines (Node …, zone …, type …)');
  if (blocks.size === 0 || !columns)
    throw procParseError(file, 0, "no 'Number of blocks type' section");
  return { free, blocks, types: columns };
}

/** What mops reads of one zone in /proc/zoneinfo. */
export interface ParsedZoneinfoZone {
  /** `start_pfn` (only populated zones print it). */
  startPfn?: number;
  /** `spanned`. */
  spanned?: number;
  /** `present`. */
  present?: number;
  /** `managed`. */
  managed?: number;
  /** `min` watermark (boost included, as printed). */
  min?: number;
  /** `boost`. */
  boost?: number;
  /** Zone stat items printed for the zone (`nr_zone_active_anon`, `numa_hit`, …). */
  readonly stats: Map<string, number>;
}

/** The content of /proc/zoneinfo. */
export interface ParsedZoneinfo {
  /** Zones by index. */
  readonly zones: Map<number, ParsedZoneinfoZone>;
  /** The per-node stats (`nr_inactive_anon`, …). */
  readonly nodeStats: Map<string, number>;
}

/** A `name value` line: a zone or node stat, a watermark or a size. */
const ZI_VALUE = /^\s*([a-z_][a-z0-9_]*)\s+(-?\d+)\s*$/;
/** A `name: value` line: a pageset field, `vm stats threshold`, `start_pfn`, … */
const ZI_FIELD = /^\s*([a-z_]+(?: [a-z_]+)*):\s+(-?\d+)\s*$/;
/** `protection: (a, b, …)`. */
const ZI_PROTECTION = /^\s*protection:\s+\(\s*-?\d+(?:\s*,\s*-?\d+)*\s*\)\s*$/;

/**
 * /proc/zoneinfo: zone sizes, watermarks, zone and node stats. Every line must be one the
 * kernel prints (zoneinfo_show_print() of 4.8 to 6.x: `node_scanned`, `node_inactive_ratio`
 * and the old pagesets of 4.8; `boost`, `promo`, `cma`, `high_min`/`high_max` of 6.x;
 * unpopulated zones stopping after `protection`): a `name value`, `name: value` or
 * `protection: (…)` line with integer values, or a header. Anything else is an error naming
 * the line, as is a CMA page count other than 0 (mops has no CMA).
 */
export function parseZoneinfo(text: string, file = 'zoneinfo'): ParsedZoneinfo {
  const zones = new Map<number, ParsedZoneinfoZone>();
  const nodeStats = new Map<string, number>();
  let cur: ParsedZoneinfoZone | undefined;
  let curName = '';
  let section: 'node' | 'zone' | 'pagesets' = 'zone';
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const n = i + 1;
    if (l.trim() === '') continue;
    const m = /^Node\s+(\d+),\s+zone\s+(\S+)\s*$/.exec(l);
    if (m) {
      checkNode(file, n, m[1]);
      const z = zoneIndex(file, n, m[2]);
      if (zones.has(z)) throw procParseError(file, n, `zone ${m[2]} appears twice`);
      cur = { stats: new Map() };
      curName = m[2];
      zones.set(z, cur);
      section = 'zone';
      continue;
    }
    if (/^Node\s+\d+,\s+per-node stats\s*$/.test(l) || /^\s+per-node stats\s*$/.test(l)) {
      section = 'node';
      continue;
    }
    if (!cur && section !== 'node')
      throw procParseError(file, n, `expected 'Node 0, zone <name>', found '${l}'`);
    if (/^\s*pages free\s+\d+\s*$/.test(l)) {
      section = 'zone';
      continue;
    }
    if (/^\s*pagesets\s*$/.test(l)) {
      section = 'pagesets';
      continue;
    }
    if (ZI_PROTECTION.test(l)) continue;
    const field = ZI_FIELD.exec(l);
    if (field) {
      if (field[1] === 'start_pfn' && cur) cur.startPfn = Number(field[2]);
      // Pageset fields, `vm stats threshold`, `node_unreclaimable`, `node_inactive_ratio`:
      // not needed to rebuild.
      continue;
    }
    const value = ZI_VALUE.exec(l);
    if (!value)
      throw procParseError(
        file,
        n,
        `expected '<name> <integer>', '<name>: <integer>' or a header, found '${l.trim()}'`,
      );
    const key = value[1];
    const v = Number(value[2]);
    if (section === 'node') {
      nodeStats.set(key, v);
      continue;
    }
    if (!cur || section !== 'zone') continue;
    if ((key === 'cma' || key === 'nr_free_cma') && v !== 0)
      throw noCma(file, n, `zone ${curName} has ${v} ${key === 'cma' ? '' : 'free '}CMA pages`);
    switch (key) {
      case 'spanned':
      case 'present':
      case 'managed':
      case 'min':
      case 'boost':
        if (v < 0) throw procParseError(file, n, `negative ${key} ${v}`);
        cur[key] = v;
        break;
      default:
        // Zone stat items; low/high/promo/cma/node_scanned are not needed to rebuild.
        cur.stats.set(key, v);
    }
  }
  if (zones.size === 0) throw procParseError(file, 0, "no 'Node 0, zone <name>' lines");
  return { zones, nodeStats };
}

/** /proc/vmstat: `name value` pairs. */
export function parseVmstat(text: string, file = 'vmstat'): Map<string, number> {
  const out = new Map<string, number>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    const m = /^([a-z_][a-z0-9_]*)\s+(-?\d+)\s*$/.exec(l);
    if (!m) throw procParseError(file, i + 1, `expected '<name> <value>', found '${l}'`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}
