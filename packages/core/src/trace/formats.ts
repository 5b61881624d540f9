/**
 * The `TP_printk` formats of mops's tracepoints: how each event's line body is printed and
 * which fields a tracefs filter may name, in a registry that plugin layers extend
 * ({@link registerFtraceFormat}).
 * @module
 */

import { compactResultName } from '../compaction/types.js';
import { MopsError } from '../errors.js';
import { pageblock_order, ZONE_NAMES } from '../memory/constants.js';
import { formatMigratePagesV48 } from '../migrate/trace.js';
import { MR_NAMES, migrateModeName } from '../migrate/types.js';
import type { Profile } from '../profile.js';
import type { FilterSchema } from './filter.js';
import { gfpMaskV4_8, showGfpFlags } from './gfp_names.js';
import { type PointerStyle, pagePointer } from './pointer.js';

export { type PointerStyle, pagePointer } from './pointer.js';

/**
 * One event's ftrace description: its `TP_STRUCT__entry` fields (what a filter may name)
 * and its `TP_printk` output.
 */
export interface FtraceEventFormat {
  /** `TRACE_SYSTEM` (`kmem`, `compaction`, `migrate`, …). */
  readonly system: string;
  /** The record's fields and their C types (the 6.x `TP_STRUCT__entry`). */
  readonly fields: FilterSchema;
  /**
   * The fields of `profile`'s release, when they differ from {@link fields}: a field missing
   * from that release's `TP_STRUCT__entry` is left out, and a field the release names
   * differently is listed under its name then, with {@link FtraceFieldSet.payloadKeys}
   * saying which payload key holds its value.
   */
  fieldsFor?(profile: Profile): FtraceFieldSet | undefined;
  /** The `TP_printk` text for one payload; `profile` for formats that differ by release. */
  print(
    payload: Readonly<Record<string, unknown>>,
    pointers: PointerStyle,
    profile?: Profile,
  ): string;
}

/**
 * The fields a filter may name for one event in one release, and where their values live
 * in the payload when the kernel's name of that release differs from the payload key
 * (v4.8's `classzone_idx` holds what the payload calls `highest_zoneidx`).
 */
export interface FtraceFieldSet {
  /** Field names (the release's `TP_STRUCT__entry`) and their C types. */
  readonly fields: FilterSchema;
  /** Field name → payload key, for fields whose payload key differs from their name. */
  readonly payloadKeys?: Readonly<Record<string, string>>;
  /**
   * Field name → the value the release stores, for fields whose payload value is in mops's
   * (6.x) encoding and the release's differs (v4.8's gfp bit layout and compact_priority).
   */
  readonly values?: Readonly<
    Record<string, (payload: Readonly<Record<string, unknown>>) => number>
  >;
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number(v ?? 0);
}

/** A migrate_reason as the release prints it (the 6.x names without a profile). */
function reasonName(reason: unknown, profile: Profile | undefined): string {
  return (profile?.migrateReasons ?? MR_NAMES)[num(reason)];
}

/**
 * A kmem event's pfn: `0x%lx` since 5.14, `%lu` before (v4.8). A NULL page (a negative
 * pfn: the allocation failed) records pfn 0.
 */
function kmemPfn(pfn: unknown, profile: Profile | undefined): string {
  const v = Math.max(0, num(pfn));
  return profile && !profile.kmemPfnHex ? String(v) : `0x${hex(v)}`;
}

/**
 * A kmem event's `page=%p`: the struct page pointer, or for a negative pfn a NULL pointer
 * as the release prints it (`(null)` right-aligned in the pointer width in v4.8, zeros in
 * 6.x).
 */
function kmemPage(pfn: unknown, pointers: PointerStyle, profile: Profile | undefined): string {
  const v = num(pfn);
  if (v < 0 && profile?.nullPointer === '(null)') return '(null)'.padStart(16);
  return pagePointer(v, pointers);
}

function hex(v: number): string {
  return Math.max(0, v).toString(16);
}

// The C types of the fields (TP_STRUCT__entry), as the events' `format` files give them in
// `size:` and `signed:` (x86_64), for the filter (FilterFieldType): it reads a literal for a
// signed field with kstrtoll(), for an unsigned one with kstrtoull(), and compares in the
// field's type.
/** `unsigned long`: 8 bytes, unsigned. */
const ULONG = 'u64';
/** `unsigned int`: 4 bytes, unsigned. */
const UINT = 'u32';
/** `int`: 4 bytes, signed. */
const INT = 's32';
/** `enum zone_type`, `enum migrate_mode`: no negative value, so an unsigned int. */
const ENUM = 'u32';
/** `gfp_t`, v4.8's gfp fields (6.x's are `unsigned long`): an unsigned int. */
const GFP_T = 'u32';
/** `bool`: 1 byte, unsigned, 0 or 1. */
const BOOL = 'bool';

