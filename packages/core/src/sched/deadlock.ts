/**
 * The report of a machine whose live tasks are all blocked: the hung-task listing with the
 * locks each task holds.
 * @module
 */

import { MmBug } from '../errors.js';
import { cpuHoldReason } from './cpu.js';
import { describeHeldLocks, type Lockdep } from './lockdep.js';
import { Livelock } from './relax.js';
import type { Task } from './task.js';
import type { WaitKey } from './types.js';

/**
 * One task in a {@link Deadlock} report: blocked, or runnable but kept off its CPU by a task
 * that cannot let go of it (key `cpu:<n>`).
 */
export interface DeadlockEntry {
  /** The blocked (or CPU-starved) task. */
  readonly task: Task;
  /** What it waits on: a wait key, or `cpu:<n>` for a CPU held by another task. */
  readonly key: WaitKey;
  /** Description of the wait. */
  readonly what: string;
  /**
   * Tasks holding the lock it waits for (by lockdep's records), if any, or the task holding
   * its CPU. Always empty for a page-lock wait: page locks record no owner.
   */
  readonly holders: readonly Task[];
}

/**
 * Every live task is blocked, or runnable on a CPU another task holds with preemption off
 * and will never let go of: nothing can ever make progress. The text lists each task, what
 * it waits for and who holds that lock (or CPU), like the kernel's hung-task report with
 * lockdep's "Showing all locks held in the system". A page lock records no owner (nor does
 * lockdep track it), so for a page-lock wait the text says that instead of naming a holder.
 * @see kernel/hung_task.c
 */
export class Deadlock extends MmBug {
  /** The blocked tasks (set by the scheduler that detected the deadlock). */
  entries: readonly DeadlockEntry[] = [];

  /**
   * @param reason one-line summary
   * @param dump the per-task listing
   */
  constructor(reason: string, dump = '') {
    super(reason, dump);
    Object.defineProperty(this, 'name', { value: 'Deadlock' });
  }
}

/**
 * The {@link Deadlock} error for `tasks` when none can make progress: each blocked task, what
 * it waits on, who holds that lock (by lockdep's records, or the task a lock was handed to
 * that has yet to run: `handedTo`) and the locks it holds; each runnable task kept off its
 * CPU (`cpuHolder`), and by whom.
 */
export function deadlockReport(
  tasks: readonly Task[],
  lockdep: Lockdep,
  cpuHolder: (t: Task) => Task | undefined = () => undefined,
  handedTo: (key: WaitKey) => Task | undefined = () => undefined,
): Deadlock {
  const entries: DeadlockEntry[] = [];
  const lines: string[] = [];
  let pageWaits = 0;
  for (const t of tasks) {
    const holder = t.state === 'runnable' ? cpuHolder(t) : undefined;
    if (holder !== undefined) {
      const key = `cpu:${t.cpu}`;
      entries.push({ task: t, key, what: `cpu ${t.cpu}`, holders: [holder] });
      lines.push(
        `INFO: task ${t.label} (cpu ${t.cpu}) runnable, but cpu ${t.cpu} is held by ${holder.label} (${cpuHoldReason(holder)})`,
        ...indented(describeHeldLocks(t)),
      );
      continue;
    }
    if (t.state !== 'blocked' || t.blockedOn === undefined) continue;
    const { key, what } = t.blockedOn;
    let holders = lockdep.holders(key);
    const handed = holders.length === 0 ? handedTo(key) : undefined;
    if (handed !== undefined) holders = [handed];
    entries.push({ task: t, key, what, holders });
    let by: string;
    if (handed !== undefined) by = `handed to ${handed.label}, which has yet to run`;
    else if (holders.length !== 0) by = `held by ${holders.map((h) => h.label).join(', ')}`;
    else {
      const pfn = pageLockPfn(key);
      if (pfn < 0) by = 'no task holds it or can wake it';
      else {
        by = `PG_locked of pfn 0x${pfn.toString(16)}: page locks record no owner`;
        pageWaits++;
      }
    }
    lines.push(
      `INFO: task ${t.label} (cpu ${t.cpu}) blocked on ${what} [${key}], ${by}`,
      ...indented(describeHeldLocks(t)),
    );
  }
  if (pageWaits !== 0) {
    lines.push(
      'Page locks record no owner and lockdep does not track them: a task holding one does',
      'not list it among its locks.',
    );
  }
  const names = entries.map((e) => e.task.label).join(', ');
  const starved = entries.some((e) => e.key.startsWith('cpu:'));
  const err = new Deadlock(
    `${starved ? 'no live task can run' : 'every live task is blocked'} (${entries.length}: ${names})`,
    lines.join('\n'),
  );
  err.entries = entries;
  return err;
}

/**
 * The folio pfn of a page-lock wait key (`page:<pfn>`, as page/lock.ts's pageWaitKey()
 * builds it), or -1 for any other key.
 */
function pageLockPfn(key: WaitKey): number {
  if (!key.startsWith('page:')) return -1;
  const rest = key.slice(5);
  return /^\d+$/.test(rest) ? Number(rest) : -1;
}

function indented(text: string): string[] {
  return text.split('\n').map((l) => `  ${l}`);
}

/**
 * Halts the machine of `mem` on a kernel BUG `e` raised by code run on it, as Machine.run
 * does (the first BUG stays the reason): later kernel calls are `MopsError('E_HALTED')`. A
 * {@link Deadlock} (every task blocked) or {@link Livelock} (a task spinning with no other
 * able to run) does not halt it: no kernel state is broken, the tasks are just stuck. Nor
 * does any other error.
 * @param mem the memory of the machine the code ran on
 * @param e what the code threw
 */
export function haltOnBug(mem: { halted: MmBug | undefined }, e: unknown): void {
  if (e instanceof MmBug && !(e instanceof Deadlock) && !(e instanceof Livelock)) mem.halted ??= e;
}
