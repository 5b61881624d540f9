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
    for (let pfn = zone.zoneStartPfn; pfn < end; pfn++) {
      if (mem.pageblockMigratetype(pfn) !== MIGRATE.MOVABLE) {
        // On to the next block.
        pfn += pageblock_nr_pages - 1 - (pfn % pageblock_nr_pages);
        continue;
      }
      if (p.refcount[pfn] !== 1 || p.ownerOf(pfn) !== id) continue;
      filler.adopt(pfn);
      n++;
    }
  }
  return n;
}
