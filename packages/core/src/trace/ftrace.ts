/**
 * ftrace text output (kernel/trace/trace_output.c): each event rendered as a line of the
 * `trace` file, with the kernel's `TP_printk` format for its body, and a recorder that
 * collects such lines from a machine's {@link TraceBus}.
 *
 * ```text
 *             mops-0       [000] .....     0.000000: mm_page_alloc: page=ffffea0000040000 pfn=0x1000 order=0 migratetype=0 gfp_flags=GFP_KERNEL
 * ```
 * @module
 */

import { HZ } from '../clock.js';
import { COMPACT, COMPACT_STATUS } from '../compaction/types.js';
import { MopsError } from '../errors.js';
import type { Machine } from '../machine.js';
import { pageblock_order, ZONE_NAMES } from '../memory/constants.js';
import { formatMigratePagesV48 } from '../migrate/trace.js';
import { MIGRATE_MODE_NAMES, MR_NAMES } from '../migrate/types.js';
import type { Profile } from '../profile.js';
import { TRACE_EVENT_NAMES, type TraceBus, type TraceEventName } from './bus.js';
import {
  compileTraceFilter,
  type FilterFn,
  type FilterSchema,
  filterFields,
  parseTraceFilter,
} from './filter.js';
import { showGfpFlags } from './gfp_names.js';

/** How `%p` of a `struct page *` is printed. */
export type PointerStyle = 'raw' | 'hashed';

/**
 * One event's ftrace description: its `TP_STRUCT__entry` fields (what a filter may name)
 * and its `TP_printk` output.
 */
export interface FtraceEventFormat {
  /** `TRACE_SYSTEM` (`kmem`, `compaction`, `migrate`, …). */
  readonly system: string;
  /** The record's fields and their types. */
  readonly fields: FilterSchema;
  /** The `TP_printk` text for one payload; `profile` for formats that differ by release. */
  print(
    payload: Readonly<Record<string, unknown>>,
    pointers: PointerStyle,
    profile?: Profile,
  ): string;
}

/** x86-64 `vmemmap_base` without KASLR: where `struct page` of pfn 0 lives. */
const VMEMMAP_BASE = 0xffffea0000000000n;
/** sizeof(struct page) on x86-64. */
const STRUCT_PAGE_SIZE = 64n;

/**
 * `%p` of `pfn_to_page(pfn)`: the struct page address in the vmemmap (`'raw'`, what the
 * `hash-ptr` trace option off prints), or a stable 32-bit hash of it zero-padded to 16
 * digits (`'hashed'`, the shape the kernel prints by default; the kernel's hash is keyed
 * by a boot-time random number, so the digits differ). A negative pfn is a NULL page.
 */
export function pagePointer(pfn: number, style: PointerStyle = 'raw'): string {
  if (pfn < 0) return '0000000000000000';
  const addr = VMEMMAP_BASE + BigInt(pfn) * STRUCT_PAGE_SIZE;
  if (style === 'raw') return addr.toString(16).padStart(16, '0');
  // FNV-1a over the address bytes: deterministic, so runs stay byte-for-byte repeatable.
  let h = 0x811c9dc5;
  let a = addr;
  for (let i = 0; i < 8; i++) {
    h ^= Number(a & 0xffn);
    h = Math.imul(h, 0x01000193) >>> 0;
    a >>= 8n;
  }
  return h.toString(16).padStart(16, '0');
}

/** A compact_result as the compaction tracepoints print it (v4.8 calls success "partial"). */
function statusName(ret: number, profile: Profile | undefined): string {
  if (ret === COMPACT.SUCCESS && profile) return profile.compaction.successName;
  return COMPACT_STATUS[ret];
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number(v ?? 0);
}

function hex(v: number): string {
  return Math.max(0, v).toString(16);
}

