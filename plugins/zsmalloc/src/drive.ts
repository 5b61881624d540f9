/**
 * Running kernel-context code outside any task.
 * @module
 */

import {
  CPU_RELAX,
  haltOnBug,
  type KernelGen,
  livelockOutsideTask,
  type Memory,
  MopsError,
} from '@mops/core';

/**
 * The waits an open mapping (objReadBegin) may be the cause of: for the zspage lock's
 * readers.
 */
const MAPPING_HELD = /^migrate_write_lock/;

/** The error of a plain call `what` that would wait for `lock`, which a task (or a mapping) holds. */
export function wouldWait(what: string, lock: string): MopsError {
  return new MopsError(
    'E_STATE',
    `${what}: would wait for ${lock}, which ${MAPPING_HELD.test(lock) ? 'a task or a mapping still open holds; call the task form from a task, or end the mapping first' : 'a task holds; call the task form from a task'}`,
  );
}

/**
 * Runs a kernel-context generator to its end outside any task. The pool's plain calls use
 * it: points are not scheduling opportunities there, but a wait is impossible, so a lock
 * held by a task makes the call fail with `E_STATE`. A spin-wait (core's `cpu_relax`
 * point) runs one more round, as a spinner running alone does under the scheduler; when
 * that round ends at `cpu_relax` again, nothing can end the spin (nothing else runs during
 * a plain call): core's `Livelock`, naming the call and what it spins on (in v4.8, zsFree
 * or objRead of an object still mapped spins on its handle's pin). Either way the
 * generator is closed first (`return()`), so its `finally` blocks give back what it took:
 * the call changes nothing.
 *
 * A kernel BUG raised on the way (an MmBug, e.g. a spin_unlock of a lock not held, which
 * the lock raises without a page dump) halts the machine of `mem`, as `Machine.run` does
 * for one raised in a task and `bug()` for one with a page dump: later kernel calls on the
 * machine are `MopsError('E_HALTED')`, this one included: on a halted machine it refuses
 * with E_HALTED before running anything, as `Machine.run` does. A Livelock does not halt
 * it. Without `mem` the BUG is only rethrown and nothing is refused.
 * @param g the task-form call
 * @param what the plain call's name, for its errors
 * @param mem the memory of the machine the code runs on
 */
export function drive<T>(g: KernelGen<T>, what: string, mem?: Memory): T {
  mem?.assertRunning();
  return driveToEnd(g, what, mem);
}

/**
 * {@link drive} without its check that the machine runs: for kernel code a call already
 * under way runs outside any task (a movable_operations callback run alone), which must
 * finish what it started.
 */
export function driveToEnd<T>(g: KernelGen<T>, what: string, mem?: Memory): T {
  // Nothing else runs here: the first cpu_relax lets the loop run one more round alone,
  // the second is the Livelock (core's CPU_RELAX rule).
  let relaxes = 0;
  try {
    for (;;) {
      const r = g.next();
      if (r.done === true) return r.value;
      const op = r.value.op;
      if (op === 'block') {
        const w = (r.value as { what?: string }).what ?? 'a lock';
        g.return(undefined as T);
        throw wouldWait(what, w);
      }
      if (op === CPU_RELAX && ++relaxes > 1) {
        g.return(undefined as T);
        throw livelockOutsideTask(what, r.value);
      }
    }
  } catch (e) {
    if (mem !== undefined) haltOnBug(mem, e);
    throw e;
  }
}
