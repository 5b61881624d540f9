/**
 * Workqueue workers: what process_one_work() checks after a work item.
 * @module
 */

import { describeHeldLocks } from './lockdep.js';
import type { Scheduler } from './scheduler.js';
import type { Task } from './task.js';

/**
 * process_one_work()'s check after a work item: a worker back in atomic context, or
 * holding locks (lockdep's count of them: none without lockdep), is reported with its
 * held locks (warning kind `workqueue_leak`), in the release's format
 * (`Scheduler.workqueueLeakRcu`). The worker lives on, so lockdep's exit check does not
 * run.
 * @see kernel/workqueue.c process_one_work()
 */
export function workqueueLeak(s: Scheduler, task: Task): void {
  const lockdep = s.lockdep.enabled;
  const depth = lockdep ? task.heldKeys.length : 0;
  const preempt = task.atomicDepth;
  if (preempt === 0 && depth === 0) return;
  const pc = `0x${preempt.toString(16).padStart(8, '0')}`;
  const fn = task.workfn ?? task.name;
  const head = s.workqueueLeakRcu
    ? [
        `BUG: workqueue leaked atomic, lock or RCU: ${task.name}[${task.id}]`,
        `     preempt=${pc} lock=0->${depth} RCU=0->0 workfn=${fn}`,
      ]
    : [
        `BUG: workqueue leaked lock or atomic: ${task.name}/${pc}/${task.id}`,
        `     last function: ${fn}`,
      ];
  const held = lockdep ? describeHeldLocks(task) : 'INFO: lockdep is turned off.';
  s.warn('workqueue_leak', [...head, held].join('\n'));
}
