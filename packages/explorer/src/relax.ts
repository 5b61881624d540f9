/**
 * Spin-waits: the `cpu_relax` scheduling point that a task yields in each round of a loop
 * waiting for another task to change something (a refcount frozen by a migrator, a slot
 * being replaced), and the livelock the runner reports when no other task can run.
 * @module
 */

import type { KernelGen, SchedPoint, Scheduler, Task } from '@mops/core';
import { describePoint } from './report.js';
import type { Failure } from './run_types.js';

/**
 * The op of a spin-wait's scheduling point: `{ op: 'cpu_relax' }`, yielded by a task at the
 * end of each round of a loop that waits for another task (filemap_get_entry()'s `goto
 * repeat` after a failed folio_try_get(), a seqcount retry, a cmpxchg loop on a value
 * another task holds frozen), whether or not the kernel's loop calls cpu_relax() there.
 *
 * The explorer does not run a task again right after a step that ended at this point:
 * another task runs first, under every strategy (random, PCT, DFS, replay), so the task it
 * waits for makes progress, and switching away from the spinner is not counted as a
 * preemption. When no other task can run (every other one is blocked, held off its CPU or
 * finished), the spinner runs one more round of its loop alone, since what it tested may
 * have changed while it was preempted; when that round too ends at `cpu_relax`, every
 * later one would see the same state and the spin cannot end: the run fails at once with a
 * `livelock`, listing the tasks and what each waits on.
 */
export const CPU_RELAX = 'cpu_relax';

/**
 * The point a spin-wait yields in each round: `yield* cpuRelax(pfn)`, in the loop that
 * waits for another task. Yielded whether or not `sched.preemptible` is set: a task
 * spinning alone must reach the explorer, which reports the livelock, instead of looping
 * for ever inside one step. Use it only where a round of the loop that fails changes
 * nothing a next round reads: a loop bounded by its own count (three attempts, then give
 * up) ends without another task, and would be reported as a livelock once it runs alone.
 * @param pfn the page the loop waits on, for reports
 * @param note free text for reports (what the loop waits for)
 */
export function* cpuRelax(pfn?: number, note?: string): KernelGen {
  const point: { op: string; pfn?: number; note?: string } = { op: CPU_RELAX };
  if (pfn !== undefined) point.pfn = pfn;
  if (note !== undefined) point.note = note;
  yield point;
}

/** Whether `p` is a spin-wait's {@link CPU_RELAX} point. */
export function isCpuRelax(p: SchedPoint): boolean {
  return p.op === CPU_RELAX;
}

/** `runnable` without `spinner` (a new array). */
export function othersThan(runnable: readonly Task[], spinner: Task | undefined): Task[] {
  const out: Task[] = [];
  for (const t of runnable) if (t !== spinner) out.push(t);
  return out;
}

/**
 * The failure of a run whose only task able to run, `spinner`, ran a whole round of its
 * spin-wait alone and ended it at {@link CPU_RELAX} again: nothing can change what it waits
 * for. The detail lists the spinner with the locks it holds, then every other live task
 * (blocked, or held off its CPU) as the scheduler's deadlock report does.
 */
export function livelock(sched: Scheduler, spinner: Task, step: number): Failure {
  const at = spinner.lastPoint === undefined ? CPU_RELAX : describePoint(spinner.lastPoint);
  const lines = [
    `INFO: task ${spinner.label} (cpu ${spinner.cpu}) spins at ${at}: a round of its loop run alone failed again, and no other task can run to change what it waits for`,
  ];
  const held = spinner.held;
  if (held.length > 0)
    lines.push(`  holding ${held.map((h) => h.className + (h.read ? ' (read)' : '')).join(', ')}`);
  const others = sched.tasks.filter((t) => t !== spinner);
  if (others.length === 0) lines.push('no other task is live: nothing can end the spin');
  else {
    const dump = sched.deadlock().dump;
    if (dump !== '') lines.push(dump);
  }
  return {
    kind: 'livelock',
    message: `${spinner.label} spins at ${at} and no other task can run (${others.length === 0 ? 'no other task is live' : `${others.length} other live: ${others.map((t) => `${t.label} ${t.state}`).join(', ')}`})`,
    detail: lines.join('\n'),
    step,
  };
}

/**
 * The failure of a run stopped after `maxSteps` steps: a loop that never ends, most likely
 * one waiting for another task without yielding {@link CPU_RELAX} in each round (the task
 * it waits for may then never be chosen). The detail lists every live task and the point
 * it last reached.
 */
export function noEnd(sched: Scheduler, maxSteps: number): Failure {
  const lines = sched.tasks.map((t) => {
    const at = t.lastPoint === undefined ? 'no point yet' : describePoint(t.lastPoint);
    return `task ${t.label} (cpu ${t.cpu}) ${t.state}, ${t.steps} points, last at ${at}`;
  });
  return {
    kind: 'error',
    message: `no end after ${maxSteps} steps (livelock? a loop that waits for another task must yield { op: '${CPU_RELAX}' } in each round, e.g. yield* cpuRelax(pfn))`,
    detail: lines.join('\n'),
    step: maxSteps,
  };
}
