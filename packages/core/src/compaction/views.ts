/**
 * The debugfs fragmentation files `/sys/kernel/debug/extfrag/extfrag_index` and
 * `/sys/kernel/debug/extfrag/unusable_index`, in the kernel's exact layout (T11).
 * @module
 */

import type { Machine } from '../machine.js';
import { NR_PAGE_ORDERS } from '../memory/constants.js';
import { rs } from '../proc/format.js';
import { fillContigPageInfo, fragmentationIndexOf, unusableFreeIndexOf } from './metrics.js';

/**
 * C's `%<width>d` and `%0<width>d` of an int: right-aligned, zero padding going after the
 * sign (`%03d` of -5 is `-05`, of -500 is `-500`).
 */
function cInt(v: number, width: number, zero: boolean): string {
  if (!zero) return String(v).padStart(width);
  const digits = String(Math.abs(v));
  return v < 0 ? `-${digits.padStart(width - 1, '0')}` : digits.padStart(width, '0');
}

/**
 * An index in thousandths printed as the kernel does, `"%d.%03d "` (or `"%2d.%03d "`) of
 * `index / 1000` and `index % 1000` with C's truncating int division: -1000 prints
 * `-1.000`, and -500 (possible for extfrag_index, see `fragmentationIndexOf`) prints
 * `0.-500`.
 */
export function formatThousandths(index: number, intWidth: number): string {
  const whole = Math.trunc(index / 1000);
  const frac = index % 1000;
  return `${cInt(whole, intWidth, false)}.${cInt(frac, 3, true)} `;
}

/** One line per populated zone: `Node %d, zone %8s ` then one value per order, then `\n`. */
function perZoneOrder(machine: Machine, value: (zoneIdx: number, order: number) => string): string {
  let out = '';
  for (const z of machine.mem.node.zones) {
    if (!z.populated) continue;
    out += `Node ${z.nid}, zone ${rs(z.name, 8)} `;
    for (let o = 0; o < NR_PAGE_ORDERS; o++) out += value(z.idx, o);
    out += '\n';
  }
  return out;
}

/**
 * `/sys/kernel/debug/extfrag/extfrag_index`: per populated zone, the fragmentation index
 * of each order 0..10, printed `"%2d.%03d "` in v6.x (`" 0.998"`, `"-1.000"`) and
 * `"%d.%03d "` in v4.8 (`"0.998"`): the profile's extfragIndexWidth.
 * @see mm/vmstat.c extfrag_show_print()
 */
export function extfragIndexView(machine: Machine): string {
  const width = machine.profile.compaction.extfragIndexWidth;
  const zones = machine.mem.node.zones;
  return perZoneOrder(machine, (zi, o) =>
    formatThousandths(fragmentationIndexOf(o, fillContigPageInfo(zones[zi], o)), width),
  );
}

/**
 * `/sys/kernel/debug/extfrag/unusable_index`: per populated zone, the unusable free space
 * index of each order 0..10, printed `"%d.%03d "` in every profile (`"0.249"`, `"1.000"`).
 * @see mm/vmstat.c unusable_show_print()
 */
export function unusableIndexView(machine: Machine): string {
  const zones = machine.mem.node.zones;
  return perZoneOrder(machine, (zi, o) =>
    formatThousandths(unusableFreeIndexOf(o, fillContigPageInfo(zones[zi], o)), 0),
  );
}
