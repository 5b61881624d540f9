/**
 * `/proc/buddyinfo` (mm/vmstat.c frag_show()).
 * @module
 */

import type { Machine } from '../machine.js';
import { NR_PAGE_ORDERS } from '../memory/constants.js';
import { rs, ulw } from './format.js';

/**
 * /proc/buddyinfo: one line per populated zone, `Node %d, zone %8s ` then `free_area[order]
 * .nr_free` as `%6lu ` for each order 0..10.
 * @see mm/vmstat.c frag_show_print()
 */
export function buddyinfo(machine: Machine): string {
  let out = '';
  for (const z of machine.mem.node.zones) {
    if (!z.populated) continue;
    out += `Node ${z.nid}, zone ${rs(z.name, 8)} `;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) out += `${ulw(z.nrFree[o], 6)} `;
    out += '\n';
  }
  return out;
}
