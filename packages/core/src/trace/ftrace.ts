/**
 * ftrace text output (kernel/trace/trace_output.c): each event rendered as a line of the
 * `trace` file, with the kernel's `TP_printk` format for its body (see `formats.ts`), and a
 * recorder that collects such lines from a machine's {@link TraceBus}.
 *
 * ```text
 *             mops-0       [000] .....     0.000000: mm_page_alloc: page=ffffea0000040000 pfn=0x1000 order=0 migratetype=0 gfp_flags=GFP_KERNEL
 * ```
 * @module
 */

import { HZ } from '../clock.js';
import { checkMachine, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import type { Profile } from '../profile.js';
import { TRACE_EVENT_NAMES, type TraceBus, type TraceEventName } from './bus.js';
import {
  compileTraceFilter,
  type FilterFn,
  type FilterNode,
  type FilterSchema,
  filterPreds,
  parseTraceFilterFor,
  TraceFilterError,
} from './filter.js';
import { traceNrCpus } from './filter_cpus.js';
import { taskComm } from './filter_pred.js';
import { applySubsystemFilter } from './filter_subsystem.js';
import {
  type FtraceFieldSet,
  ftraceEventNames,
  ftraceFields,
  ftraceFormat,
  type PointerStyle,
} from './formats.js';

/**
 * Events whose tracepoint runs with interrupts disabled in every release mops models: under
 * `zone->lock`, which the allocator takes with spin_lock_irqsave() (or inside
 * local_irq_save(), 4.8's per-CPU refill): __rmqueue()'s and __rmqueue_smallest()'s
 * mm_page_alloc_zone_locked, the fallback's (and 6.17's capture's) mm_page_alloc_extfrag.
 * Their lines print `d` in the irqs-off column and set TRACE_FLAG_IRQS_OFF (0x01) in
 * `common_flags`; the lock also counts in the preempt depth (mops's kernel is preemptible,
 * so its preempt count is kept), one more than the task's own spinlocks.
 */
const IRQS_OFF_EVENTS: ReadonlySet<string> = new Set([
  'mm_page_alloc_zone_locked',
  'mm_page_alloc_extfrag',
]);

/** TRACE_FLAG_IRQS_OFF: the `d` of the irqs-off column. */
const TRACE_FLAG_IRQS_OFF = 0x01;

/**
 * Fields every event has (`common_*`, and the `CPU`/`COMM` pseudo-fields filters accept:
 * `CPU`/`cpu` are of type `cpu`, compared as filter_pred_cpu() compares them).
 * `common_flags` is the TRACE_FLAG_* word behind the irqs-off, need-resched and
 * hardirq/softirq columns: mops models no interrupt handlers, softirqs or resched requests,
 * so only irqs-off is ever set, on the events fired with interrupts disabled (the
 * allocator's, under `zone->lock`); the other columns print `.`. The fourth common
 * field, `common_type`, is the event's id, which the kernel hands out when it registers
 * the event; mops models no event ids, so a filter naming it is a {@link TraceFilterError}
 * (E_USAGE) saying so, rather than a comparison against a made-up number.
 */
export const COMMON_FILTER_FIELDS: FilterSchema = {
  common_flags: 'u8',
  common_pid: 's32',
  common_preempt_count: 'u8',
  CPU: 'cpu',
  cpu: 'cpu',
  COMM: 'comm',
  comm: 'comm',
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
  const f = ftraceFormat(name);
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
 * interrupt handlers, so only irqs-off (the allocator's events under `zone->lock`) and
 * preempt-depth can be set. A v4.8 profile gets that release's layout:
 * `%-5d` pids and no migrate-disable column.
 */
export function ftraceLine(
  name: string,
  payload: Readonly<Record<string, unknown>>,
  ctx: FtraceContext,
  pointers: PointerStyle = 'raw',
): string {
  const old = ctx.profile?.ftraceLayout === '4.x';
  const comm = taskComm(ctx.comm).padStart(16);
  const pid = String(ctx.pid).padEnd(old ? 5 : 7);
  const cpu = String(ctx.cpu).padStart(3, '0');
  const depth = (ctx.preemptCount ?? 0) & 0xf;
  const irqs = IRQS_OFF_EVENTS.has(name) ? 'd' : '.';
  const flags = `${irqs}..${depth ? depth.toString(16) : '.'}${old ? '' : '.'}`;
  return `${comm}-${pid} [${cpu}] ${flags} ${ftraceTimestamp(ctx.jiffies)}: ${name}: ${ftraceBody(name, payload, pointers, ctx.profile)}`;
}

/**
 * The header of the `trace` file with the irq-info columns (print_trace_header for the nop
 * tracer), ending with a newline; the 4.x columns for a v4.8 profile. `cpus` is its `#P:`
 * (num_online_cpus()): a recorder gives its machine's count (see `traceNrCpus`).
 */
export function ftraceHeader(
  entries: number,
  written: number,
  cpus: number,
  profile?: Profile,
): string {
  const top = [
    '# tracer: nop',
    '#',
    `# entries-in-buffer/entries-written: ${entries}/${written}   #P:${cpus}`,
    '#',
  ];
  if (profile?.ftraceLayout === '4.x')
    return [
      ...top,
      '#                              _-----=> irqs-off',
      '#                             / _----=> need-resched',
      '#                            | / _---=> hardirq/softirq',
      '#                            || / _--=> preempt-depth',
      '#                            ||| /     delay',
      '#           TASK-PID   CPU#  ||||    TIMESTAMP  FUNCTION',
      '#              | |       |   ||||       |         |',
      '',
    ].join('\n');
  return [
    ...top,
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
  /**
   * Events to record (default: every event the profile's release has). Naming one it lacks
   * is MopsError('E_USAGE'), as tracefs has no such event.
   */
  events?: readonly string[];
  /**
   * A tracefs filter: one expression for all events, or one per event name, read as the
   * profile's release reads it. One per event behaves like that event's `filter` file. A
   * single expression behaves like a subsystem `filter` file: it applies to the events it
   * fits (they have its fields, of the types it compares), and the others are recorded
   * unfiltered; it is an error, the kernel's "Couldn't find or set field in one of a
   * subsystem's events", when it fits no recorded event (see `applySubsystemFilter`).
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

/**
 * Whether the profile's release has tracepoint `name`: mm_migrate_pages_start is not in
 * v4.8, mm_compaction_fast_isolate_freepages only in v6.17.
 * @param profile the machine's profile (`m.profile`)
 * @param name the event, e.g. `'mm_migrate_pages'`
 * @returns whether tracefs of that release has it
 */
export function profileHasEvent(profile: Profile, name: string): boolean {
  if (name === 'mm_migrate_pages_start') return profile.tracepointsV6;
  if (name === 'mm_compaction_fast_isolate_freepages') return profile.compaction.fastIsolateTraced;
  return true;
}

/**
 * Subscribes to the machine's tracepoints and collects ftrace lines. The task columns come
 * from the scheduler's current task (name, id, CPU, spinlocks held); code running outside
 * any task prints as `mops-0` on CPU 0, and code run as a kernel thread
 * (`Scheduler.asKthread`: kswapd's wakeups of kcompactd as `kswapd0`) under that thread's
 * name, pid and CPU, with preemption on. The timestamp is the machine clock. Record before
 * running: only events fired while subscribed are kept.
 * @param machine the machine (not `m.mem`)
 * @param options the events, filters, line limit and pointer style
 * @returns the recorder: its lines, the `trace` file's text, and `stop()` to unsubscribe
 * @throws {@link MopsError} `E_USAGE` for an unknown event, one the profile's release lacks,
 *   an option of the wrong type or a filter on an event not recorded
 * @throws {@link TraceFilterError} (an `E_USAGE` MopsError) for a filter expression tracefs
 *   would refuse, with the position of the bad token
 */
export function traceRecorder(machine: Machine, options: TraceRecorderOptions = {}): TraceRecorder {
  checkMachine(machine, 'trace');
  checkRecorderOptions(options);
  const profile = machine.profile;
  const names =
    options.events ??
    [...new Set([...TRACE_EVENT_NAMES, ...ftraceEventNames()])].filter((n) =>
      profileHasEvent(profile, n),
    );
  for (const n of names) {
    if (!ftraceFormat(n))
      throw new MopsError(
        'E_USAGE',
        `trace: no event '${n}'; known events: ${ftraceEventNames().join(', ')}`,
        'events',
      );
    // As tracefs has no events/ directory for it.
    if (!profileHasEvent(profile, n))
      throw new MopsError(
        'E_USAGE',
        `trace: ${profile.name} has no event '${n}': the tracepoint came in a later release`,
        'events',
      );
  }
  // nr_cpu_ids for CPUS{…}: the machine's CPU count, as the header's #P: prints it.
  const filters = buildFilters(names, options.filter, machine.profile, traceNrCpus(machine.sched));
  const pointers = options.pointers ?? 'raw';
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const lines: string[] = [];
  let written = 0;
  const bus: TraceBus = machine.trace;
  const subs: [TraceEventName, (e: unknown) => void][] = [];
  for (const name of names) {
    const compiled = filters.get(name);
    const filter = compiled?.fn;
    const payloadKeys = Object.entries(compiled?.payloadKeys ?? {});
    const values = Object.entries(compiled?.values ?? {});
    // zone->lock, taken with interrupts off, is held where these fire.
    const irqsOff = IRQS_OFF_EVENTS.has(name);
    const listener = (payload: unknown): void => {
      const e = payload as Record<string, unknown>;
      // A kernel thread's code run inside a task's work shows as that thread.
      const kthread = machine.sched.kthread;
      const task = kthread ?? machine.sched.current;
      const ctx: FtraceContext = task
        ? {
            comm: task.name,
            pid: task.id,
            cpu: task.cpu,
            preemptCount:
              (kthread ? 0 : (machine.sched.current?.atomicDepth ?? 0)) + (irqsOff ? 1 : 0),
            jiffies: machine.clock.jiffies,
            profile: machine.profile,
          }
        : {
            comm: 'mops',
            pid: 0,
            cpu: 0,
            preemptCount: irqsOff ? 1 : 0,
            jiffies: machine.clock.jiffies,
            profile: machine.profile,
          };
      if (filter) {
        const rec: Record<string, unknown> = {
          ...e,
          common_flags: irqsOff ? TRACE_FLAG_IRQS_OFF : 0, // see COMMON_FILTER_FIELDS
          common_pid: ctx.pid,
          common_preempt_count: ctx.preemptCount ?? 0,
          CPU: ctx.cpu,
          cpu: ctx.cpu,
          COMM: ctx.comm,
          comm: ctx.comm,
        };
        for (const [field, key] of payloadKeys) rec[field] = e[key];
        for (const [field, value] of values) rec[field] = value(e);
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
    text: () =>
      ftraceHeader(lines.length, written, traceNrCpus(machine.sched), machine.profile) +
      lines.map((l) => `${l}\n`).join(''),
    clear: () => {
      lines.length = 0;
    },
    stop: () => {
      for (const [name, l] of subs.splice(0)) bus.off(name, l);
    },
  };
}

/**
 * The fields a filter may name for an event in `profile`'s release: the common ones and the
 * event's own (as that release names them), with the payload keys of renamed fields.
 */
export function ftraceFilterFields(name: string, profile?: Profile): FtraceFieldSet {
  const own = ftraceFields(name, profile);
  return {
    fields: { ...COMMON_FILTER_FIELDS, ...(own?.fields ?? {}) },
    payloadKeys: own?.payloadKeys,
    values: own?.values,
  };
}

/**
 * A compiled filter of one event, the payload keys of its renamed fields and the values of
 * the fields the release stores differently.
 */
interface EventFilter {
  readonly fn: FilterFn;
  readonly payloadKeys?: FtraceFieldSet['payloadKeys'];
  readonly values?: FtraceFieldSet['values'];
}

/** Throws when the filter names `common_type`: event type ids are not modelled. */
function rejectCommonType(node: FilterNode | undefined, expression: string): void {
  const pred = filterPreds(node).find((p) => p.field === 'common_type');
  if (pred)
    throw new TraceFilterError(
      'common_type is not supported: mops does not model event type ids',
      expression,
      pred.at.field,
    );
}

/** E_USAGE for options of {@link traceRecorder} of the wrong type, naming the option. */
function checkRecorderOptions(options: TraceRecorderOptions): void {
  const bad = (field: string, what: string, got: unknown): never => {
    throw new MopsError('E_USAGE', `trace: ${field} must be ${what}, got ${valueKind(got)}`, field);
  };
  if (typeof options !== 'object' || options === null)
    bad('options', 'an object { events, filter, limit, pointers }', options);
  const { events, filter, limit, pointers } = options;
  if (
    events !== undefined &&
    !(Array.isArray(events) && events.every((e) => typeof e === 'string'))
  )
    bad('events', 'an array of event names', events);
  if (
    filter !== undefined &&
    typeof filter !== 'string' &&
    !(
      typeof filter === 'object' &&
      filter !== null &&
      !Array.isArray(filter) &&
      Object.values(filter).every((f) => typeof f === 'string')
    )
  )
    bad('filter', 'an expression, or an object of expressions by event name', filter);
  if (limit !== undefined && !(typeof limit === 'number' && limit > 0))
    bad('limit', 'positive', limit);
  if (pointers !== undefined && pointers !== 'raw' && pointers !== 'hashed')
    bad('pointers', "'raw' or 'hashed'", pointers);
}

/**
 * The compiled filter of each recorded event: one expression applied as a subsystem filter
 * is, or one per event as each event's `filter` file takes it.
 */
function buildFilters(
  names: readonly string[],
  filter: TraceRecorderOptions['filter'],
  profile: Profile,
  nrCpus: number,
): Map<string, EventFilter> {
  if (filter === undefined) return new Map();
  const compile = (n: string, expr: string): EventFilter => {
    const set = ftraceFilterFields(n, profile);
    // common_type is a field of every event: parse with it, then refuse it.
    rejectCommonType(
      parseTraceFilterFor(expr, { ...set.fields, common_type: 'u16' }, profile, nrCpus),
      expr,
    );
    return {
      fn: compileTraceFilter(expr, set.fields, profile, nrCpus),
      payloadKeys: set.payloadKeys,
      values: set.values,
    };
  };
  if (typeof filter === 'string')
    return applySubsystemFilter(
      names,
      filter,
      profile,
      (n) => compile(n, filter),
      (tree) => rejectCommonType(tree, filter),
      nrCpus,
    );
  const out = new Map<string, EventFilter>();
  for (const [n, expr] of Object.entries(filter)) {
    if (!names.includes(n))
      throw new MopsError('E_USAGE', `trace: filter for '${n}', which is not recorded`, 'filter');
    out.set(n, compile(n, expr));
  }
  return out;
}
