import { describe, expect, it } from 'vitest';
import { MIGRATE_MODE, PROFILE_NAMES, traceRecorder } from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { isolate, migrateBody, rig } from './harness.js';

/** The scheduling points of one migration, by profile: the reference check, the two trylocks, the unlock of dst. */
const POINTS = {
  legacy: ['page_count', 'trylock_page', 'trylock_page', 'unlock_page'],
  folio: ['folio_ref_count', 'folio_trylock', 'folio_trylock', 'folio_unlock'],
} as const;

describe.each(PROFILE_NAMES)('S43 no unmapping for movable pages — %s', (profile) => {
  it('the unmap phase only checks the count and locks src and dst: no rmap walk, no migration entry, no TLB flush', () => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    const p = r.m.mem.pages;
    const typeBefore = p.type[a];
    const rec = traceRecorder(r.m);
    const s = r.m.sched;
    s.manual = true;
    const t = s.spawn('migrate', migrateBody(r, MIGRATE_MODE.SYNC));
    const seen: [string, number][] = [];
    const types = new Set<number>();
    while (t.state === 'runnable') {
      const point = s.step(t);
      if (point.op === 'done') break;
      seen.push([point.op, 'pfn' in point ? (point.pfn as number) : -1]);
      types.add(p.type[a]);
    }
    s.manual = false;
    rec.stop();
    expect(t.result).toEqual({ rc: 0, nrSucceeded: 1, nrFailedPages: 0 });
    const d = r.targets[0];
    const ops = profile === 'v4.8' || profile === 'v6.0' ? POINTS.legacy : POINTS.folio;
    expect(seen).toEqual([
      [ops[0], a],
      [ops[1], a],
      [ops[2], d],
      [ops[3], d],
    ]);
    // Up to the free of src, its mapcount / page-type word never changed: nothing was
    // unmapped.
    expect(r.drv.callsOf('migrate')).toHaveLength(1);
    expect([...types]).toEqual([typeBefore]);
    // Only the target's allocation, the source's free and the migration's own events.
    const events = new Set(rec.lines.map((l) => /: (\w+):/.exec(l)?.[1]));
    expect([...events].sort()).toEqual(
      [
        ...(profile === 'v4.8' ? [] : ['mm_migrate_pages_start']),
        'mm_migrate_pages',
        'mm_page_alloc',
        'mm_page_alloc_zone_locked',
        'mm_page_free',
      ].sort(),
    );
    expectInvariants(r.m);
  });
});