const FORMATS = new Map<string, FtraceEventFormat>([
  [
    'mm_page_alloc',
    {
      system: 'kmem',
      fields: { pfn: 'num', order: 'num', gfp_flags: 'num', migratetype: 'num' },
      // "page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s"
      print: (e, p) =>
        `page=${pagePointer(num(e.pfn), p)} pfn=0x${hex(num(e.pfn))} order=${num(e.order)} ` +
        `migratetype=${num(e.migratetype)} gfp_flags=${showGfpFlags(num(e.gfp_flags))}`,
    },
  ],
  [
    'mm_page_free',
    {
      system: 'kmem',
      fields: { pfn: 'num', order: 'num' },
      // "page=%p pfn=0x%lx order=%d"
      print: (e, p) =>
        `page=${pagePointer(num(e.pfn), p)} pfn=0x${hex(num(e.pfn))} order=${num(e.order)}`,
    },
  ],
  [
    'mm_page_alloc_extfrag',
    {
      system: 'kmem',
      fields: {
        pfn: 'num',
        alloc_order: 'num',
        fallback_order: 'num',
        alloc_migratetype: 'num',
        fallback_migratetype: 'num',
        change_ownership: 'num',
      },
      // "page=%p pfn=0x%lx alloc_order=%d fallback_order=%d pageblock_order=%d
      //  alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d change_ownership=%d"
      print: (e, p) =>
        `page=${pagePointer(num(e.pfn), p)} pfn=0x${hex(num(e.pfn))} ` +
        `alloc_order=${num(e.alloc_order)} fallback_order=${num(e.fallback_order)} ` +
        `pageblock_order=${pageblock_order} alloc_migratetype=${num(e.alloc_migratetype)} ` +
        `fallback_migratetype=${num(e.fallback_migratetype)} ` +
        `fragmenting=${num(e.fallback_order) < pageblock_order ? 1 : 0} ` +
        `change_ownership=${num(e.change_ownership) ? 1 : 0}`,
    },
  ],
  ...compactionFormats(),
  [
    'mm_migrate_pages_start',
    {
      system: 'migrate',
      fields: { mode: 'num', reason: 'num' },
      // "mode=%s reason=%s"
      print: (e) => `mode=${MIGRATE_MODE_NAMES[num(e.mode)]} reason=${MR_NAMES[num(e.reason)]}`,
    },
  ],
  [
    'mm_migrate_pages',
    {
      system: 'migrate',
      fields: {
        succeeded: 'num',
        failed: 'num',
        thp_succeeded: 'num',
        thp_failed: 'num',
        thp_split: 'num',
        mode: 'num',
        reason: 'num',
      },
      // "nr_succeeded=%lu nr_failed=%lu nr_thp_succeeded=%lu nr_thp_failed=%lu
      //  nr_thp_split=%lu mode=%s reason=%s" (6.x; v4.8 has no THP fields)
      print: (e, _p, profile) =>
        profile && !profile.tracepointsV6
          ? formatMigratePagesV48({
              succeeded: num(e.succeeded),
              failed: num(e.failed),
              mode: num(e.mode),
              reason: num(e.reason),
            })
          : `nr_succeeded=${num(e.succeeded)} nr_failed=${num(e.failed)} nr_thp_succeeded=${num(e.thp_succeeded)} ` +
            `nr_thp_failed=${num(e.thp_failed)} nr_thp_split=${num(e.thp_split)} ` +
            `mode=${MIGRATE_MODE_NAMES[num(e.mode)]} reason=${MR_NAMES[num(e.reason)]}`,
    },
  ],
]);

