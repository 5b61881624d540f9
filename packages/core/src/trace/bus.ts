/**
 * The tracepoint bus: a typed eventemitter3 map keyed by kernel event names, with the
 * kernel's field names (include/trace/events/*.h). Events are emitted after the state
 * change they report is complete, except where the kernel fires one before it
 * (`mm_page_free`); a throwing listener never breaks the VM.
 *
 * Emitting sites test {@link TraceBus.enabled} first, so a tracepoint nobody listens to
 * costs one property read, like the kernel's static keys:
 *
 * ```ts
 * if (bus.enabled.mm_page_alloc) bus.fire('mm_page_alloc', { pfn, order, gfp_flags, migratetype });
 * ```
 * @module
 */

import { EventEmitter } from 'eventemitter3';

/** `mm_page_alloc` (include/trace/events/kmem.h). */
export interface MmPageAlloc {
  /** First pfn of the block (-1 when the allocation failed; ftrace then prints a NULL page). */
  pfn: number;
  /** Allocation order. */
  order: number;
  /** gfp mask. */
  gfp_flags: number;
  /** Migrate type of the request. */
  migratetype: number;
}

/**
 * `mm_page_alloc_zone_locked` (include/trace/events/kmem.h, the `mm_page` class): a block
 * taken from the buddy free lists under the zone lock. Where it fires and what percpu_refill
 * holds differ by release (the profile's `zoneLockedTrace`).
 */
export interface MmPageAllocZoneLocked {
  /** First pfn of the block; -1 (a NULL page) when v4.8's __rmqueue() found none. */
  pfn: number;
  /** Order of the request. */
  order: number;
  /** Migrate type: of the list taken from (6.x) or of the request (v4.8). */
  migratetype: number;
  /**
   * 6.x: `pcp_allowed_order(order) && migratetype < MIGRATE_PCPTYPES`, 0 or 1. v4.8 has no
   * such field and prints `order == 0` in its place, which is the value given here.
   */
  percpu_refill: number;
}

/**
 * `mm_page_free` (include/trace/events/kmem.h). Fired where free_pages_prepare() fires it:
 * first, before the bad-page checks (a bad page is traced, then leaked) and before the block
 * reaches the free lists.
 */
export interface MmPageFree {
  /** First pfn of the block. */
  pfn: number;
  /** Order of the block. */
  order: number;
}

/**
 * `mm_page_alloc_extfrag` (include/trace/events/kmem.h): an allocation fell back to a free
 * block of another migrate type.
 */
export interface MmPageAllocExtfrag {
  /** First pfn of the block taken from the fallback list. */
  pfn: number;
  /** Order of the allocation. */
  alloc_order: number;
  /** Order of the fallback block that was taken (or split). */
  fallback_order: number;
  /** Migrate type the allocation asked for. */
  alloc_migratetype: number;
  /** Migrate type of the free list the block came from. */
  fallback_migratetype: number;
  /**
   * 1 when the pageblock now has the allocation's migrate type (the block was claimed), else
   * 0: the kernel computes `alloc_migratetype == get_pageblock_migratetype(page)`.
   */
  change_ownership: number;
}

/** `mm_migrate_pages_start` (include/trace/events/migrate.h; v6.0+). */
export interface MmMigratePagesStart {
  /** `enum migrate_mode`. */
  mode: number;
  /** `enum migrate_reason`. */
  reason: number;
}

/** `mm_migrate_pages` (include/trace/events/migrate.h). */
export interface MmMigratePages {
  /** Base pages migrated. */
  succeeded: number;
  /** Base pages that failed (as counted in pgmigrate_fail). */
  failed: number;
  /** THPs migrated (v6.0+; mops migrates no THP: 0). */
  thp_succeeded: number;
  /** THPs that failed. */
  thp_failed: number;
  /** THPs split. */
  thp_split: number;
  /** Large folios split (printed as `nr_split` from 6.7, v6.17 here; mops splits none: 0). */
  large_folio_split: number;
  /** `enum migrate_mode`. */
  mode: number;
  /** `enum migrate_reason`. */
  reason: number;
}

/** `mm_compaction_isolate_migratepages` / `_isolate_freepages` (compaction.h). */
export interface MmCompactionIsolate {
  /** First pfn scanned. */
  start_pfn: number;
  /** Where the scan stopped. */
  end_pfn: number;
  /** Pages scanned. */
  nr_scanned: number;
  /** Pages isolated. */
  nr_taken: number;
}

