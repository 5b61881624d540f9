/**
 * `mops proc VIEW`: a /proc or debugfs text view of an emulated machine.
 * @module
 */

import { createMachine, machineFromProc, mixedChurn, procView } from '@mops/core';
import type { Io } from '../io.js';

/** Options of `mops proc`. */
export interface ProcOptions {
  /** Memory size. */
  memory: string;
  /** Seed. */
  seed: number;
  /** Profile name. */
  profile: string;
  /** Run a workload first: `none` or `churn`. */
  workload: string;
  /** Build the machine from a real machine's /proc files in this directory. */
  fromProc?: string;
}

/** Prints one view. */
export function proc(io: Io, view: string, opts: ProcOptions): number {
  const m = opts.fromProc
    ? machineFromProc(opts.fromProc)
    : createMachine({
        memory: opts.memory,
        seed: opts.seed,
        profile: opts.profile as 'v6.3',
        contents: false,
      });
  if (opts.workload === 'churn') mixedChurn(m);
  io.out(procView(m, view));
  return 0;
}