/** `mm_migrate_pages`'s fields in v6.17 (6.7 on). */
const MIGRATE_PAGES_FIELDS: FilterSchema = {
  succeeded: ULONG,
  failed: ULONG,
  thp_succeeded: ULONG,
  thp_failed: ULONG,
  thp_split: ULONG,
  large_folio_split: ULONG,
  mode: ENUM,
  reason: INT,
};

/** mm_page_alloc's fields (6.x; v4.8's gfp_flags is a gfp_t). */
const PAGE_ALLOC_FIELDS = {
  pfn: ULONG,
  order: UINT,
  gfp_flags: ULONG,
  migratetype: INT,
} as const;
/** mm_page_alloc_zone_locked's fields (6.0 on; v4.8 has no percpu_refill). */
const ZONE_LOCKED_FIELDS = {
  pfn: ULONG,
  order: UINT,
  migratetype: INT,
  percpu_refill: INT,
} as const;
/** mm_compaction_try_to_compact_pages' fields (6.x; v4.8's gfp_mask is a gfp_t). */
const TRY_TO_COMPACT_FIELDS = { order: INT, gfp_mask: ULONG, prio: INT } as const;

const FORMATS = new Map<string, FtraceEventFormat>([
  [
    'mm_page_alloc',
    {
      system: 'kmem',
      fields: PAGE_ALLOC_FIELDS,
      // v4.8 stores the mask in that release's bit layout, in a gfp_t.
      fieldsFor: (profile) =>
        profile.tracepointsV6
          ? undefined
          : {
              fields: { ...PAGE_ALLOC_FIELDS, gfp_flags: GFP_T },
              values: { gfp_flags: (e) => gfpMaskV4_8(num(e.gfp_flags)) },
            },
      // "page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s" (v4.8: pfn=%lu)
      print: (e, p, profile) =>
        `page=${kmemPage(e.pfn, p, profile)} pfn=${kmemPfn(e.pfn, profile)} order=${num(e.order)} ` +
        `migratetype=${num(e.migratetype)} gfp_flags=${showGfpFlags(num(e.gfp_flags), profile)}`,
    },
  ],
  [
    'mm_page_free',
    {
      system: 'kmem',
      fields: { pfn: ULONG, order: UINT },
      // "page=%p pfn=0x%lx order=%d" (v4.8: pfn=%lu)
      print: (e, p, profile) =>
        `page=${kmemPage(e.pfn, p, profile)} pfn=${kmemPfn(e.pfn, profile)} order=${num(e.order)}`,
    },
  ],
  [
    'mm_page_alloc_extfrag',
    {
      system: 'kmem',
      fields: {
        pfn: ULONG,
        alloc_order: INT,
        fallback_order: INT,
        alloc_migratetype: INT,
        fallback_migratetype: INT,
        change_ownership: INT,
      },
      // "page=%p pfn=0x%lx alloc_order=%d fallback_order=%d pageblock_order=%d
      //  alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d change_ownership=%d"
      //  (v4.8: pfn=%lu)
      print: (e, p, profile) =>
        `page=${kmemPage(e.pfn, p, profile)} pfn=${kmemPfn(e.pfn, profile)} ` +
        `alloc_order=${num(e.alloc_order)} fallback_order=${num(e.fallback_order)} ` +
        `pageblock_order=${pageblock_order} alloc_migratetype=${num(e.alloc_migratetype)} ` +
        `fallback_migratetype=${num(e.fallback_migratetype)} ` +
        `fragmenting=${num(e.fallback_order) < pageblock_order ? 1 : 0} ` +
        `change_ownership=${num(e.change_ownership) ? 1 : 0}`,
    },
  ],
  [
    'mm_page_alloc_zone_locked',
    {
      system: 'kmem',
      fields: ZONE_LOCKED_FIELDS,
      // v4.8 prints percpu_refill from `order == 0`; the field came with 6.0's fix.
      fieldsFor: (profile) => {
        if (profile.zoneLockedTrace === 'smallest') return undefined;
        const { percpu_refill: _, ...fields } = ZONE_LOCKED_FIELDS;
        return { fields };
      },
      // "page=%p pfn=0x%lx order=%u migratetype=%d percpu_refill=%d" (v4.8: pfn=%lu)
      print: (e, p, profile) =>
        `page=${kmemPage(e.pfn, p, profile)} pfn=${kmemPfn(e.pfn, profile)} order=${num(e.order)} ` +
        `migratetype=${num(e.migratetype)} percpu_refill=${num(e.percpu_refill)}`,
    },
  ],
  ...compactionFormats(),
  [
    'mm_migrate_pages_start',
    {
      system: 'migrate',
      fields: { mode: ENUM, reason: INT },
      // "mode=%s reason=%s"
      print: (e, _p, profile) =>
        `mode=${migrateModeName(num(e.mode))} reason=${reasonName(e.reason, profile)}`,
    },
  ],
  [
    'mm_migrate_pages',
    {
      system: 'migrate',
      fields: MIGRATE_PAGES_FIELDS,
      // v4.8: succeeded, failed, mode, reason; the thp_* fields came in 5.x (v6.0 here),
      // large_folio_split in 6.7 (v6.17).
      fieldsFor: (profile) => {
        if (!profile.tracepointsV6)
          return { fields: { succeeded: ULONG, failed: ULONG, mode: ENUM, reason: INT } };
        if (profile.migrateTraceNrSplit) return { fields: MIGRATE_PAGES_FIELDS };
        const { large_folio_split: _, ...fields } = MIGRATE_PAGES_FIELDS;
        return { fields };
      },
      // "nr_succeeded=%lu nr_failed=%lu nr_thp_succeeded=%lu nr_thp_failed=%lu
      //  nr_thp_split=%lu [nr_split=%lu (6.7+)] mode=%s reason=%s" (6.x; v4.8 has no THP
      //  fields)
      print: (e, _p, profile) =>
        profile && !profile.tracepointsV6
          ? formatMigratePagesV48(
              {
                succeeded: num(e.succeeded),
                failed: num(e.failed),
                mode: num(e.mode),
                reason: num(e.reason),
              },
              profile.migrateReasons,
            )
          : `nr_succeeded=${num(e.succeeded)} nr_failed=${num(e.failed)} nr_thp_succeeded=${num(e.thp_succeeded)} ` +
            `nr_thp_failed=${num(e.thp_failed)} nr_thp_split=${num(e.thp_split)} ` +
            (profile?.migrateTraceNrSplit ? `nr_split=${num(e.large_folio_split)} ` : '') +
            `mode=${migrateModeName(num(e.mode))} reason=${reasonName(e.reason, profile)}`,
    },
  ],
]);

