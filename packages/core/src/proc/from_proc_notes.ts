/**
 * What a machine built from /proc files prints back differently from them, for
 * {@link FromProcOptions.onNote}: vmstat counters the release's file does not print or
 * prints with another value (counters mops computes, such as the dirty thresholds, and
 * those it has no state for), zoneinfo zone counters it drops, and zones whose `present`
 * differs from zoneinfo's (mops keeps a zone's holes at the end of its span).
 * @module
 */

import type { Machine } from '../machine.js';
import { ZONE_STAT_ITEMS } from '../vmstat/items.js';
import { type ParsedZoneinfo, parseVmstat, parseZoneinfo } from './parse_zoneinfo.js';
import { vmstat } from './vmstat.js';
import { zoneinfo } from './zoneinfo.js';

/** zoneinfo lines of a zone that are not counters: watermarks, sizes, CMA pages. */
const ZONE_FIELDS = new Set(['min', 'low', 'high', 'promo', 'boost', 'cma', 'node_scanned']);

/** Counters of free pages: the machine's follow from buddyinfo's free blocks. */
const FREE_COUNTERS = new Set(['nr_free_pages', 'nr_free_pages_blocks']);

/** Names listed in a note: the first few, then how many more. */
const LISTED = 8;

function list(names: readonly string[]): string {
  const shown = names.slice(0, LISTED).join(', ');
  return names.length > LISTED ? `${shown}, … (${names.length - LISTED} more)` : shown;
}

/**
 * The notes of a machine built from `zi` and `vm` (the parsed files, when given), one line
 * each; none when it prints them back as they are.
 * @param machine the machine machineFromProc built
 * @param zi the parsed zoneinfo, if the sample has one
 * @param vm the parsed vmstat, if the sample has one
 * @param counters whether the counters were imported
 */
export function fromProcNotes(
  machine: Machine,
  zi: ParsedZoneinfo | undefined,
  vm: Map<string, number> | undefined,
  counters: boolean,
): string[] {
  const notes: string[] = [];
  const name = machine.profile.name;
  for (const [idx, info] of zi?.zones ?? []) {
    const zone = machine.mem.node.zones[idx];
    if (!zone.populated) continue;
    if (info.present !== undefined && info.present !== zone.presentPages)
      notes.push(
        `zoneinfo: zone ${zone.name} has ${zone.presentPages} present pages, not ${info.present}: mops lays out the pageblocks pagetypeinfo counts with the zone's holes at the end of its span`,
      );
    const free = info.stats.get('nr_free_pages');
    if (free !== undefined && free !== zone.nrFreePages)
      notes.push(
        `zoneinfo: zone ${zone.name} has ${zone.nrFreePages} free pages, not ${free}: the free blocks are buddyinfo's, which the two files saw at different moments`,
      );
  }
  if (zi)
    notes.push(
      "zoneinfo: the pagesets' count and high are mops' own: it keeps no per-CPU page lists",
    );
  if (!counters) return notes;
  if (zi) {
    // What the release's zoneinfo prints, read back as the sample was.
    // (4.8 prints some node counters of 6.x per zone: printed either way is printed.)
    const mine = parseZoneinfo(zoneinfo(machine));
    const printed = new Set<string>([...mine.nodeStats.keys(), ...ZONE_FIELDS]);
    for (const z of mine.zones.values()) for (const stat of z.stats.keys()) printed.add(stat);
    const notPrinted = new Set<string>();
    for (const info of zi.zones.values())
      for (const stat of info.stats.keys()) if (!printed.has(stat)) notPrinted.add(stat);
    const fromVmstat: string[] = [];
    for (const [counter, value] of zi.nodeStats) {
      if (!printed.has(counter)) notPrinted.add(counter);
      else {
        const v = vm?.get(counter);
        if (v !== undefined && v !== value) fromVmstat.push(`${counter} ${value} → ${v}`);
      }
    }
    if (notPrinted.size > 0)
      notes.push(
        `zoneinfo: counters ${name}'s /proc/zoneinfo does not print, not imported: ${list([...notPrinted])}`,
      );
    if (fromVmstat.length > 0)
      notes.push(
        `zoneinfo: per-node counters taken from vmstat, which the two files saw at different moments: ${list(fromVmstat)}`,
      );
  }
  if (vm) {
    const printed = parseVmstat(vmstat(machine));
    const zoneItems = new Set<string>(ZONE_STAT_ITEMS);
    const missing: string[] = [];
    const changed: string[] = [];
    const fromZones: string[] = [];
    const fromBuddy: string[] = [];
    for (const [counter, value] of vm) {
      const now = printed.get(counter);
      if (now === undefined) missing.push(counter);
      else if (now === value) continue;
      else if (FREE_COUNTERS.has(counter)) fromBuddy.push(`${counter} ${value} → ${now}`);
      else if (zi && zoneItems.has(counter)) fromZones.push(`${counter} ${value} → ${now}`);
      else changed.push(`${counter} ${value} → ${now}`);
    }
    if (fromBuddy.length > 0)
      notes.push(
        `vmstat: free-page counters that follow from buddyinfo's free blocks, which the two files saw at different moments: ${list(fromBuddy)}`,
      );
    if (fromZones.length > 0)
      notes.push(
        `vmstat: zone counters summed from zoneinfo's zones, which the two files saw at different moments: ${list(fromZones)}`,
      );
    if (missing.length > 0)
      notes.push(
        `vmstat: counters ${name}'s /proc/vmstat does not print, not imported: ${list(missing)}`,
      );
    if (changed.length > 0)
      notes.push(
        `vmstat: counters printed with other values (computed by mops from its own state): ${list(changed)}`,
      );
  }
  return notes;
}
