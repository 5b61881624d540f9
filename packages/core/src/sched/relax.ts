/**
 * Spin-waits: the `cpu_relax` scheduling point a task yields in each round of a loop that
 * waits for another task to change something (a refcount frozen by a migrator, a slot being
 * replaced), and the {@link Livelock} reported when no other task can ever change it.
 * @module
 */

import { MmBug } from '../errors.js';
import type { DeadlockEntry } from './deadlock.js';
import type { Task } from './task.js';
import type { KernelGen, SchedPoint } from './types.js';

/**
 * The op of a spin-wait's scheduling point: `{ op: 'cpu_relax' }`, yielded by a task at the
 * end of each round of a loop that waits for another task (filemap_get_entry()'s `goto
 * repeat` after a failed folio_try_get(), a seqcount retry, a cmpxchg loop on a value
 * another task holds frozen), whether or not the kernel's loop calls cpu_relax() there.
 *
 * A task whose step ended at this point is not run again right after it: another task runs
 * first, so the task it waits for makes progress. The scheduler's `runAll()` does so under
 * its `'run-to-completion'`, `'round-robin'` and `'random'` strategies, and `@mops/explorer`
 * under all of its own (where switching away from the spinner is not counted as a
 * preemption). When no other task can run (every other one is blocked, held off its CPU or
 * finished), the spinner runs one more round of its loop alone, since what it tested may
 * have changed while it was preempted; when that round too ends at `cpu_relax`, every later
 * one would see the same state and the spin cannot end: a {@link Livelock}.
 * @see include/asm-generic/processor.h cpu_relax()
 */
export const CPU_RELAX = 'cpu_relax';

/**
 * The point a spin-wait yields in each round: `yield* cpuRelax(pfn)`, in the loop that
 * waits for another task. Yielded whether or not `sched.preemptible` is set: a task
 * spinning alone must reach the scheduler, which reports the {@link Livelock}, instead of
 * looping for ever inside one step. Use it only where a round of the loop that fails
 * changes nothing a next round reads: a loop bounded by its own count (three attempts, then
 * give up) ends without another task, and would be reported as a livelock once it runs
 * alone.
 * @param pfn the page the loop waits on, for reports
 * @param note free text for reports (what the loop waits for)
 * @returns the generator yielding the one {@link CPU_RELAX} point
 * @see include/asm-generic/processor.h cpu_relax()
 */
export function* cpuRelax(pfn?: number, note?: string): KernelGen {
  const point: { op: string; pfn?: number; note?: string } = { op: CPU_RELAX };
  if (pfn !== undefined) point.pfn = pfn;
  if (note !== undefined) point.note = note;
  yield point;
}

/**
 * Whether `p` is a spin-wait's {@link CPU_RELAX} point.
 * @param p a point a task yielded
 */
export function isCpuRelax(p: SchedPoint): boolean {
  return p.op === CPU_RELAX;
}

/**
 * The only task able to run spins: its step ended at {@link CPU_RELAX}, it ran one more
 * round of its loop alone, and that round ended at `cpu_relax` again. Nothing can change
 * what it waits for: every other live task is blocked or held off its CPU, or none is left.
 * `reason` names the spinner and the other live tasks; `dump` lists the spinner with the
 * locks it holds, then every other live task as a {@link Deadlock} report does (what it
 * waits on, who holds that). Thrown by {@link Scheduler.runAll}; like a Deadlock, it does
 * not halt the machine.
 * @see kernel/watchdog.c (the soft-lockup report of a CPU that never gets past a loop)
 */
export class Livelock extends MmBug {
  /** The stable kind of this failure, as tests and the explorer's reports name it. */
  readonly kind = 'livelock';
  /** The spinning task (runnable, its last point a {@link CPU_RELAX}). */
  spinner: Task | undefined = undefined;
  /** The other live tasks, each with what it waits on (blocked, or held off its CPU). */
  entries: readonly DeadlockEntry[] = [];

  /**
   * @param reason one-line summary
   * @param dump the per-task listing
   */
  constructor(reason: string, dump = '') {
    super(reason, dump);
    Object.defineProperty(this, 'name', { value: 'Livelock' });
  }
}

/**
 * The {@link Livelock} error of `spinner`, the only task able to run, whose round run alone
 * ended at {@link CPU_RELAX} again. `others` are the other live tasks, and `waits` their
 * deadlock report (its dump lists each with what it waits on and who holds that).
 * @param spinner the spinning task
 * @param others every other live task
 * @param waits the deadlock report of the live tasks (the spinner, runnable, is not in
 *   it); none when no other task is live
 */
