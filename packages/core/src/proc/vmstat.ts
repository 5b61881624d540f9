/**
 * `/proc/vmstat` (mm/vmstat.c vmstat_start()).
 * @module
 */

import { freePagesInBlocks } from '../buddy/free_page.js';
import type { Machine } from '../machine.js';
import { MAX_NR_ZONES, PAGE_SIZE } from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { WMARK, type Zone } from '../memory/zone.js';
import {
  VMSTAT_ALIASES,
  VMSTAT_NAMES,
  VMSTAT_UNMODELLED,
  type VmstatRelease,
  vmstatNameList,
} from '../vmstat/releases.js';
import { EV, NS, ZS } from '../vmstat/vmstat.js';
import { ul } from './format.js';

/** vm.dirty_ratio default (percent of dirtyable memory). */
export const VM_DIRTY_RATIO = 20;
/** vm.dirty_background_ratio default. */
export const DIRTY_BACKGROUND_RATIO = 10;
/** Pages per memory section (SECTION_SIZE_BITS 27 on x86-64: 128 MiB). */
export const PAGES_PER_SECTION = 1 << 15;
/** Bytes of `struct page` (the kernel's; mops itself uses less). */
const STRUCT_PAGE_BYTES = 64;

/**
 * One zone's value of a zone stat item: `nr_free_pages` is the zone's free page count,
 * `nr_free_pages_blocks` the free pages in blocks of at least pageblock order, the rest
 * come from `zone.stat`.
 */
export function zoneStatValue(zone: Zone, item: number): number {
  if (item === 0) return zone.nrFreePages;
  if (item === 1) return freePagesInBlocks(zone);
  return zone.stat[item];
}

/**
 * totalreserve_pages (calculate_totalreserve_pages()): per zone, its largest lowmem reserve
 * plus its high watermark, capped at its managed pages. The kernel computes it when the
 * watermarks are set up, where the boost has just been reset to 0, so a later boost does
 * not count.
 */
export function totalreservePages(mem: Memory): number {
  let total = 0;
  const zones = mem.node.zones;
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = zones[i];
    let max = 0;
    for (let j = i; j < MAX_NR_ZONES; j++) if (z.lowmemReserve[j] > max) max = z.lowmemReserve[j];
    max += z.watermark[WMARK.HIGH];
    total += Math.min(max, z.managedPages);
  }
  return total;
}

/**
 * global_dirty_limits() with the default ratios (20 % and 10 %, no `*_bytes` set) over
 * global_dirtyable_memory(): free pages above totalreserve_pages plus the file LRU pages.
 * Returns `[nr_dirty_threshold, nr_dirty_background_threshold]`.
 */
export function dirtyThresholds(mem: Memory): [number, number] {
  const free = mem.nrFreePages();
  let avail = free - Math.min(free, totalreservePages(mem));
  avail += Math.max(0, mem.vmstat.node[NS.nr_inactive_file]);
  avail += Math.max(0, mem.vmstat.node[NS.nr_active_file]);
  avail += 1;
  // The kernel converts the ratios to parts per PAGE_SIZE first, rounding down.
  const ratio = Math.floor((VM_DIRTY_RATIO * PAGE_SIZE) / 100);
  const bgRatio = Math.floor((DIRTY_BACKGROUND_RATIO * PAGE_SIZE) / 100);
  const thresh = Math.floor((ratio * avail) / PAGE_SIZE);
  let bg = Math.floor((bgRatio * avail) / PAGE_SIZE);
  if (bg >= thresh) bg = Math.floor(thresh / 2);
  return [thresh, bg];
}

/**
 * nr_memmap_boot_pages: the pages holding `struct page` (64 bytes each) for every present
 * memory section, allocated at boot with SPARSEMEM_VMEMMAP.
 */
export function memmapBootPages(mem: Memory): number {
  const sections = new Set<number>();
  for (const z of mem.populatedZones) {
    const start = z.zoneStartPfn;
    const end = start + z.presentPages;
    for (let s = Math.floor(start / PAGES_PER_SECTION); s * PAGES_PER_SECTION < end; s++)
      sections.add(s);
  }
  return (sections.size * PAGES_PER_SECTION * STRUCT_PAGE_BYTES) / PAGE_SIZE;
}

/** Where a printed item's value comes from. */
const SRC = {
  ZONE: 0,
  NODE: 1,
  EVENT: 2,
  DIRTY: 3,
  DIRTY_BG: 4,
  MEMMAP_BOOT: 5,
  ZERO: 6,
} as const;

/**
 * The items computed when the file is read (`enum vm_stat_item`); nr_memmap_pages (memmap
 * allocated after boot, by memory hotplug) is always 0 here.
 */
