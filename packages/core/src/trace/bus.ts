/**
 * The tracepoint bus: a typed eventemitter3 map keyed by kernel event names, with the
 * kernel's field names (include/trace/events/*.h). Events are emitted after the state
 * change they report is complete; a throwing listener never breaks the VM.
 * @module
 */

import { EventEmitter } from 'eventemitter3';

/** `mm_page_alloc` (include/trace/events/kmem.h). */
export interface MmPageAlloc {
  /** First pfn of the block. */
  pfn: number;
  /** Allocation order. */
  order: number;
  /** gfp mask. */
  gfp_flags: number;
  /** Migrate type of the request. */
  migratetype: number;
}

/** `mm_page_free` (include/trace/events/kmem.h). */
export interface MmPageFree {
  /** First pfn of the block. */
  pfn: number;
  /** Order of the block. */
  order: number;
}

/** The events of the bus, by kernel name. Later layers add their events here. */
export interface TraceEvents {
  /** A block was allocated. */
  mm_page_alloc: (e: MmPageAlloc) => void;
  /** A block was freed to the buddy allocator. */
  mm_page_free: (e: MmPageFree) => void;
}

/** Names of the events on the bus. */
export type TraceEventName = keyof TraceEvents;

/** A machine's tracepoint bus. */
export class TraceBus extends EventEmitter<TraceEvents> {
  /** Errors thrown by listeners, kept (not rethrown) so the VM goes on. */
  readonly listenerErrors: { event: string; error: unknown }[] = [];

  /**
   * Emits `name` to each listener in turn; a listener that throws is recorded in
   * {@link listenerErrors} and the others still run. Returns false when nobody listens.
   */
  fire<K extends TraceEventName>(name: K, payload: Parameters<TraceEvents[K]>[0]): boolean {
    const ls = this.listeners(name) as ((e: unknown) => void)[];
    if (ls.length === 0) return false;
    for (const l of ls) {
      try {
        l(payload);
      } catch (error) {
        this.listenerErrors.push({ event: name, error });
      }
    }
    return true;
  }
}
