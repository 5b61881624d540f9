/**
 * Tasks, scheduling points, locks and lockdep-lite: the concurrency layer of mops.
 * @module
 */

export { Deadlock, type DeadlockEntry, haltOnBug } from './deadlock.js';
export {
  type LockChain,
  Lockdep,
  type LockdepHost,
  type LockdepReport,
  type LockdepReportKind,
} from './lockdep.js';
export {
  Lock,
  type LockPoints,
  Mutex,
  SpinLock,
} from './locks.js';
export type {
  PickNext,
  SchedulerOptions,
  SchedWarning,
  SpawnOptions,
  Strategy,
  WakeFunction,
} from './options.js';
export { Prng } from './prng.js';
export {
  CPU_RELAX,
  cpuRelax,
  giveWay,
  isCpuRelax,
  Livelock,
  livelockOutsideTask,
  relaxesAfter,
} from './relax.js';
export { RwLock, type RwLockPoints, RwSemaphore } from './rwlock.js';
export { fatalSignalPending, mightSleep, Scheduler } from './scheduler.js';
export {
  BLOCK_CHECKED,
  BLOCK_SLEEP,
  BLOCK_SPIN,
  DONE_POINT,
  type HeldLock,
  LOCKDEP_READ,
  LOCKDEP_RECURSIVE_READ,
  LOCKDEP_TRYLOCK,
  Task,
  type TaskState,
  WQ_CUSTOM,
  WQ_DONE,
  WQ_EXCLUSIVE,
} from './task.js';
export {
  type BlockPoint,
  type KernelGen,
  type KthreadContext,
  PF_KTHREAD,
  PF_MEMALLOC,
  PF_WQ_WORKER,
  type SchedPoint,
  type WaitKey,
  type Yielded,
} from './types.js';