const COMPUTED: Readonly<Record<string, number>> = {
  nr_dirty_threshold: SRC.DIRTY,
  nr_dirty_background_threshold: SRC.DIRTY_BG,
  nr_memmap_pages: SRC.ZERO,
  nr_memmap_boot_pages: SRC.MEMMAP_BOOT,
};

/** A release's /proc/vmstat: its names in order, each with its value's source and index. */
export interface VmstatLayout {
  readonly names: readonly string[];
  readonly src: Uint8Array;
  readonly index: Int32Array;
}

const layouts = new Map<VmstatRelease, VmstatLayout>();

/**
 * The layout of a release's /proc/vmstat. Each name is read from the counter mops keeps
 * under that name (or the later name it was renamed to), wherever mops keeps it: 4.8's
 * per-zone nr_slab_reclaimable, for one, prints the same global sum as the later node item.
 * Items mops keeps no counter for print 0. A name that is neither is a table error.
 */
export function vmstatLayout(release: VmstatRelease): VmstatLayout {
  const cached = layouts.get(release);
  if (cached) return cached;
  const names = vmstatNameList(release);
  const src = new Uint8Array(names.length);
  const index = new Int32Array(names.length);
  names.forEach((name, i) => {
    const key = VMSTAT_ALIASES[name] ?? name;
    let s: number;
    let at = 0;
    if (ZS[key] !== undefined) [s, at] = [SRC.ZONE, ZS[key]];
    else if (NS[key] !== undefined) [s, at] = [SRC.NODE, NS[key]];
    else if (EV[key] !== undefined) [s, at] = [SRC.EVENT, EV[key]];
    else if (COMPUTED[key] !== undefined) s = COMPUTED[key];
    else if (VMSTAT_UNMODELLED.has(key)) s = SRC.ZERO;
    else throw new Error(`vmstat table ${release}: no counter for '${name}'`);
    src[i] = s;
    index[i] = at;
  });
  const layout = { names, src, index };
  layouts.set(release, layout);
  return layout;
}

/**
 * The event counters of the profile's /proc/vmstat (`enum vm_event_item`), by the names
 * that release prints, in its order: what comparing the file before and after would show.
 * Counters mops keeps but the release lacks are left out.
 */
export function vmstatEvents(machine: Machine): Map<string, number> {
  const release = machine.profile.vmstatNames;
  const t = VMSTAT_NAMES[release];
  const first = t.zone.length + t.numa.length + t.node.length + t.vm.length;
  const layout = vmstatLayout(release);
  const out = new Map<string, number>();
  for (let i = first; i < first + t.events.length; i++)
    out.set(layout.names[i], layoutValue(machine.mem, layout, i));
  return out;
}

/**
 * /proc/vmstat: `name value` per line, in the order of the profile's release (see
 * vmstat/releases.ts): the zone items summed over the node's zones, the NUMA items, the node
 * items, the dirty thresholds (and, 6.11+, the memmap counters), the event counters, then
 * the deprecated counters the release appends.
 *
 * `nr_dirty_threshold` and `nr_dirty_background_threshold` are computed as the kernel does
 * with the default sysctls (see {@link dirtyThresholds}); `nr_memmap_pages` (memmap
 * allocated after boot, by memory hotplug) is 0; `nr_memmap_boot_pages` counts the present
 * sections (see {@link memmapBootPages}). Counters mops keeps but the release lacks are not
 * printed.
 * @see mm/vmstat.c vmstat_start(), vmstat_show()
 */
export function vmstat(machine: Machine): string {
  const layout = vmstatLayout(machine.profile.vmstatNames);
  const { names } = layout;
  let out = '';
  for (let i = 0; i < names.length; i++)
    out += `${names[i]} ${ul(layoutValue(machine.mem, layout, i))}\n`;
  return out;
}

/** The value of line `i` of a /proc/vmstat layout. */
function layoutValue(mem: Memory, layout: VmstatLayout, i: number): number {
  const at = layout.index[i];
  const src = layout.src[i];
  switch (src) {
    case SRC.ZONE: {
      // global_zone_page_state(): the zones' counts add up before a negative total reads
      // as 0 (one zone's count may sit below zero while another holds it).
      let v = 0;
      for (const z of mem.node.zones) v += zoneStatValue(z, at);
      return Math.max(0, v);
    }
    case SRC.NODE:
      return mem.vmstat.node[at];
    case SRC.EVENT:
      return mem.vmstat.events[at];
    case SRC.DIRTY:
    case SRC.DIRTY_BG:
      return dirtyThresholds(mem)[src === SRC.DIRTY ? 0 : 1];
    case SRC.MEMMAP_BOOT:
      return memmapBootPages(mem);
    default:
      return 0;
  }
}
