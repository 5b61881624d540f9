/**
 * `mops proc VIEW`: a /proc, debugfs or plugin text view of an emulated machine.
 * @module
 */

import { type Machine, MopsError, procView, procViewNames } from '@mops/core';
import { healthLines, machineHealth, warningsPointer, warningsText } from '../health.js';
import { checkWritable, type Io, writeOutputFile } from '../io.js';
import { checkNonBlank } from '../load.js';
import { buildMachine, type MachineOptions, runWorkload } from '../machine.js';
import { inertSysctlWarnings } from '../sysctl_reach.js';

/** Options of `mops proc`. */
export interface ProcOptions extends MachineOptions {
  /** Run a workload first. */
  readonly workload: string;
  /** Write every warning in full (with its dump_page) to this file. */
  readonly warnings?: string;
}

/** The bundled plugins' views, by the `--plugin` that provides each. */
const PLUGIN_VIEWS: Readonly<Record<string, string>> = {
  'zsmalloc/classes': 'zsmalloc',
  'zram/mm_stat': 'zsmalloc',
  'balloon/stats': 'balloon',
};

/**
 * Checks, before the run, that `m` has the view `name` (without `/proc/`): a bundled
 * plugin's view on a machine without that plugin is `MopsError('E_USAGE')` saying which
 * `--plugin` to add; with `option` (`--proc`), an unknown view is one too, naming the
 * option and the machine's views (without, procView says it).
 */
export function checkView(m: Machine, name: string, option?: string): void {
  const views = procViewNames(m);
  if (views.includes(name)) return;
  const where = option === undefined ? '' : `${option}: `;
  if (Object.hasOwn(PLUGIN_VIEWS, name))
    throw new MopsError(
      'E_USAGE',
      `${where}proc view '${name}' comes from a plugin: add --plugin ${PLUGIN_VIEWS[name]}`,
      '--plugin',
    );
  if (option !== undefined)
    throw new MopsError(
      'E_USAGE',
      `${where}no proc view '${name}'; known views: ${views.join(', ')}`,
      option,
    );
}

/** Prints one view. */
export async function proc(io: Io, view: string, opts: ProcOptions): Promise<number> {
  if (opts.warnings !== undefined) checkWarningsFile(opts.warnings);
  // A view of a --from-proc copy that prints back otherwise says where (zoneinfo, vmstat).
  const file = view.replace(/^\/proc\//, '');
  const notes: string[] = [];
  const m = await buildMachine({ ...opts, onFromProcNote: (n) => notes.push(n) });
  checkView(m, file);
  for (const n of notes) if (n.startsWith(`${file}:`)) io.err(`mops: note: ${n}\n`);
  for (const w of inertSysctlWarnings(m, opts.sysctls ?? [], { command: 'proc' }))
    io.err(`mops: warning: ${w}\n`);
  await runWorkload(m, opts.workload);
  io.out(procView(m, view));
  // The view stays the whole of standard output; a failed check goes to standard error.
  const health = machineHealth(m);
  if (opts.warnings !== undefined)
    writeOutputFile('--warnings', opts.warnings, warningsText(health));
  if (health.ok) return 0;
  io.err(`${healthLines(health, warningsPointer(opts.warnings, '--warnings FILE')).join('\n')}\n`);
  return 1;
}

/**
 * `proc --warnings`: a file, checked before the run. Standard output is the view's, so `-`
 * is `MopsError('E_USAGE')`.
 */
function checkWarningsFile(path: string): void {
  checkNonBlank(path, '--warnings', 'a file name');
  if (path === '-')
    throw new MopsError(
      'E_USAGE',
      "--warnings -: proc's standard output is the view; give --warnings a file",
      '--warnings',
    );
  checkWritable('--warnings', path);
}
