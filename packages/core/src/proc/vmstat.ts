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
  NODE_STAT_ITEMS,
  VM_EVENT_ITEMS,
  WRITEBACK_AND_MEMMAP_ITEMS,
  ZONE_STAT_ITEMS,
} from '../vmstat/items.js';
import { NS } from '../vmstat/vmstat.js';
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
 * plus its high watermark, capped at its managed pages.
 */
export function totalreservePages(mem: Memory): number {
  let total = 0;
  const zones = mem.node.zones;
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = zones[i];
    let max = 0;
    for (let j = i; j < MAX_NR_ZONES; j++) if (z.lowmemReserve[j] > max) max = z.lowmemReserve[j];
    max += z.wmarkPages(WMARK.HIGH);
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

/**
 * /proc/vmstat: `name value` per line, in the kernel's order: the zone items summed over
 * the node's zones, the node items, the dirty thresholds and memmap counters, then the
 * event counters.
 *
 * `nr_dirty_threshold` and `nr_dirty_background_threshold` are computed as the kernel does
 * with the default sysctls (see {@link dirtyThresholds}); `nr_memmap_pages` (memmap
 * allocated after boot, by memory hotplug) is 0; `nr_memmap_boot_pages` counts the present
 * sections (see {@link memmapBootPages}).
 * @see mm/vmstat.c vmstat_start()
 */
export function vmstat(machine: Machine): string {
  const mem = machine.mem;
  const zones = mem.node.zones;
  const lines: string[] = [];
  // Items the profile's release does not have are left out.
  const absent = new Set(machine.profile.vmstatAbsent);
  const line = (name: string, v: number): void => {
    if (!absent.has(name)) lines.push(`${name} ${ul(v)}`);
  };
  for (let i = 0; i < ZONE_STAT_ITEMS.length; i++) {
    let v = 0;
    for (const z of zones) v += Math.max(0, zoneStatValue(z, i));
    line(ZONE_STAT_ITEMS[i], v);
  }
  for (let i = 0; i < NODE_STAT_ITEMS.length; i++) line(NODE_STAT_ITEMS[i], mem.vmstat.node[i]);
  const [thresh, bg] = dirtyThresholds(mem);
  const wb: Record<(typeof WRITEBACK_AND_MEMMAP_ITEMS)[number], number> = {
    nr_dirty_threshold: thresh,
    nr_dirty_background_threshold: bg,
    nr_memmap_pages: 0,
    nr_memmap_boot_pages: memmapBootPages(mem),
  };
  for (const name of WRITEBACK_AND_MEMMAP_ITEMS) line(name, wb[name]);
  for (let i = 0; i < VM_EVENT_ITEMS.length; i++) line(VM_EVENT_ITEMS[i], mem.vmstat.events[i]);
  return `${lines.join('\n')}\n`;
}
