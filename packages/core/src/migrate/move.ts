/**
 * The step shared by every era: move_to_new_page() / move_to_new_folio() and, for v6.17,
 * migrate_movable_ops_page() (mm/migrate.c; spec §3.3). Both pages are locked.
 * @module
 */

import { bug } from '../debug/dump_page.js';
import type { Memory } from '../memory/mem.js';
import { PG } from '../page/flags.js';
import type { KernelGen } from '../sched/types.js';
import { callMigratePage } from './callbacks.js';
import { __PageMovable, PageMovable, pageMovableOps } from './movable.js';

const ISOLATED = 1 << PG.isolated;
const LOCKED = 1 << PG.locked;

/**
 * Moves src to dst through the driver. In v4.8–v6.3 a page its owner released after
 * isolation (no longer PageMovable) is not handed to the driver: the move "succeeds" and
 * the VM clears the isolated flag; on a driver success the VM clears the flag too (under
 * the page lock, so no compactor tries this page again). v6.17 just calls the driver and
 * clears the flag on 0. Returns 0 or a negative errno.
 */
export function* moveToNewFolio(
  mem: Memory,
  dst: number,
  src: number,
  mode: number,
): KernelGen<number> {
  const p = mem.pages;
  if (!(p.flags[src] & LOCKED)) bug(mem, 'VM_BUG_ON_FOLIO(!folio_test_locked(src))', src);
  if (!(p.flags[dst] & LOCKED)) bug(mem, 'VM_BUG_ON_FOLIO(!folio_test_locked(dst))', dst);
  if (!(p.flags[src] & ISOLATED)) bug(mem, 'VM_BUG_ON_FOLIO(!folio_test_isolated(src))', src);
  const prof = mem.profile;
  if (prof.coreDetectsRelease && !PageMovable(mem, src)) {
    // The owner released the page after isolation: do not try to migrate it.
    p.flags[src] &= ~ISOLATED;
    return 0;
  }
  const d = pageMovableOps(mem, src);
  if (!d) bug(mem, 'BUG: kernel NULL pointer dereference (movable_ops->migrate_page)', src);
  const rc = yield* callMigratePage(mem, d, dst, src, mode);
  if (rc === 0) {
    if (prof.coreDetectsRelease) {
      if (!(p.flags[src] & ISOLATED))
        mem.warnOnce(
          'move_to_new_folio:isolated',
          'WARNING: WARN_ON_ONCE(rc == MIGRATEPAGE_SUCCESS && !folio_test_isolated(src))',
          src,
        );
      if (__PageMovable(mem, src)) p.flags[src] &= ~ISOLATED;
    } else p.flags[src] &= ~ISOLATED;
  }
  return rc;
}
