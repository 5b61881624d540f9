import { PROFILE_NAMES, type ProfileName } from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  type Chooser,
  decodeSchedule,
  execute,
  explore,
  ReplayChooser,
  replay,
  resolveScenario,
  S29_THREADS,
  type TraceRow,
} from '../src/index.js';

/**
 * Threads that fault faster than the migrator counts: whenever a faulting thread can run, it
 * does; the migrator runs only while every thread sleeps or waits for a lock.
 */
const threadsFirst: Chooser = {
  choose: (runnable) => runnable.find((t) => t.name !== 'migrator') ?? runnable[0],
};

/**
 * {@link threadsFirst}, except that a migrator which unlocked X after a failed pass keeps
 * the CPU until it has locked X again: the waiters it woke run only then.
 */
const relockFirst: Chooser = {
  choose(runnable, prev, decision) {
    const m = runnable.find((t) => t.name === 'migrator');
    const point = m?.lastPoint as { op: string; note?: string } | undefined;
    if (
      m &&
      point &&
      (/-EAGAIN/.test(point.note ?? '') || /put_page|get_new_page|lock_page/.test(point.op))
    )
      return m;
    return threadsFirst.choose(runnable, prev, decision);
  },
};

function run(variant: string, profile: ProfileName, chooser = threadsFirst) {
  const sc = resolveScenario('9c-passes').scenario;
  return execute(sc, variant, profile, chooser, { reuse: false, trace: true });
}

const noteOf = (row: TraceRow): string => (row.point as { note?: string }).note ?? '';

/** The passes a trace ended with an unlock for -EAGAIN (the last failed pass ends otherwise). */
function failedPasses(e: ReturnType<typeof run>): number {
  return e.trace!.filter((row) => /-EAGAIN/.test(noteOf(row))).length;
}

/** Task ids: the migrator is 1, thread `t` is `t + 2`. */
const threadId = (t: number): number => t + 2;

/** The migrator's points in a buggy run of `schedule` on `profile`. */
function migratorOps(profile: ProfileName, schedule: string): string[] {
  const sc = resolveScenario('9c-passes').scenario;
  const decisions = decodeSchedule(schedule).decisions;
  const e = execute(sc, 'buggy', profile, new ReplayChooser(decisions), {
    reuse: false,
    trace: true,
  });
  expect(e.failure?.message).toMatch(/failed after 10 passes/);
  return e.trace!.filter((row) => row.task === 1).map((row) => row.point.op);
}

