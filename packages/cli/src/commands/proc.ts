/**
 * `mops proc VIEW`: a /proc, debugfs or plugin text view of an emulated machine.
 * @module
 */

import { MopsError, procView, procViewNames } from '@mops/core';
import { healthLines, machineHealth } from '../health.js';
import type { Io } from '../io.js';
import { buildMachine, type MachineOptions, runWorkload } from '../machine.js';

/** Options of `mops proc`. */
export interface ProcOptions extends MachineOptions {
  /** Run a workload first. */
  readonly workload: string;
}

/** The bundled plugins' views, by the `--plugin` that provides each. */
const PLUGIN_VIEWS: Readonly<Record<string, string>> = {
  'zsmalloc/classes': 'zsmalloc',
  'zram/mm_stat': 'zsmalloc',
  'balloon/stats': 'balloon',
};

/** Prints one view. */
export async function proc(io: Io, view: string, opts: ProcOptions): Promise<number> {
  const m = await buildMachine(opts);
  const name = view.replace(/^\/proc\//, '');
  if (Object.hasOwn(PLUGIN_VIEWS, name) && !procViewNames(m).includes(name))
    throw new MopsError(
      'E_USAGE',
      `proc view '${view}' comes from a plugin: add --plugin ${PLUGIN_VIEWS[name]}`,
      '--plugin',
    );
  await runWorkload(m, opts.workload);
  io.out(procView(m, view));
  // The view stays the whole of standard output; a failed check goes to standard error.
  const health = machineHealth(m);
  if (health.ok) return 0;
  io.err(`${healthLines(health).join('\n')}\n`);
  return 1;
}
