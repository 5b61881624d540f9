/**
 * Running kernel-context code outside any task.
 * @module
 */

import { type KernelGen, MopsError } from '@mops/core';

/**
 * The waits an open mapping (objReadBegin) may be the cause of: for the handle's pin (v4.8)
 * and for the zspage lock's readers.
 */
const MAPPING_HELD = /^(pin_tag|migrate_write_lock)/;

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
 * held by a task makes the call fail with `E_STATE`. The generator is closed first
 * (`return()`), so its `finally` blocks give back what it took: the call changes nothing.
 */
export function drive<T>(g: KernelGen<T>, what: string): T {
  for (;;) {
    const r = g.next();
    if (r.done === true) return r.value;
    if (r.value.op === 'block') {
      const w = (r.value as { what?: string }).what ?? 'a lock';
      g.return(undefined as T);
      throw wouldWait(what, w);
    }
  }
}