/** `mm_compaction_migratepages`. */
export interface MmCompactionMigratepages {
  /** Pages migrated. */
  nr_migrated: number;
  /** Pages not migrated. */
  nr_failed: number;
}

/** `mm_compaction_begin`. */
export interface MmCompactionBegin {
  /** Zone start pfn. */
  zone_start: number;
  /** Migrate scanner start. */
  migrate_pfn: number;
  /** Free scanner start. */
  free_pfn: number;
  /** Zone end pfn. */
  zone_end: number;
  /** 1 for a sync mode, 0 for async. */
  sync: number;
}

/** `mm_compaction_end`. */
export interface MmCompactionEnd extends MmCompactionBegin {
  /** The compact_result. */
  status: number;
}

/** `mm_compaction_try_to_compact_pages`. */
export interface MmCompactionTryToCompactPages {
  /** Requested order. */
  order: number;
  /** gfp mask. */
  gfp_mask: number;
  /** compact_priority. */
  prio: number;
}

/** `mm_compaction_suitable` / `mm_compaction_finished`. */
export interface MmCompactionSuitable {
  /** Node id. */
  nid: number;
  /** Zone index. */
  idx: number;
  /** Order. */
  order: number;
  /** The compact_result. */
  ret: number;
}

/** `mm_compaction_wakeup_kcompactd`. */
export interface MmCompactionWakeupKcompactd {
  /** Node id. */
  nid: number;
  /** Order. */
  order: number;
  /** Highest zone index (printed as classzone_idx). */
  highest_zoneidx: number;
}

/** `mm_compaction_deferred` / `_defer_compaction` / `_defer_reset`. */
export interface MmCompactionDefer {
  /** Node id. */
  nid: number;
  /** Zone index. */
  idx: number;
  /** Order. */
  order: number;
  /** compact_considered. */
  considered: number;
  /** compact_defer_shift. */
  defer_shift: number;
  /** compact_order_failed. */
  order_failed: number;
}

/** `mm_compaction_kcompactd_sleep`. */
export interface MmCompactionKcompactdSleep {
  /** Node id. */
  nid: number;
}

/** The events of the bus, by kernel name. Later layers add their events here. */
export interface TraceEvents {
  /** The migrate scanner finished a block. */
  mm_compaction_isolate_migratepages: (e: MmCompactionIsolate) => void;
  /** The free scanner finished a block. */
  mm_compaction_isolate_freepages: (e: MmCompactionIsolate) => void;
  /** fast_isolate_freepages() finished its free-list search (v6.17). */
  mm_compaction_fast_isolate_freepages: (e: MmCompactionIsolate) => void;
  /** compact_zone's migrate_pages returned. */
  mm_compaction_migratepages: (e: MmCompactionMigratepages) => void;
  /** compact_zone starts. */
  mm_compaction_begin: (e: MmCompactionBegin) => void;
  /** compact_zone ends. */
  mm_compaction_end: (e: MmCompactionEnd) => void;
  /** Direct compaction starts. */
  mm_compaction_try_to_compact_pages: (e: MmCompactionTryToCompactPages) => void;
  /** compaction_suitable decided. */
  mm_compaction_suitable: (e: MmCompactionSuitable) => void;
  /** compact_finished decided. */
  mm_compaction_finished: (e: MmCompactionSuitable) => void;
  /** kswapd woke kcompactd. */
  mm_compaction_wakeup_kcompactd: (e: MmCompactionWakeupKcompactd) => void;
  /** kcompactd starts the work it was woken for. */
  mm_compaction_kcompactd_wake: (e: MmCompactionWakeupKcompactd) => void;
  /** kcompactd goes to sleep. */
  mm_compaction_kcompactd_sleep: (e: MmCompactionKcompactdSleep) => void;
  /** compaction_deferred() skipped a zone. */
  mm_compaction_deferred: (e: MmCompactionDefer) => void;
  /** defer_compaction() after a failure. */
  mm_compaction_defer_compaction: (e: MmCompactionDefer) => void;
  /** compaction_defer_reset() after a success. */
  mm_compaction_defer_reset: (e: MmCompactionDefer) => void;
  /** migrate_pages() starts (v6.0+). */
  mm_migrate_pages_start: (e: MmMigratePagesStart) => void;
  /** migrate_pages() ends. */
  mm_migrate_pages: (e: MmMigratePages) => void;
  /** A block was allocated. */
  mm_page_alloc: (e: MmPageAlloc) => void;
  /** A block was freed to the buddy allocator. */
  mm_page_free: (e: MmPageFree) => void;
  /** An allocation stole from another migrate type's free list. */
  mm_page_alloc_extfrag: (e: MmPageAllocExtfrag) => void;
  /** A block was taken from the buddy free lists under the zone lock. */
  mm_page_alloc_zone_locked: (e: MmPageAllocZoneLocked) => void;
}

