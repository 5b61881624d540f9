/**
 * The contract between kernel-context code and the scheduler.
 *
 * Kernel functions are generator functions. Before each primitive that the kernel performs
 * atomically or under a lock, a kernel function yields a small descriptor — but only while
 * `sched.preemptible` is true (more than one live task, or a test stepping tasks by hand),
 * so a task running alone pays nothing for its scheduling points.
 * @module
 */

/** Where a task is waiting: a page lock, a named lock, or any other wait queue. */
export type WaitKey = string;

/** A scheduling point: the primitive the task is about to perform. */
export interface SchedPoint {
  /** The kernel primitive, e.g. `'trylock_page'`, `'folio_try_get'`, `'spin_lock'`. */
  readonly op: string;
  /** The page frame involved, if any. */
  readonly pfn?: number;
  /** The lock involved, if any (its lockdep class name). */
  readonly lock?: string;
  /** Free text for reports (e.g. the kernel function making the call). */
  readonly note?: string;
}

/**
 * Yielded by a task that must sleep until another task calls `wake(key)` (a contended
 * sleeping lock, a page lock, a wait queue). The scheduler parks the task; it never runs
 * again before that wake.
 */
export interface BlockPoint extends SchedPoint {
  readonly op: 'block';
  /**
   * What the task sleeps on: the key a later `wake(key)` names (a lock's, a page's
   * `pageWaitKey`, a wait queue's).
   */
  readonly key: WaitKey;
  /** Human-readable description of what the task waits for, e.g. `'lock_page pfn 0x12'`. */
  readonly what: string;
}

/** What every kernel-context generator yields. */
export type Yielded = SchedPoint | BlockPoint;

/** A kernel-context function's generator. */
export type KernelGen<T = void> = Generator<Yielded, T, undefined>;

/** Task flags (the subset of PF_* mops models). */
export const PF_MEMALLOC = 0x800;
/**
 * A kernel thread (kcompactd, kswapd, a workqueue's worker): it ends by exiting, where
 * lockdep reports the locks it still holds as `still has locks held!`, rather than by
 * returning to user space.
 */
export const PF_KTHREAD = 0x00200000;
/**
 * A workqueue's worker (`Scheduler.queueWork` spawns its work items with it and
 * PF_KTHREAD): it does not exit after a work item, and process_one_work() reports one that
 * comes back holding locks or in atomic context (`BUG: workqueue leaked …`).
 */
export const PF_WQ_WORKER = 0x00000020;

/** A kernel thread code runs as, for the trace (`Scheduler.asKthread`). */
export interface KthreadContext {
  /** Its comm, e.g. `'kswapd0'`. */
  readonly name: string;
  /** Its pid. */
  readonly id: number;
  /** The CPU it shows on. */
  readonly cpu: number;
}