describe('S29 in full (9c-passes): four threads fault through the ten passes of migrate_pages', () => {
  it('v4.8 buggy: waiters sleep holding their references, every pass fails and the migration gives up', () => {
    const e = run('buggy', 'v4.8');
    expect(e.failure?.kind).toBe('assertion');
    // Every pass counts the isolation reference and one per sleeping thread.
    const counts = Array(10)
      .fill(1 + S29_THREADS)
      .join(', ');
    expect(e.failure?.message).toContain(
      `failed after 10 passes with -EAGAIN (refcount ${counts};`,
    );
    expect(failedPasses(e)).toBe(9);
    // The faults go on: every thread faulted in every pass.
    const gets = e.trace!.filter((row) => row.point.op === 'get_page_unless_zero');
    expect(gets.length).toBe(10 * S29_THREADS);
    // X stays mapped (its PTE restored after the last pass) and the target was released.
    const p = e.machine.mem.pages;
    expect(p.refcount[0]).toBe(1);
    expect(p.refcount[1]).toBe(0);
  });

  it('v4.8 buggy: a waiter woken onto X locked again goes back to sleep, still holding its reference', () => {
    const e = run('buggy', 'v4.8', relockFirst);
    const counts = Array(10)
      .fill(1 + S29_THREADS)
      .join(', ');
    expect(e.failure?.message).toContain(`(refcount ${counts};`);
    // Some thread slept on the page lock twice in a row: woken by the -EAGAIN unlock, it
    // found X locked again (wait_on_page_locked loops while the bit is set).
    const resleeps = [0, 1, 2, 3].map((t) => {
      const ops = e.trace!.filter((row) => row.task === threadId(t)).map((row) => row.point);
      return ops.filter(
        (pt, i) =>
          i > 0 &&
          pt.op === 'block' &&
          ops[i - 1].op === 'block' &&
          /wait_on_page_locked/.test((pt as { what?: string }).what ?? ''),
      ).length;
    });
    expect(resleeps.every((n) => n >= 9)).toBe(true);
  });

  it('v6.0 (unmap_and_move per pass): a failed pass restores the PTE, unlocks X and takes a new target', () => {
    const r = replay('9c-passes', {
      variant: 'buggy',
      profile: 'v6.0',
      schedule: 'v1:9c-passes:11111555554',
    });
    expect(r.failed).toBe(true);
    // One thread between its get and its put at every count, not threads asleep with one.
    expect(r.failure?.message).toMatch(
      /refcount 2, 2, 2, 2, 2, 2, 2, 2, 2, 2; expected 1\): at every count, a faulting thread held a reference .*put_and_wait_on_page_locked drops it only once the thread is queued/,
    );
    const ops = migratorOps('v6.0', 'v1:9c-passes:11111555554');
    expect(ops.filter((o) => o === 'folio_lock' || o === 'lock_page').length).toBe(10);
    expect(ops.filter((o) => o === 'get_new_page').length).toBe(9);
    expect(ops.filter((o) => o === 'remove_migration_pte').length).toBe(10);
  });

  it.each(['v6.3', 'v6.17'] as const)(
    '%s (migrate_pages_sync): three MIGRATE_ASYNC passes over X unmapped once, the undo, then seven MIGRATE_SYNC passes on X alone',
    (profile) => {
      const ops = migratorOps(profile, 'v1:9c-passes:11111555554');
      // Locked and unmapped once per migrate_pages_batch(): the async batch, then X alone.
      expect(ops.filter((o) => o === 'folio_lock').length).toBe(2);
      expect(ops.filter((o) => o === 'try_to_migrate_one').length).toBe(2);
      expect(ops.filter((o) => o === 'folio_ref_count').length).toBe(3 + 7);
      // A retried move between the counts of each batch: 2 in the async one, 6 in the sync one.
      expect(ops.filter((o) => o === 'migrate_folio_move').length).toBe(2 + 6);
      // Each batch ends in migrate_folio_undo_src(): the PTE back, X unlocked.
      expect(ops.filter((o) => o === 'remove_migration_pte').length).toBe(2);
      expect(ops.filter((o) => o === 'folio_unlock').length).toBe(2);
      // The sync batch takes a target of its own.
      expect(ops.filter((o) => o === 'get_new_page').length).toBe(1);
      const undo = ops.indexOf('remove_migration_pte');
      expect(ops.slice(undo, undo + 6)).toEqual([
        'remove_migration_pte',
        'spin_unlock',
        'folio_unlock',
        'folio_put',
        'get_new_page',
        'folio_lock',
      ]);
    },
  );

  it('v6.3 buggy: the undo after the async batch wakes the waiters, they refault on X, and the sync batch migrates X with a new target', () => {
    // Thread 3 holds its reference through the three async passes; once the async batch is
    // undone the threads run whenever they can.
    const replayer = new ReplayChooser(decodeSchedule('v1:9c-passes:11111555554').decisions);
    let undone = false;
    const chooser: Chooser = {
      choose(runnable, prev, decision) {
        const m = runnable.find((t) => t.name === 'migrator');
        const note = (m?.lastPoint as { note?: string } | undefined)?.note ?? '';
        if (/migrate_folio_undo_dst/.test(note)) undone = true;
        return undone
          ? threadsFirst.choose(runnable, prev, decision)
          : replayer.choose(runnable, prev, decision);
      },
    };
    const e = run('buggy', 'v6.3', chooser);
    expect(e.failure).toBeUndefined();
    const trace = e.trace!;
    const at = (task: number, op: string, from = 0): number =>
      trace.findIndex((row, i) => i >= from && row.task === task && row.point.op === op);
    const unlock = at(1, 'folio_unlock');
    expect(noteOf(trace[unlock])).toMatch(/migrate_folio_undo_src/);
    const relock = at(1, 'folio_lock', unlock);
    // The threads that faulted during the async batch (threads 2 and 3) waited on its
    // migration entry; between the undo's unlock and the sync batch's lock they refault on X.
    const waiters = [
      ...new Set(
        trace
          .slice(0, unlock)
          .filter((row) => row.point.op === 'put_and_wait_on_page_locked')
          .map((row) => row.task),
      ),
    ].sort();
    expect(waiters).toEqual([threadId(2), threadId(3)]);
    for (const w of waiters) {
      const refault = trace.findIndex(
        (row, i) => i > unlock && row.task === w && noteOf(row) === 'refault',
      );
      expect(refault).toBeGreaterThan(unlock);
      expect(refault).toBeLessThan(relock);
    }
    // Unmapped again, X faults again: references are taken and dropped before the count.
    expect(trace.slice(relock).some((row) => row.point.op === 'get_page_unless_zero')).toBe(true);
    const counts = trace.filter((row) => row.task === 1 && row.point.op === 'folio_ref_count');
    expect(counts.length).toBe(4);
    // X (pfn 0) is freed; the PTE maps the sync batch's target, which took pfn 1 again.
    const p = e.machine.mem.pages;
    expect(p.refcount[0]).toBe(0);
    expect(p.refcount[1]).toBe(1);
  });

  it.each(PROFILE_NAMES)(
    '%s fixed: the first pass migrates and the woken threads refault on the new page',
    (profile) => {
      const e = run('fixed', profile);
      expect(e.failure).toBeUndefined();
      expect(failedPasses(e)).toBe(0);
      const p = e.machine.mem.pages;
      expect(p.refcount[0]).toBe(0);
      expect(p.refcount[1]).toBe(1);
      // Each thread faulted on the migration entry, queued without a reference, and refaulted.
      const trace = e.trace!;
      for (let t = 0; t < S29_THREADS; t++) {
        const rows = trace.filter((row) => row.task === threadId(t));
        const ops = rows.map((row) => row.point.op);
        expect(ops).toContain('migration_entry_wait_on_locked');
        expect(ops).not.toContain('get_page_unless_zero');
        expect(rows.some((row) => noteOf(row) === 'refault')).toBe(true);
      }
    },
  );

  it.each(['v6.3', 'v6.17'] as const)(
    '%s fixed: DFS with preemption bound 2 finds no failure in its first 2000 schedules',
    (profile) => {
      // Too many schedules to exhaust (four threads, ten passes); the bound is the one the
      // other scenarios' fixed variants are exhausted at.
      const r = explore('9c-passes', {
        variant: 'fixed',
        profile,
        strategy: 'dfs',
        bound: 2,
        runs: 2000,
      });
      expect(r).toMatchObject({ failed: false, exhausted: false, schedules: 2000 });
    },
  );

  it.each(['v6.0', 'v6.3', 'v6.17'] as const)(
    '%s buggy: put_and_wait_on_page_locked drops the reference once queued, so threads that run first do not fail a pass',
    (profile) => {
      const e = run('buggy', profile);
      expect(e.failure).toBeUndefined();
      expect(failedPasses(e)).toBe(0);
      expect(e.trace!.some((row) => row.point.op === 'put_and_wait_on_page_locked')).toBe(true);
    },
  );

  it.each(['v4.8', 'v6.3'] as const)(
    '%s buggy: PCT finds ten failed passes, and the fix passes the same schedule',
    (profile) => {
      // The scenario's own strategy: PCT.
      const r = explore('9c-passes', { variant: 'buggy', profile, runs: 300 });
      expect(r).toMatchObject({ failed: true, strategy: 'pct' });
      expect(r.failure?.message).toMatch(/failed after 10 passes with -EAGAIN/);
      expect(replay('9c-passes', { variant: 'buggy', profile, schedule: r.schedule! }).failed).toBe(
        true,
      );
      expect(replay('9c-passes', { variant: 'fixed', profile, schedule: r.schedule! }).failed).toBe(
        false,
      );
    },
  );
});
