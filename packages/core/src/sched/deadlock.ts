/**
 * The report of a machine whose live tasks are all blocked: the hung-task listing with the
 * locks each task holds.
 * @module
 */

import { MmBug } from '../errors.js';
import { describeHeldLocks, type Lockdep } from './lockdep.js';
import type { Task } from './task.js';
import type { WaitKey } from './types.js';

/** One blocked task in a {@link Deadlock} report. */
export interface DeadlockEntry {
  /** The blocked task. */
  readonly task: Task;
  /** What it waits on. */
  readonly key: WaitKey;
  /** Description of the wait. */
  readonly what: string;
  /**
   * Tasks holding the lock it waits for (by lockdep's records), if any. Always empty for a
   * page-lock wait: page locks record no owner.
   */
  readonly holders: readonly Task[];
}

/**
 * Every live task is blocked: nothing can ever wake them. The text lists each task, what it
 * waits for and who holds that lock, like the kernel's hung-task report with lockdep's
 * "Showing all locks held in the system". A page lock records no owner (nor does lockdep
 * track it), so for a page-lock wait the text says that instead of naming a holder.
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
 * The {@link Deadlock} error for `tasks` when every live one is blocked: each blocked task, what
 * it waits on, who holds that lock (by lockdep's records) and the locks it holds.
 */
export function deadlockReport(tasks: readonly Task[], lockdep: Lockdep): Deadlock {
  const entries: DeadlockEntry[] = [];
  const lines: string[] = [];
  let pageWaits = 0;
  for (const t of tasks) {
    if (t.state !== 'blocked' || t.blockedOn === undefined) continue;
    const { key, what } = t.blockedOn;
    const holders = lockdep.holders(key);
    entries.push({ task: t, key, what, holders });
    let by: string;
    if (holders.length !== 0) by = `held by ${holders.map((h) => h.label).join(', ')}`;
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
      ...describeHeldLocks(t)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  if (pageWaits !== 0) {
    lines.push(
      'Page locks record no owner and lockdep does not track them: a task holding one does',
      'not list it among its locks.',
    );
  }
  const names = entries.map((e) => e.task.label).join(', ');
  const err = new Deadlock(
    `every live task is blocked (${entries.length}: ${names})`,
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
