/**
 * `mops proc VIEW`: a /proc, debugfs or plugin text view of an emulated machine.
 * @module
 */

import { procView } from '@mops/core';
import type { Io } from '../io.js';
import { buildMachine, type MachineOptions, runWorkload } from '../machine.js';

/** Options of `mops proc`. */
export interface ProcOptions extends MachineOptions {
  /** Run a workload first. */
  readonly workload: string;
}

/** Prints one view. */
export async function proc(io: Io, view: string, opts: ProcOptions): Promise<number> {
  const m = await buildMachine(opts);
  await runWorkload(m, opts.workload);
  io.out(procView(m, view));
  return 0;
}
