/**
 * `/proc/pagetypeinfo` (mm/vmstat.c pagetypeinfo_show()).
 * @module
 */

import type { Machine } from '../machine.js';
import {
  MIGRATE,
  MIGRATE_TYPES,
  MIGRATETYPE_NAMES,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  pageblock_order,
} from '../memory/constants.js';
import type { Memory } from '../memory/mem.js';
import { PB_MIGRATETYPE_MASK, shownMigratetypes, type Zone } from '../memory/zone.js';
import { ls, rs, ul } from './format.js';

/** pagetypeinfo_showfree_print() stops counting a free list here and prints `>100000`. */
export const FREECOUNT_CAP = 100000;

/**
 * Whether the machine has CMA memory: the kernel prints the CMA rows and column only when
 * built with CONFIG_CMA; a machine mops built shows them when some pageblock or free list
 * is CMA.
 */
export function machineHasCma(mem: Memory): boolean {
  for (const z of mem.populatedZones) {
    for (let o = 0; o < NR_PAGE_ORDERS; o++) if (z.freeCount(o, MIGRATE.CMA) > 0) return true;
    const first = z.zoneStartPfn >> pageblock_order;
    const last = (z.zoneEndPfn - 1) >> pageblock_order;
    for (let b = first; b <= last; b++)
      if ((mem.pageblock[b] & PB_MIGRATETYPE_MASK) === MIGRATE.CMA) return true;
  }
  return false;
}

/**
 * Pageblocks of `zone` by migrate type, counted as pagetypeinfo_showblockcount_print()
 * does: from `zone_start_pfn` in steps of `pageblock_nr_pages`, skipping pfns that are
 * holes (mops's holes are the end of the span beyond `present`). Indexed by migrate type.
 */
export function zoneBlockCounts(mem: Memory, zone: Zone): number[] {
  const count = new Array<number>(MIGRATE_TYPES).fill(0);
  const end = zone.zoneEndPfn;
  const online = zone.zoneStartPfn + zone.presentPages;
  for (let pfn = zone.zoneStartPfn; pfn < end && pfn < online; pfn += pageblock_nr_pages) {
    const mt = mem.pageblock[pfn >> pageblock_order] & PB_MIGRATETYPE_MASK;
    if (mt < MIGRATE_TYPES) count[mt]++;
  }
  return count;
}

/**
 * /proc/pagetypeinfo: the pageblock order, the free blocks on each migrate type's list by
 * order (6.x: a count of 100000 or more prints as `>100000`, as the kernel caps its walk;
 * v4.8 counts the whole list), and
 * the pageblocks of each type per zone. The kernel prints every migrate type of its build:
 * a machine rebuilt from a real pagetypeinfo shows that file's column set
 * (`Memory.procMigratetypes`); otherwise the CMA type appears only when the machine has CMA
 * memory (see {@link machineHasCma}).
 * @see mm/vmstat.c pagetypeinfo_showfree_print(), pagetypeinfo_showblockcount_print()
 */
export function pagetypeinfo(machine: Machine): string {
  const mem = machine.mem;
  const types = mem.procMigratetypes ?? shownMigratetypes(machineHasCma(mem));
  const cap = mem.profile.compaction.pagetypeinfoCap;
  const zones = mem.node.zones.filter((z) => z.populated);
  let out = `Page block order: ${pageblock_order}\n`;
  out += `Pages per block:  ${pageblock_nr_pages}\n\n`;
  out += `${ls('Free pages count per migrate type at order', 43)} `;
  for (let o = 0; o < NR_PAGE_ORDERS; o++) out += `${String(o).padStart(6)} `;
  out += '\n';
  for (const z of zones) {
    for (const mt of types) {
      out += `Node ${String(z.nid).padStart(4)}, zone ${rs(z.name, 8)}, type ${rs(MIGRATETYPE_NAMES[mt], 12)} `;
      for (let o = 0; o < NR_PAGE_ORDERS; o++) {
        const n = z.freeCount(o, mt);
        out += cap && n >= cap ? `>${ul(cap).padStart(6)} ` : `${ul(n).padStart(6)} `;
      }
      out += '\n';
    }
  }
  out += `\n${ls('Number of blocks type ', 23)}`;
  for (const mt of types) out += `${rs(MIGRATETYPE_NAMES[mt], 12)} `;
  out += '\n';
  for (const z of zones) {
    const count = zoneBlockCounts(mem, z);
    out += `Node ${z.nid}, zone ${rs(z.name, 8)} `;
    for (const mt of types) out += `${ul(count[mt]).padStart(12)} `;
    out += '\n';
  }
  return out;
}