/** Names of the events on the bus. */
export type TraceEventName = keyof TraceEvents;

/** The payload type of event `K`. */
export type TraceEventPayload<K extends TraceEventName> = Parameters<TraceEvents[K]>[0];

/**
 * One flag per event of {@link TraceEvents}, all false: the shape of {@link TraceBus.enabled}.
 * Whoever adds an event to the map adds its field here too (the compiler checks it). A class
 * with its fields declared keeps the object in V8's fast mode whatever the number of events
 * (an object literal grown key by key past a dozen keys becomes a dictionary), so the
 * hot-path reads stay monomorphic loads.
 */
class TraceEnabled implements Record<TraceEventName, boolean> {
  mm_page_alloc = false;
  mm_page_free = false;
  mm_page_alloc_extfrag = false;
  mm_page_alloc_zone_locked = false;
  mm_migrate_pages_start = false;
  mm_migrate_pages = false;
  mm_compaction_isolate_migratepages = false;
  mm_compaction_isolate_freepages = false;
  mm_compaction_fast_isolate_freepages = false;
  mm_compaction_migratepages = false;
  mm_compaction_begin = false;
  mm_compaction_end = false;
  mm_compaction_try_to_compact_pages = false;
  mm_compaction_suitable = false;
  mm_compaction_finished = false;
  mm_compaction_wakeup_kcompactd = false;
  mm_compaction_kcompactd_wake = false;
  mm_compaction_kcompactd_sleep = false;
  mm_compaction_deferred = false;
  mm_compaction_defer_compaction = false;
  mm_compaction_defer_reset = false;
}

/** Every event name of {@link TraceEvents}, at run time. */
export const TRACE_EVENT_NAMES: readonly TraceEventName[] = Object.keys(
  new TraceEnabled(),
) as TraceEventName[];

/** eventemitter3's stored listener record (`EE` in its index.js). */
interface StoredListener {
  fn: (e: unknown) => void;
  context: unknown;
  once: boolean;
}

/** Listener type of event `K` as eventemitter3 declares it. */
type Listener<K extends TraceEventName> = EventEmitter.EventListener<TraceEvents, K>;

/** A copy of a {@link TraceBus}'s listeners ({@link TraceBus.listenerTable}). */
export interface ListenerTable {
  /** Each event's listener records, as eventemitter3 keeps them. */
  readonly events: Readonly<Record<string, unknown>>;
  /** How many events had listeners. */
  readonly count: number;
}

/** eventemitter3's listener table (5.x): per event, one listener record or an array of them. */
interface EmitterInternals {
  _events: Record<string, unknown>;
  _eventsCount: number;
}

/** A machine's tracepoint bus. */
export class TraceBus extends EventEmitter<TraceEvents> {
  /** Errors thrown by listeners, kept (not rethrown) so the VM goes on. */
  readonly listenerErrors: { event: string; error: unknown }[] = [];

  /**
   * Whether each event has at least one listener, kept in sync by `on`, `once`, `off` and
   * `removeAllListeners`. Emitting sites read it before building a payload. Treat it as
   * read-only.
   */
  readonly enabled: Record<TraceEventName, boolean>;

  constructor() {
    super();
    this.enabled = new TraceEnabled();
  }

  /**
   * A copy of the listener table: every listener record of every event (its function, its
   * `this` and whether it is a `once`), for {@link removeListenersAddedSince}.
   * @returns the copy (opaque)
   */
  listenerTable(): ListenerTable {
    const self = this as unknown as EmitterInternals;
    const events: Record<string, unknown> = {};
    for (const k of Object.keys(self._events)) {
      const v = self._events[k];
      events[k] = Array.isArray(v) ? [...v] : v;
    }
    return { events, count: self._eventsCount };
  }

