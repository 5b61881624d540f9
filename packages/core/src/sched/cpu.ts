/**
 * Tasks sharing an emulated CPU. The scheduler models a preemptible kernel
 * (CONFIG_PREEMPT): tasks given the same {@link SpawnOptions.cpu} interleave at any
 * scheduling point, except that a task with preemption off keeps the other tasks of its CPU
 * off it: one holding a spinlock or a non-sleeping rwlock_t ({@link Task.atomicDepth} > 0),
 * or spinning for one ({@link Task.spinning}). Tasks on different CPUs are never held back.
 * @see include/linux/preempt.h preempt_disable()
 * @module
 */

import type { Task } from './task.js';

/**
 * Whether `u` keeps the other tasks of its CPU off it: it is runnable with preemption off,
 * or spins for a lock (a spinner stays on its CPU until it has taken the lock).
 */
function holdsCpu(u: Task): boolean {
  return u.spinning || (u.state === 'runnable' && u.atomicDepth > 0);
}

/**
 * The task keeping `t` off its CPU: another live task of `tasks` on the same CPU that
 * {@link holdsCpu}. Undefined when `t` may run.
 */
export function cpuHolder(tasks: readonly Task[], t: Task): Task | undefined {
  for (let i = 0; i < tasks.length; i++) {
    const u = tasks[i];
    if (u !== t && u.cpu === t.cpu && holdsCpu(u)) return u;
  }
  return undefined;
}

/** Fills `out` with the tasks of `runq` no other task keeps off their CPU; returns it. */
export function pickableInto(runq: readonly Task[], tasks: readonly Task[], out: Task[]): Task[] {
  out.length = 0;
  for (let i = 0; i < runq.length; i++) {
    const t = runq[i];
    if (cpuHolder(tasks, t) === undefined) out.push(t);
  }
  return out;
}

/** Why `holder` keeps its CPU, for reports: the lock it holds or spins for. */
export function cpuHoldReason(holder: Task): string {
  if (holder.spinning && holder.blockedOn !== undefined)
    return `spinning in ${holder.blockedOn.what}`;
  const held = holder.held;
  const last = held.length === 0 ? undefined : held[held.length - 1];
  return last === undefined
    ? `preempt_count ${holder.atomicDepth}`
    : `holding ${last.className}, preempt_count ${holder.atomicDepth}`;
}
