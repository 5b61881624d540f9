/**
 * The step shared by every era: move_to_new_page() / move_to_new_folio() and, for v6.17,
 * migrate_movable_ops_page() (mm/migrate.c; spec §3.3). Both pages are locked.
 * @module
 */

import { assertText, bug } from '../debug/dump_page.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATED, LOCKED } from '../page/flags.js';
import { ownerDroppedStillMovable } from './driver_faults.js';
import { __PageMovable, type DefinedOps, pageMovableLocked, pageMovableOps } from './movable.js';

/**
 * The checks and the owner-release test before the driver is called. Returns the driver's
 * ops, or `null` when v4.8–v6.3 find the page released by its owner after isolation (no
 * longer PageMovable): then the move "succeeds" without the driver and the isolated flag
 * is cleared here.
 */
export function moveToNewFolioBegin(mem: Memory, dst: number, src: number): DefinedOps | null {
  const flags = mem.pages.flags;
  const fs = flags[src];
  if ((fs & (LOCKED | ISOLATED)) !== (LOCKED | ISOLATED) || !(flags[dst] & LOCKED))
    moveBeginCheck(mem, dst, src);
  if (mem.profile.coreDetectsRelease && !pageMovableLocked(mem, src)) {
    flags[src] = fs & ~ISOLATED;
    return null;
  }
  if (mem.pages.refcount[src] === 1)
    ownerDroppedStillMovable(mem, src, assertText(mem, 'move_to_new_folio', 'move_to_new_page'));
  return pageMovableOps(mem, src) ?? noMigrateOps(mem, src);
}

/**
 * The VM_BUG_ONs of {@link moveToNewFolioBegin}, in the kernel's order. v6.17's
 * migrate_movable_ops_page() asserts no page lock (a page someone unlocked BUGs at the
 * unlock after the call) and only warns (once) about a src without the isolated flag,
 * which it migrates all the same.
 */
function moveBeginCheck(mem: Memory, dst: number, src: number): void {
  const flags = mem.pages.flags;
  if (mem.profile.isolatedCheckWarns) {
    if (!(flags[src] & ISOLATED))
      mem.warnOnce(
        'migrate_movable_ops_page:isolated',
        'WARNING: VM_WARN_ON_ONCE_PAGE(!PageMovableOpsIsolated(src)) in migrate_movable_ops_page',
        src,
      );
    return;
  }
  if (!(flags[src] & LOCKED))
    bug(
      mem,
      assertText(
        mem,
        'VM_BUG_ON_FOLIO(!folio_test_locked(src))',
        'VM_BUG_ON_PAGE(!PageLocked(page))',
      ),
      src,
    );
  if (!(flags[dst] & LOCKED))
    bug(
      mem,
      assertText(
        mem,
        'VM_BUG_ON_FOLIO(!folio_test_locked(dst))',
        'VM_BUG_ON_PAGE(!PageLocked(newpage))',
      ),
      dst,
    );
  bug(mem, notIsolatedBug(mem), src);
}

/** The VM_BUG_ON of a src that is not isolated, in the profile's words. */
export function notIsolatedBug(mem: Memory): string {
  return assertText(
    mem,
    'VM_BUG_ON_FOLIO(!folio_test_isolated(src))',
    'VM_BUG_ON_PAGE(!PageIsolated(page))',
  );
}

function noMigrateOps(mem: Memory, src: number): never {
  bug(mem, 'BUG: kernel NULL pointer dereference (movable_ops->migrate_page)', src);
}

/**
 * After the driver: on success the VM clears the isolated flag (v4.8–v6.3 under the page
 * lock, "so any compactor cannot try to migrate this page"; v6.17 in
 * migrate_movable_ops_page).
 */
export function moveToNewFolioEnd(mem: Memory, src: number, rc: number): number {
  if (rc !== 0) return rc;
  // The isolated flag is set here: a driver that cleared it was caught, warned about and
  // repaired when it returned (checkMigrate).
  if (!mem.profile.coreDetectsRelease || __PageMovable(mem, src)) mem.pages.flags[src] &= ~ISOLATED;
  return rc;
}