/** The compaction events' TP_printk formats (include/trace/events/compaction.h). */
function compactionFormats(): [string, FtraceEventFormat][] {
  const isolate: FtraceEventFormat = {
    system: 'compaction',
    fields: { start_pfn: 'num', end_pfn: 'num', nr_scanned: 'num', nr_taken: 'num' },
    // "range=(0x%lx ~ 0x%lx) nr_scanned=%lu nr_taken=%lu"
    print: (e) =>
      `range=(0x${hex(num(e.start_pfn))} ~ 0x${hex(num(e.end_pfn))}) nr_scanned=${num(e.nr_scanned)} nr_taken=${num(e.nr_taken)}`,
  };
  const range = (e: Readonly<Record<string, unknown>>): string =>
    `zone_start=0x${hex(num(e.zone_start))} migrate_pfn=0x${hex(num(e.migrate_pfn))} free_pfn=0x${hex(num(e.free_pfn))} zone_end=0x${hex(num(e.zone_end))}, mode=${num(e.sync) ? 'sync' : 'async'}`;
  const begin = {
    zone_start: 'num',
    migrate_pfn: 'num',
    free_pfn: 'num',
    zone_end: 'num',
    sync: 'num',
  } as const;
  const suitable: FtraceEventFormat = {
    system: 'compaction',
    fields: { nid: 'num', idx: 'num', order: 'num', ret: 'num' },
    // "node=%d zone=%-8s order=%d ret=%s"
    print: (e, _p, profile) =>
      `node=${num(e.nid)} zone=${ZONE_NAMES[num(e.idx)].padEnd(8)} order=${num(e.order)} ret=${statusName(num(e.ret), profile)}`,
  };
  // kcompactd_wake_template: "nid=%d order=%d classzone_idx=%-8s"
  const wake: FtraceEventFormat = {
    system: 'compaction',
    fields: { nid: 'num', order: 'num', highest_zoneidx: 'num' },
    print: (e) =>
      `nid=${num(e.nid)} order=${num(e.order)} classzone_idx=${ZONE_NAMES[num(e.highest_zoneidx)].padEnd(8)}`,
  };
  // mm_compaction_defer_template:
  // "node=%d zone=%-8s order=%d order_failed=%d consider=%u limit=%lu"
  const defer: FtraceEventFormat = {
    system: 'compaction',
    fields: {
      nid: 'num',
      idx: 'num',
      order: 'num',
      considered: 'num',
      defer_shift: 'num',
      order_failed: 'num',
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
        fields: { nr_migrated: 'num', nr_failed: 'num' },
        print: (e) => `nr_migrated=${num(e.nr_migrated)} nr_failed=${num(e.nr_failed)}`,
      },
    ],
    ['mm_compaction_begin', { system: 'compaction', fields: begin, print: range }],
    [
      'mm_compaction_end',
      {
        system: 'compaction',
        fields: { ...begin, status: 'num' },
        print: (e, _p, profile) => `${range(e)} status=${statusName(num(e.status), profile)}`,
      },
    ],
    [
      'mm_compaction_try_to_compact_pages',
      {
        system: 'compaction',
        fields: { order: 'num', gfp_mask: 'num', prio: 'num' },
        // "order=%d gfp_mask=%s priority=%d" (v4.8: "gfp_mask=0x%x")
        print: (e, _p, profile) =>
          `order=${num(e.order)} gfp_mask=${profile && !profile.tracepointsV6 ? `0x${hex(num(e.gfp_mask))}` : showGfpFlags(num(e.gfp_mask))} priority=${num(e.prio)}`,
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
        fields: { nid: 'num' },
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

/** The ftrace format of an event, if one is registered. */
export function ftraceFormat(name: string): FtraceEventFormat | undefined {
  return FORMATS.get(name);
}

/** Names of the events with a registered ftrace format. */
export function ftraceEventNames(): string[] {
  return [...FORMATS.keys()];
}

/** Fields every event has (`common_*`, and the `CPU`/`COMM` pseudo-fields filters accept). */
export const COMMON_FILTER_FIELDS: FilterSchema = {
  common_pid: 'num',
  common_preempt_count: 'num',
  CPU: 'num',
  cpu: 'num',
  COMM: 'str',
  comm: 'str',
};

/** Who emitted an event and when: the context columns of an ftrace line. */
export interface FtraceContext {
  /** Task name (`comm`; the kernel keeps 15 characters). */
  readonly comm: string;
  /** Task id. */
  readonly pid: number;
  /** CPU number. */
  readonly cpu: number;
  /** Preemption depth (spinlocks held), printed in the fourth flag column. */
  readonly preemptCount?: number;
  /** Timestamp in jiffies (the machine clock). */
  readonly jiffies: number;
  /** The machine's profile, for formats that differ by release (default: the 6.x ones). */
  readonly profile?: Profile;
}

/**
 * The body of an event's line (its `TP_printk` output). Events without a registered format
 * print their fields as `name=value` pairs.
 */
export function ftraceBody(
  name: string,
  payload: Readonly<Record<string, unknown>>,
  pointers: PointerStyle = 'raw',
  profile?: Profile,
): string {
  const f = FORMATS.get(name);
  if (f) return f.print(payload, pointers, profile);
  return Object.entries(payload)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** `" %5lu.%06lu"` of trace_print_time() for a jiffies count. */
export function ftraceTimestamp(jiffies: number): string {
  const usecs = Math.floor((jiffies * 1_000_000) / HZ);
  const secs = Math.floor(usecs / 1_000_000);
  return `${String(secs).padStart(5)}.${String(usecs % 1_000_000).padStart(6, '0')}`;
}

/**
 * One line of the `trace` file (trace_print_context() + the event), without the newline:
 * `"%16s-%-7d [%03d] %s %5lu.%06lu: %s: %s"` with the irq-info columns
 * (irqs-off, need-resched, hard/softirq, preempt-depth, migrate-disable); mops has no
 * interrupts, so only preempt-depth can be set.
 */
export function ftraceLine(
  name: string,
  payload: Readonly<Record<string, unknown>>,
  ctx: FtraceContext,
  pointers: PointerStyle = 'raw',
): string {
  const comm = ctx.comm.slice(0, 15).padStart(16);
  const pid = String(ctx.pid).padEnd(7);
  const cpu = String(ctx.cpu).padStart(3, '0');
  const depth = (ctx.preemptCount ?? 0) & 0xf;
  const flags = `...${depth ? depth.toString(16) : '.'}.`;
  return `${comm}-${pid} [${cpu}] ${flags} ${ftraceTimestamp(ctx.jiffies)}: ${name}: ${ftraceBody(name, payload, pointers, ctx.profile)}`;
}

/**
 * The header of the `trace` file with the irq-info columns (print_trace_header for the nop
 * tracer), ending with a newline.
 */
export function ftraceHeader(entries: number, written: number, cpus: number): string {
  return [
    '# tracer: nop',
    '#',
    `# entries-in-buffer/entries-written: ${entries}/${written}   #P:${cpus}`,
    '#',
    '#                                _-----=> irqs-off/BH-disabled',
    '#                               / _----=> need-resched',
    '#                              | / _---=> hardirq/softirq',
    '#                              || / _--=> preempt-depth',
    '#                              ||| / _-=> migrate-disable',
    '#                              |||| /     delay',
    '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
    '#              | |         |   |||||     |         |',
    '',
  ].join('\n');
}

/** Options of {@link traceRecorder}. */
export interface TraceRecorderOptions {
  /** Events to record (default: every event with a registered format). */
  events?: readonly string[];
  /**
   * A tracefs filter: one expression for all events, or one per event name. A single
   * expression behaves like a subsystem `filter` file: it applies to the events that have
   * every field it names, and the others are recorded unfiltered; it is an error when no
   * recorded event has those fields.
   */
  filter?: string | Readonly<Record<string, string>>;
  /** Keep at most this many lines, dropping the oldest (the ring buffer); default unlimited. */
  limit?: number;
  /** How struct page pointers print (default `'raw'`). */
  pointers?: PointerStyle;
}

/** Lines collected by {@link traceRecorder}. */
export interface TraceRecorder {
  /** The ftrace lines kept, oldest first (no trailing newlines). */
  readonly lines: string[];
  /** Events that passed the filters, including lines dropped by `limit`. */
  readonly written: number;
  /** The `trace` file: header and lines, newline-terminated. */
  text(): string;
  /** Drops the kept lines (like `echo > trace`). */
  clear(): void;
  /** Unsubscribes from the bus; the lines stay. */
  stop(): void;
}

/** Number of CPUs the pagesets and the trace header show (mops's default machine). */
const NR_CPUS = 2;

/**
 * Subscribes to the machine's tracepoints and collects ftrace lines. The task columns come
 * from the scheduler's current task (name, id, CPU, spinlocks held); code running outside
 * any task prints as `mops-0` on CPU 0. The timestamp is the machine clock.
 * Throws MopsError('E_USAGE') for an unknown event or a bad filter.
 */
export function traceRecorder(machine: Machine, options: TraceRecorderOptions = {}): TraceRecorder {
  const names = options.events ?? [...new Set([...TRACE_EVENT_NAMES, ...FORMATS.keys()])];
  for (const n of names)
    if (!FORMATS.has(n))
      throw new MopsError(
        'E_USAGE',
        `trace: no event '${n}'; known events: ${[...FORMATS.keys()].join(', ')}`,
        'events',
      );
  const filters = buildFilters(names, options.filter);
  const pointers = options.pointers ?? 'raw';
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (!(limit > 0))
    throw new MopsError('E_USAGE', `trace: limit must be positive, got ${limit}`, 'limit');
  const lines: string[] = [];
  let written = 0;
  const bus: TraceBus = machine.trace;
  const subs: [TraceEventName, (e: unknown) => void][] = [];
  for (const name of names) {
    const filter = filters.get(name);
    const listener = (payload: unknown): void => {
      const e = payload as Record<string, unknown>;
      const task = machine.sched.current;
      const ctx: FtraceContext = task
        ? {
            comm: task.name,
            pid: task.id,
            cpu: task.cpu,
            preemptCount: task.atomicDepth,
            jiffies: machine.clock.jiffies,
            profile: machine.profile,
          }
        : {
            comm: 'mops',
            pid: 0,
            cpu: 0,
            jiffies: machine.clock.jiffies,
            profile: machine.profile,
          };
      if (filter) {
        const rec = {
          ...e,
          common_pid: ctx.pid,
          common_preempt_count: ctx.preemptCount ?? 0,
          CPU: ctx.cpu,
          cpu: ctx.cpu,
          COMM: ctx.comm,
          comm: ctx.comm,
        };
        if (!filter(rec)) return;
      }
      written++;
      lines.push(ftraceLine(name, e, ctx, pointers));
      if (lines.length > limit) lines.shift();
    };
    const key = name as TraceEventName;
    bus.on(key, listener);
    subs.push([key, listener]);
  }
  return {
    lines,
    get written() {
      return written;
    },
    text: () => ftraceHeader(lines.length, written, NR_CPUS) + lines.map((l) => `${l}\n`).join(''),
    clear: () => {
      lines.length = 0;
    },
    stop: () => {
      for (const [name, l] of subs.splice(0)) bus.off(name, l);
    },
  };
}

function schemaOf(name: string): FilterSchema {
  return { ...COMMON_FILTER_FIELDS, ...(FORMATS.get(name)?.fields ?? {}) };
}

function buildFilters(
  names: readonly string[],
  filter: TraceRecorderOptions['filter'],
): Map<string, FilterFn> {
  const out = new Map<string, FilterFn>();
  if (filter === undefined) return out;
  if (typeof filter === 'string') {
    const tree = parseTraceFilter(filter);
    if (!tree) return out;
    const fields = filterFields(tree);
    let applied = 0;
    for (const n of names) {
      const schema = schemaOf(n);
      if (!fields.every((f) => f in schema)) continue;
      out.set(n, compileTraceFilter(filter, schema));
      applied++;
    }
    // No event has every field: compile against the first to report the missing one.
    if (applied === 0) compileTraceFilter(filter, schemaOf(names[0] ?? ''));
    return out;
  }
  for (const [n, expr] of Object.entries(filter)) {
    if (!names.includes(n))
      throw new MopsError('E_USAGE', `trace: filter for '${n}', which is not recorded`, 'filter');
    out.set(n, compileTraceFilter(expr, schemaOf(n)));
  }
  return out;
}
