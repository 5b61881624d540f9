/**
 * Making the imported allocated pages of MOVABLE pageblocks movable, so compaction has
 * pages to migrate on a machine rebuilt from /proc.
 * @module
 */

import type { Machine } from '../machine.js';
import { MIGRATE, pageblock_nr_pages } from '../memory/constants.js';
import { createMovableFiller } from '../workload/movable_filler.js';

/**
 * Hands every allocated page of a MIGRATE_MOVABLE pageblock that is owned by `owner` with
 * refcount 1 (the reserved, unmanaged pages belong to `'kernel'`) to the machine's filler
 * driver, which publishes it as an order-0 movable_ops page compaction can migrate. The
 * free lists and the pageblock types stay as they are. Returns the number of pages handed
 * over.
 */
export function importMovable(machine: Machine, owner: string): number {
  const mem = machine.mem;
  const p = mem.pages;
  const filler = createMovableFiller(machine);
  const id = mem.owners.register(owner);
  let n = 0;
  for (const zone of mem.populatedZones) {
    const end = zone.zoneStartPfn + zone.presentPages;
    // One pageblock at a time (the first may start inside its block), its type read once.
    for (let start = zone.zoneStartPfn; start < end; ) {
      const blockEnd = Math.min(start - (start % pageblock_nr_pages) + pageblock_nr_pages, end);
      if (mem.pageblockMigratetype(start) === MIGRATE.MOVABLE)
        for (let pfn = start; pfn < blockEnd; pfn++) {
          if (p.refcount[pfn] !== 1 || p.ownerOf(pfn) !== id) continue;
          filler.adopt(pfn);
          n++;
        }
      start = blockEnd;
    }
  }
  return n;
}
