/**
 * Spin-waits: the `cpu_relax` scheduling point that a task yields in each round of a loop
 * waiting for another task to change something (a refcount frozen by a migrator, a slot
 * being replaced), and the livelock the runner reports when no other task can run. The
 * point (`CPU_RELAX`, `cpuRelax`, `isCpuRelax`) is `@mops/core`'s, re-exported here. What
 * may run after it is core's rule too (`giveWay`): the runner applies it as core's
 * `Scheduler.runAll`, and so `Machine.run`, does.
 * @module
 */

import { CPU_RELAX, type Scheduler, type Task } from '@mops/core';
import { describePoint } from './report.js';
import type { Failure } from './run_types.js';

// The spin-wait point is core's: explorer users import it from here as before.
export { CPU_RELAX, cpuRelax, isCpuRelax } from '@mops/core';

/**
 * The failure of a run whose only task able to run, `spinner`, ran a whole round of its
 * spin-wait alone and ended it at {@link CPU_RELAX} again: nothing can change what it waits
 * for. Its message and detail are those of core's `Livelock` report
 * (`Scheduler.livelock()`): the detail lists the spinner with the locks it holds, then
 * every other live task (blocked, or held off its CPU) as the scheduler's deadlock report
 * does.
 */
export function livelock(sched: Scheduler, spinner: Task, step: number): Failure {
  const e = sched.livelock(spinner);
  return { kind: 'livelock', message: e.reason, detail: e.dump, step };
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