  /**
   * Removes every listener added since {@link listenerTable} took `table` (each `on` or
   * `once` call's own record: a function added again, with or without another `this`,
   * included). Those removed since stay removed: a `once` listener that fired is used up.
   * @param table the copy
   */
  removeListenersAddedSince(table: ListenerTable): void {
    const self = this as unknown as EmitterInternals;
    let count = 0;
    for (const k of Object.keys(self._events)) {
      const was = table.events[k];
      const before = new Set(Array.isArray(was) ? was : was === undefined ? [] : [was]);
      const now = self._events[k];
      const kept = (Array.isArray(now) ? now : [now]).filter((r) => before.has(r));
      if (kept.length === 0) delete self._events[k];
      else {
        self._events[k] = kept.length === 1 ? kept[0] : kept;
        count++;
      }
    }
    self._eventsCount = count;
    this.sync();
  }

  /** Recomputes {@link enabled} for one event, or for all when `name` is undefined. */
  private sync(name?: TraceEventName): void {
    if (name !== undefined) {
      this.enabled[name] = this.listenerCount(name) > 0;
      return;
    }
    for (const key of Object.keys(this.enabled) as TraceEventName[])
      this.enabled[key] = this.listenerCount(key) > 0;
  }

  /** Adds a listener (eventemitter3 `on`) and marks the event enabled. */
  override on<K extends TraceEventName>(event: K, fn: Listener<K>, context?: unknown): this {
    super.on(event, fn, context);
    this.enabled[event] = true;
    return this;
  }

  /** Alias of {@link on}. */
  override addListener<K extends TraceEventName>(
    event: K,
    fn: Listener<K>,
    context?: unknown,
  ): this {
    return this.on(event, fn, context);
  }

  /** Adds a one-shot listener and marks the event enabled. */
  override once<K extends TraceEventName>(event: K, fn: Listener<K>, context?: unknown): this {
    super.once(event, fn, context);
    this.enabled[event] = true;
    return this;
  }

  /** Removes listeners (eventemitter3 semantics) and updates {@link enabled}. */
  override removeListener<K extends TraceEventName>(
    event: K,
    fn?: Listener<K>,
    context?: unknown,
    once?: boolean,
  ): this {
    super.removeListener(event, fn, context, once);
    this.sync(event);
    return this;
  }

  /** Alias of {@link removeListener}. */
  override off<K extends TraceEventName>(
    event: K,
    fn?: Listener<K>,
    context?: unknown,
    once?: boolean,
  ): this {
    return this.removeListener(event, fn, context, once);
  }

  /** Removes every listener of `event`, or of all events, and updates {@link enabled}. */
  override removeAllListeners(event?: TraceEventName): this {
    super.removeAllListeners(event);
    this.sync(event);
    return this;
  }

  /**
   * Emits `name` to each listener in turn; a listener that throws is recorded in
   * {@link listenerErrors} and the others still run. One-shot listeners are removed before
   * they run, as eventemitter3's `emit` does. Returns false when nobody listens.
   */
  fire<K extends TraceEventName>(name: K, payload: TraceEventPayload<K>): boolean {
    // eventemitter3 keeps one record or an array of records per event; reading them avoids
    // the array `listeners()` builds and keeps each listener's context and once flag.
    const key = EventEmitter.prefixed ? `${EventEmitter.prefixed}${name}` : name;
    const stored = (this as unknown as { _events: Record<string, unknown> })._events[key] as
      | StoredListener
      | StoredListener[]
      | undefined;
    if (stored === undefined) return false;
    if (!Array.isArray(stored)) {
      this.call(name, stored, payload);
      return true;
    }
    // removeListener builds a new array, so this one stays intact while listeners run.
    const n = stored.length;
    for (let i = 0; i < n; i++) this.call(name, stored[i], payload);
    return true;
  }

  private call(name: TraceEventName, l: StoredListener, payload: unknown): void {
    if (l.once) this.removeListener(name, l.fn as Listener<typeof name>, undefined, true);
    try {
      l.fn.call(l.context, payload);
    } catch (error) {
      this.listenerErrors.push({ event: name, error });
    }
  }
}
