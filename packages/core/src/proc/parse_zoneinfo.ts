/**
 * Parsers of /proc/zoneinfo and /proc/vmstat (Linux 4.8 to 6.x). Lines may end in LF or
 * CRLF.
 * @module
 */

import { ZONE_NAMES } from '../memory/constants.js';
import {
  checkNode,
  checkText,
  exactInteger,
  noCma,
  procParseError,
  quote,
  splitLines,
  zoneIndex,
} from './parse_util.js';

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
  /** The lines (1-based) of the zone's header and of the values above, for messages. */
  readonly lines?: Partial<
    Record<'header' | 'startPfn' | 'spanned' | 'present' | 'managed' | 'min' | 'boost', number>
  >;
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
/** `protection: (a, b, …)`: the kernel prints the lowmem reserves signed (%ld). */
const ZI_PROTECTION = /^\s*protection:\s+\(\s*-?\d+(?:\s*,\s*-?\d+)*\s*\)\s*$/;

/**
 * The `name: value` fields zoneinfo prints signed (%i, %d): a pageset's cpu, count, high,
 * batch, high_min, high_max, and the stat threshold. Every `name value` line and the other
 * fields (start_pfn, node_unreclaimable, node_inactive_ratio) are printed unsigned, so a
 * minus sign there is not a kernel's.
 */
const SIGNED_FIELDS = new Set([
  'cpu',
  'count',
  'high',
  'batch',
  'high_min',
  'high_max',
  'vm stats threshold',
]);

const UNSIGNED = 'zoneinfo prints it unsigned';

/** An error if a zone already gave `key`, which mops reads (a second value would override it). */
function once(
  file: string,
  line: number,
  zone: string | undefined,
  key: string,
  first: number | undefined,
): void {
  if (first !== undefined)
    throw procParseError(
      file,
      line,
      `zone ${zone}: a second ${key} (the first is on line ${first})`,
    );
}

/**
 * /proc/zoneinfo: zone sizes, watermarks, zone and node stats. Every line must be one the
 * kernel prints (zoneinfo_show_print() of 4.8 to 6.x: `node_scanned`, `node_inactive_ratio`
 * and the old pagesets of 4.8; `boost`, `promo`, `cma`, `high_min`/`high_max` of 6.x;
 * unpopulated zones stopping after `protection`): a `name value`, `name: value` or
 * `protection: (…)` line with integer values, or a header. Anything else is an error naming
 * the line, as is a CMA page count other than 0 (mops has no CMA), a minus sign on a value
 * the kernel prints unsigned, a value beyond 2^53 - 1 (mops could not print it back), and a
 * `boost` above the `min` that includes it.
 */
export function parseZoneinfo(text: string, file = 'zoneinfo'): ParsedZoneinfo {
  checkText('parseZoneinfo', text, file);
  const zones = new Map<number, ParsedZoneinfoZone>();
  const nodeStats = new Map<string, number>();
  let cur: ParsedZoneinfoZone | undefined;
  // The name of cur's zone.
  let curName: string | undefined;
  let lines: NonNullable<ParsedZoneinfoZone['lines']> = {};
  let section: 'node' | 'zone' | 'pagesets' = 'zone';
  const all = splitLines(text);
  for (let i = 0; i < all.length; i++) {
    const l = all[i];
    const n = i + 1;
    if (l.trim() === '') continue;
    const m = /^Node\s+(\d+),\s+zone\s+(\S+)\s*$/.exec(l);
    if (m) {
      checkNode(file, n, m[1]);
      const z = zoneIndex(file, n, m[2]);
      if (zones.has(z)) throw procParseError(file, n, `zone ${m[2]} appears twice`);
      lines = { header: n };
      cur = { stats: new Map(), lines };
      curName = ZONE_NAMES[z];
      zones.set(z, cur);
      section = 'zone';
      continue;
    }
    if (/^Node\s+\d+,\s+per-node stats\s*$/.test(l) || /^\s+per-node stats\s*$/.test(l)) {
      section = 'node';
      continue;
    }
    if (!cur && section !== 'node')
      throw procParseError(file, n, `expected 'Node 0, zone <name>', found ${quote(l)}`);
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
      const signed = SIGNED_FIELDS.has(field[1]);
      const v = exactInteger(file, n, field[1], field[2], signed ? undefined : UNSIGNED);
      if (field[1] === 'start_pfn' && cur) {
        once(file, n, curName, 'start_pfn', lines.startPfn);
        cur.startPfn = v;
        lines.startPfn = n;
      }
      // Pageset fields, `vm stats threshold`, `node_unreclaimable`, `node_inactive_ratio`:
      // not needed to rebuild.
      continue;
    }
    const value = ZI_VALUE.exec(l);
    if (!value)
      throw procParseError(
        file,
        n,
        `expected '<name> <integer>', '<name>: <integer>' or a header, found ${quote(l.trim())}`,
      );
    const key = value[1];
    const v = exactInteger(file, n, key, value[2], UNSIGNED);
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
        once(file, n, curName, key, lines[key]);
        cur[key] = v;
        lines[key] = n;
        break;
      default:
        // Zone stat items; low/high/promo/cma/node_scanned are not needed to rebuild.
        cur.stats.set(key, v);
    }
  }
  if (zones.size === 0) throw procParseError(file, 0, "no 'Node 0, zone <name>' lines");
  for (const [z, zone] of zones) {
    const name = ZONE_NAMES[z];
    // The kernel prints `min` as the min watermark plus the boost: never below the boost.
    if (zone.boost !== undefined && zone.min !== undefined && zone.boost > zone.min)
      throw procParseError(
        file,
        zone.lines?.boost ?? 0,
        `zone ${name}: boost ${zone.boost} is more than min ${zone.min}, which includes it (zoneinfo prints the min watermark plus the boost)`,
      );
  }
  return { zones, nodeStats };
}

/**
 * /proc/vmstat: `name value` pairs. The kernel prints every counter unsigned (a per-CPU
 * drift below zero reads as 0), so a negative value is an error naming the line, as is a
 * value beyond 2^53 - 1 (mops could not print it back as read).
 */
export function parseVmstat(text: string, file = 'vmstat'): Map<string, number> {
  checkText('parseVmstat', text, file);
  const out = new Map<string, number>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    const m = /^([a-z_][a-z0-9_]*)\s+(-?\d+)\s*$/.exec(l);
    if (!m) throw procParseError(file, i + 1, `expected '<name> <value>', found ${quote(l)}`);
    out.set(
      m[1],
      exactInteger(
        file,
        i + 1,
        m[1],
        m[2],
        'the kernel prints every /proc/vmstat counter unsigned',
      ),
    );
  }
  return out;
}
