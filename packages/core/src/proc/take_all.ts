/**
 * Emptying the buddy allocator of a machine, the first step of rebuilding a free state.
 * @module
 */

import { delFromFreeList, firstFree } from '../buddy/free_area.js';
import type { Machine } from '../machine.js';
import { MIGRATE_TYPES, NR_PAGE_ORDERS } from '../memory/constants.js';
import { OWNER_SHIFT } from '../page/flags.js';

/**
 * Takes every free block out of the buddy allocator (del_page_from_free_list()) and marks
 * each of its pages allocated: refcount 1, no flags, owner `owner` (registered on first
 * use). Afterwards every zone has no free pages. Returns the number of pages taken.
 */
export function takeAllFree(machine: Machine, owner = 'imported'): number {
  machine.mem.assertRunning();
  const mem = machine.mem;
  const p = mem.pages;
  const id = mem.owners.register(owner);
  const flags = id << OWNER_SHIFT;
  let taken = 0;
  for (const zone of mem.populatedZones) {
    for (let o = 0; o < NR_PAGE_ORDERS; o++) {
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        for (let pfn = firstFree(mem, zone, o, mt); pfn >= 0; pfn = firstFree(mem, zone, o, mt)) {
          delFromFreeList(mem, zone, pfn);
          const end = pfn + (1 << o);
          p.refcount.fill(1, pfn, end);
          p.flags.fill(flags, pfn, end);
          p.compound.fill(0, pfn, end);
          taken += 1 << o;
        }
      }
    }
  }
  return taken;
}