/** A compact_priority as `profile`'s release numbers it (mops numbers them as 6.x does). */
function prioOf(e: Readonly<Record<string, unknown>>, profile: Profile): number {
  return num(e.prio) - (profile.compaction.hasSyncFull ? 0 : 1);
}

/** The compaction events' TP_printk formats (include/trace/events/compaction.h). */
function compactionFormats(): [string, FtraceEventFormat][] {
  const isolate: FtraceEventFormat = {
    system: 'compaction',
    fields: { start_pfn: ULONG, end_pfn: ULONG, nr_scanned: ULONG, nr_taken: ULONG },
    // "range=(0x%lx ~ 0x%lx) nr_scanned=%lu nr_taken=%lu"
    print: (e) =>
      `range=(0x${hex(num(e.start_pfn))} ~ 0x${hex(num(e.end_pfn))}) nr_scanned=${num(e.nr_scanned)} nr_taken=${num(e.nr_taken)}`,
  };
  const range = (e: Readonly<Record<string, unknown>>): string =>
    `zone_start=0x${hex(num(e.zone_start))} migrate_pfn=0x${hex(num(e.migrate_pfn))} free_pfn=0x${hex(num(e.free_pfn))} zone_end=0x${hex(num(e.zone_end))}, mode=${num(e.sync) ? 'sync' : 'async'}`;
  const begin = {
    zone_start: ULONG,
    migrate_pfn: ULONG,
    free_pfn: ULONG,
    zone_end: ULONG,
    sync: BOOL,
  } as const;
  const suitable: FtraceEventFormat = {
    system: 'compaction',
    fields: { nid: INT, idx: ENUM, order: INT, ret: INT },
    // "node=%d zone=%-8s order=%d ret=%s"
    print: (e, _p, profile) =>
      `node=${num(e.nid)} zone=${ZONE_NAMES[num(e.idx)].padEnd(8)} order=${num(e.order)} ret=${compactResultName(num(e.ret), profile)}`,
  };
  // kcompactd_wake_template: "nid=%d order=%d classzone_idx=%-8s"; the field is
  // highest_zoneidx since 5.8, classzone_idx before (v4.8).
  const wake: FtraceEventFormat = {
    system: 'compaction',
    fields: { nid: INT, order: INT, highest_zoneidx: ENUM },
    fieldsFor: (profile): FtraceFieldSet =>
      profile.tracepointsV6
        ? { fields: { nid: INT, order: INT, highest_zoneidx: ENUM } }
        : {
            fields: { nid: INT, order: INT, classzone_idx: ENUM },
            payloadKeys: { classzone_idx: 'highest_zoneidx' },
          },
    print: (e) =>
      `nid=${num(e.nid)} order=${num(e.order)} classzone_idx=${ZONE_NAMES[num(e.highest_zoneidx)].padEnd(8)}`,
  };
  // mm_compaction_defer_template:
  // "node=%d zone=%-8s order=%d order_failed=%d consider=%u limit=%lu"
  const defer: FtraceEventFormat = {
    system: 'compaction',
    fields: {
      nid: INT,
      idx: ENUM,
      order: INT,
      considered: UINT,
      defer_shift: UINT,
      order_failed: INT,
    },
    print: (e) =>
      `node=${num(e.nid)} zone=${ZONE_NAMES[num(e.idx)].padEnd(8)} order=${num(e.order)} order_failed=${num(e.order_failed)} consider=${num(e.considered)} limit=${2 ** num(e.defer_shift)}`,
  };
  return [
    ['mm_compaction_isolate_migratepages', isolate],
    ['mm_compaction_isolate_freepages', isolate],
    ['mm_compaction_fast_isolate_freepages', isolate],
    [
      'mm_compaction_migratepages',
      {
        system: 'compaction',
        fields: { nr_migrated: ULONG, nr_failed: ULONG },
        print: (e) => `nr_migrated=${num(e.nr_migrated)} nr_failed=${num(e.nr_failed)}`,
      },
    ],
    ['mm_compaction_begin', { system: 'compaction', fields: begin, print: range }],
    [
      'mm_compaction_end',
      {
        system: 'compaction',
        fields: { ...begin, status: INT },
        print: (e, _p, profile) =>
          `${range(e)} status=${compactResultName(num(e.status), profile)}`,
      },
    ],
    [
      'mm_compaction_try_to_compact_pages',
      {
        system: 'compaction',
        fields: TRY_TO_COMPACT_FIELDS,
        // v4.8 stores the mask in that release's bit layout, in a gfp_t, and the priority
        // in its enum compact_priority (SYNC_LIGHT 0, ASYNC 1, no SYNC_FULL): a filter
        // tests those.
        fieldsFor: (profile) =>
          profile.tracepointsV6
            ? undefined
            : {
                fields: { ...TRY_TO_COMPACT_FIELDS, gfp_mask: GFP_T },
                values: {
                  gfp_mask: (e) => gfpMaskV4_8(num(e.gfp_mask)),
                  prio: (e) => prioOf(e, profile),
                },
              },
        // "order=%d gfp_mask=%s priority=%d" (v4.8: "gfp_mask=0x%x")
        print: (e, _p, profile) =>
          profile && !profile.tracepointsV6
            ? `order=${num(e.order)} gfp_mask=0x${hex(gfpMaskV4_8(num(e.gfp_mask)))} priority=${prioOf(e, profile)}`
            : `order=${num(e.order)} gfp_mask=${showGfpFlags(num(e.gfp_mask), profile)} priority=${num(e.prio)}`,
      },
    ],
    ['mm_compaction_suitable', suitable],
    ['mm_compaction_finished', suitable],
    ['mm_compaction_wakeup_kcompactd', wake],
    ['mm_compaction_kcompactd_wake', wake],
    [
      'mm_compaction_kcompactd_sleep',
      {
        system: 'compaction',
        fields: { nid: INT },
        // "nid=%d"
        print: (e) => `nid=${num(e.nid)}`,
      },
    ],
    ['mm_compaction_deferred', defer],
    ['mm_compaction_defer_compaction', defer],
    ['mm_compaction_defer_reset', defer],
  ];
}

/**
 * Registers (or replaces) the ftrace format of an event, so the recorder can print and
 * filter it. Layers that add an event to `TraceEvents` register its `TP_printk` here.
 */
export function registerFtraceFormat(name: string, format: FtraceEventFormat): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(name))
    throw new MopsError(
      'E_USAGE',
      `ftrace event name '${name}' is not a kernel event name`,
      'name',
    );
  FORMATS.set(name, format);
}

/**
 * The fields a filter may name for an event in `profile`'s release (the 6.x fields without
 * a profile), or undefined for an event without a registered format.
 */
export function ftraceFields(name: string, profile?: Profile): FtraceFieldSet | undefined {
  const f = FORMATS.get(name);
  if (!f) return undefined;
  return (profile && f.fieldsFor?.(profile)) || { fields: f.fields };
}

/** The ftrace format of an event, if one is registered. */
export function ftraceFormat(name: string): FtraceEventFormat | undefined {
  return FORMATS.get(name);
}

/** Names of the events with a registered ftrace format. */
export function ftraceEventNames(): string[] {
  return [...FORMATS.keys()];
}