export function livelockReport(
  spinner: Task,
  others: readonly Task[],
  waits?: { readonly dump: string; readonly entries: readonly DeadlockEntry[] },
): Livelock {
  const at = spinner.lastPoint === undefined ? CPU_RELAX : describeSpin(spinner.lastPoint);
  const lines = [
    `INFO: task ${spinner.label} (cpu ${spinner.cpu}) spins at ${at}: a round of its loop run alone failed again, and no other task can run to change what it waits for`,
  ];
  const held = spinner.held;
  if (held.length > 0)
    lines.push(`  holding ${held.map((h) => h.className + (h.read ? ' (read)' : '')).join(', ')}`);
  if (others.length === 0) lines.push('no other task is live: nothing can end the spin');
  else if (waits !== undefined && waits.dump !== '') lines.push(waits.dump);
  const live =
    others.length === 0
      ? 'no other task is live'
      : `${others.length} other live: ${others.map((t) => `${t.label} ${t.state}`).join(', ')}`;
  const err = new Livelock(
    `${spinner.label} spins at ${at} and no other task can run (${live})`,
    lines.join('\n'),
  );
  err.spinner = spinner;
  err.entries = waits?.entries ?? [];
  return err;
}

/**
 * The {@link Livelock} error of kernel code run outside any task (a plugin's plain call
 * that drives a task-form generator itself), whose spin-wait ended at {@link CPU_RELAX}
 * `point` in the round it ran alone: nothing else runs during such a call, so the rule of
 * {@link CPU_RELAX} applies from its first point on (one more round alone, then this
 * error). The point is described as in the Livelock {@link Scheduler.runAll} throws for a
 * spinning task: op, pfn, lock and note. It has no spinner and no entries.
 * @param what the plain call's name, e.g. `zsFree`
 * @param point the `cpu_relax` point its second round ended at
 * @returns the error to throw, once the generator is closed
 */
export function livelockOutsideTask(what: string, point: SchedPoint): Livelock {
  const at = describeSpin(point);
  return new Livelock(
    `${what}: spins at ${at} outside any task, and nothing can run during a plain call to end the spin`,
    `INFO: ${what} (no task) spins at ${at}: a round of its loop run alone failed again; end what holds it first, or call the task form from a task`,
  );
}

/** A spin-wait's point as reports show it: `cpu_relax pfn=0x1f test->lock (note)`. */
function describeSpin(p: SchedPoint): string {
  let s = p.op;
  if (p.pfn !== undefined) s += ` pfn=0x${p.pfn.toString(16)}`;
  if (p.lock !== undefined) s += ` ${p.lock}`;
  if (p.note !== undefined) s += ` (${p.note})`;
  return s;
}

/**
 * The count {@link giveWay} reads after a step: a task's cpu_relax points since another task
 * last took a step. `relaxes` is the count before the step, `sameTask` whether the step was
 * the previous step's task's, `spun` whether it ended at {@link CPU_RELAX}.
 * @param relaxes the count before the step
 * @param sameTask whether the task that stepped is the one of the step before
 * @param spun whether the step ended at cpu_relax
 */
export function relaxesAfter(relaxes: number, sameTask: boolean, spun: boolean): number {
  return (sameTask ? relaxes : 0) + (spun ? 1 : 0);
}

/**
 * The tasks that may run after a step of `spinner` that ended at {@link CPU_RELAX}: those of
 * `runq` other than it, put in `buf` and returned. When there are none, `runq` itself (the
 * spinner alone) while `relaxes`, its cpu_relax points since another task last took a step,
 * is just one: it runs one more round of its loop alone, since what it tested may have
 * changed while it was preempted. Once they are more, that round ended at `cpu_relax`
 * again and the spin cannot end: `undefined`, a {@link Livelock} is due.
 *
 * The one rule of both schedulers: {@link Scheduler.runAll} throws
 * {@link Scheduler.livelock}'s report on `undefined`, and `@mops/explorer`'s runner ends
 * the run with the same report as its failure.
 * @param runq the tasks that may be picked (runnable, not held off their CPU), ordered by id
 * @param spinner the task whose step just ended at `cpu_relax`
 * @param relaxes its cpu_relax points since another task last took a step (at least 1)
 * @param buf the array to fill with the others (its contents are replaced)
 * @returns the tasks that may be picked next (`buf` or `runq`), or `undefined` when
 *   `spinner` livelocks
 */
export function giveWay(
  runq: readonly Task[],
  spinner: Task,
  relaxes: number,
  buf: Task[],
): readonly Task[] | undefined {
  buf.length = 0;
  for (let i = 0; i < runq.length; i++) if (runq[i] !== spinner) buf.push(runq[i]);
  if (buf.length > 0) return buf;
  return relaxes > 1 ? undefined : runq;
}
