/**
 * Tasks sharing an emulated CPU. The scheduler models a preemptible kernel
 * (CONFIG_PREEMPT): tasks given the same {@link SpawnOptions.cpu} interleave at any
 * scheduling point, except that a task with preemption off keeps the other tasks of its CPU
 * off it: one holding a spinlock or a non-sleeping rwlock_t ({@link Task.atomicDepth} > 0),
 * or spinning for one ({@link Task.spinning}), from the step that left it so until the step
 * that ends it. A task that sleeps gives its CPU up, even with locks held (a bug the
 * scheduler reports as a sleep in atomic context). Tasks on different CPUs are never held
 * back.
 * @see include/linux/preempt.h preempt_disable()
 * @module
 */

import type { Task } from './task.js';

/**
 * The task keeping `t` off its CPU: another live task of `tasks` on the same CPU that is on
 * it with preemption off ({@link Task.cpuHeld}: holding a spinlock, or spinning for one,
 * where its last step left it). Undefined when `t` may run.
 */
export function cpuHolder(tasks: readonly Task[], t: Task): Task | undefined {
  for (let i = 0; i < tasks.length; i++) {
    const u = tasks[i];
    if (u !== t && u.cpuHeld && u.cpu === t.cpu) return u;
  }
  return undefined;
}

/** Whether `t`, its step just ended, stays on its CPU with preemption off. */
export function keepsCpu(t: Task): boolean {
  return t.spinning || (t.atomicDepth > 0 && t.state === 'runnable');
}

/** Whether some task of `runq` may run: no other task keeps it off its CPU. */
export function anyPickable(runq: readonly Task[], tasks: readonly Task[]): boolean {
  for (let i = 0; i < runq.length; i++) if (cpuHolder(tasks, runq[i]) === undefined) return true;
  return false;
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
