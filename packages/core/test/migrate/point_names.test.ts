import { describe, expect, it } from 'vitest';
import {
  allocPages,
  Errno,
  folioPut,
  GFP,
  isolateMovablePage,
  type KernelGen,
  MIGRATE_MODE,
  migratePages,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
} from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { rig } from './harness.js';

/**
 * The VM's points of one traced run, by release: isolation of A and B
 * (isolate_movable_page), migrate_pages(MIGRATE_ASYNC) where A moves to its target dA and
 * B's driver fails for good (-EBUSY, its target dB unused), then putback_movable_pages()
 * of B — inside migrate_pages in v4.8 (unmap_and_move puts a permanent failure back
 * itself), by the caller in the 6.x releases. Each point is named after the kernel function
 * that runs at that step in the release (mm/migrate.c of each).
 */
const TRACES: Record<ProfileName, readonly string[]> = {
  // isolate_movable_page, unmap_and_move (target allocated before the page_count shortcut),
  // __unmap_and_move, putback_movable_page with __ClearPageIsolated.
  'v4.8': [
    'get_page_unless_zero A',
    '__PageMovable A',
    'trylock_page A',
    'unlock_page A',
    'get_page_unless_zero B',
    '__PageMovable B',
    'trylock_page B',
    'unlock_page B',
    'page_count A',
    'trylock_page A',
    'trylock_page dA',
    'unlock_page dA',
    'page_count B',
    'trylock_page B',
    'trylock_page dB',
    'unlock_page dB',
    'lock_page B',
    '__ClearPageIsolated B',
    'unlock_page B',
    'put_page B',
  ],
  // The same page helpers, ClearPageIsolated atomic; B is put back by the caller.
  'v6.0': [
    'get_page_unless_zero A',
    '__PageMovable A',
    'trylock_page A',
    'unlock_page A',
    'get_page_unless_zero B',
    '__PageMovable B',
    'trylock_page B',
    'unlock_page B',
    'page_count A',
    'trylock_page A',
    'trylock_page dA',
    'unlock_page dA',
    'page_count B',
    'trylock_page B',
    'trylock_page dB',
    'unlock_page dB',
    'lock_page B',
    'ClearPageIsolated B',
    'unlock_page B',
    'put_page B',
  ],
  // Folios: folio_get_nontail_page, __folio_test_movable, folio_trylock; the batch unmaps
  // both, then moves; putback_movable_folio clears the flag with folio_clear_isolated.
  'v6.3': [
    'folio_get_nontail_page A',
    '__folio_test_movable A',
    'folio_trylock A',
    'folio_unlock A',
    'folio_get_nontail_page B',
    '__folio_test_movable B',
    'folio_trylock B',
    'folio_unlock B',
    'folio_ref_count A',
    'folio_trylock A',
    'folio_trylock dA',
    'folio_ref_count B',
    'folio_trylock B',
    'folio_trylock dB',
    'folio_unlock dA',
    'folio_lock B',
    'folio_clear_isolated B',
    'folio_unlock B',
    'folio_put B',
  ],
  // isolate_movable_ops_page (page_has_movable_ops), putback_movable_ops_page
  // (ClearPageMovableOpsIsolated), the folio lock and reference around them.
  'v6.17': [
    'folio_get_nontail_page A',
    'page_has_movable_ops A',
    'folio_trylock A',
    'folio_unlock A',
    'folio_get_nontail_page B',
    'page_has_movable_ops B',
    'folio_trylock B',
    'folio_unlock B',
    'folio_ref_count A',
    'folio_trylock A',
    'folio_trylock dA',
    'folio_ref_count B',
    'folio_trylock B',
    'folio_trylock dB',
    'folio_unlock dA',
    'folio_lock B',
    'ClearPageMovableOpsIsolated B',
    'folio_unlock B',
    'folio_put B',
  ],
};

describe.each(PROFILE_NAMES)('scheduling points carry the release’s names — %s', (profile) => {
  it('isolation, migration and putback, traced point by point', () => {
    const r = rig(profile);
    const { m, drv } = r;
    const [a, b] = drv.alloc(2);
    drv.migrateRc = (src) => (src === b ? Errno.EBUSY : 0);
    // What each pfn is at the moment: a freed source may come back as the next target.
    const labels = new Map([
      [a, 'A'],
      [b, 'B'],
    ]);
    const trace: string[] = [];
    m.sched.manual = true;
    m.sched.onStep = (_t, pt) => {
      if (pt.pfn !== undefined) trace.push(`${pt.op} ${labels.get(pt.pfn)}`);
    };
    const list = m.mem.pages.lists.newList();
    function* vm(): KernelGen<number> {
      for (const pfn of [a, b]) {
        yield* isolateMovablePage(m, pfn, 0);
        m.mem.pages.lists.addTail(list, pfn);
      }
      const getNew = (src: number): number => {
        const d = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
        labels.set(d, `d${labels.get(src)}`);
        return d;
      };
      const res = yield* migratePages(
        m,
        list,
        getNew,
        (d) => folioPut(m.mem, d),
        MIGRATE_MODE.ASYNC,
        0,
      );
      if (res.rc !== 0) yield* putbackMovablePages(m, list);
      return res.nrSucceeded;
    }
    expect(m.run(vm)).toBe(1);
    m.sched.manual = false;
    expect(trace).toEqual(TRACES[profile]);
    expect(drv.callsOf('putback').map((c) => c.pfn)).toEqual([b]);
    expectInvariants(m);
  });
});
