/**
 * vmstat counters with the kernel's names (mm/vmstat.c): vm events, node stats and zone
 * stats. Counters are Float64Arrays indexed by the position of the name in
 * {@link VM_EVENT_ITEMS} / {@link NODE_STAT_ITEMS} / {@link ZONE_STAT_ITEMS}; hot paths use
 * the precomputed indices.
 * @module
 */

import { MopsError } from '../errors.js';
import { NODE_STAT_ITEMS, VM_EVENT_ITEMS, ZONE_STAT_ITEMS } from './items.js';

/**
 * Name → index. Built in one step (Object.fromEntries): an object grown key by key past a
 * dozen keys becomes a V8 dictionary, and `EV.pgfree` a hash lookup.
 */
function indexOf(names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((n, i) => [n, i]));
}

/** Index of each vm event name. */
export const EV: Readonly<Record<string, number>> = indexOf(VM_EVENT_ITEMS);
/** Index of each node stat name. */
export const NS: Readonly<Record<string, number>> = indexOf(NODE_STAT_ITEMS);
/** Index of each zone stat name. */
export const ZS: Readonly<Record<string, number>> = indexOf(ZONE_STAT_ITEMS);

/** Event and node counters of one machine (one node). */
export class VmStat {
  /** `vm_event_states` summed over CPUs. */
  readonly events: Float64Array;
  /** Node 0's `node_stat_item` values. */
  readonly node: Float64Array;

  constructor() {
    // One buffer for both, so that a snapshot of the counters is one copy.
    const buf = new Float64Array(VM_EVENT_ITEMS.length + NODE_STAT_ITEMS.length).buffer;
    this.events = new Float64Array(buf, 0, VM_EVENT_ITEMS.length);
    this.node = new Float64Array(buf, VM_EVENT_ITEMS.length * 8, NODE_STAT_ITEMS.length);
  }

  /** count_vm_events(item, n) by name. */
  count(name: string, n = 1): void {
    const i = EV[name];
    if (i === undefined) throw new MopsError('E_USAGE', `unknown vm event '${name}'`, 'name');
    this.events[i] += n;
  }

  /** The value of a vm event or node stat by name. */
  get(name: string): number {
    const e = EV[name];
    if (e !== undefined) return this.events[e];
    const n = NS[name];
    if (n !== undefined) return this.node[n];
    throw new MopsError('E_USAGE', `unknown vmstat item '${name}'`, 'name');
  }

  /** mod_node_page_state(item, delta) by name. */
  modNode(name: string, delta: number): void {
    const i = NS[name];
    if (i === undefined) throw new MopsError('E_USAGE', `unknown node stat '${name}'`, 'name');
    this.node[i] += delta;
  }

  /** A copy of every vm event, by name (for deltas in reports). */
  snapshotEvents(): Record<string, number> {
    const out: Record<string, number> = {};
    VM_EVENT_ITEMS.forEach((n, i) => {
      out[n] = this.events[i];
    });
    return out;
  }
}
