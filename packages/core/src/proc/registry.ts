/**
 * The /proc view registry of a machine: built-in views plus those plugins add
 * (e.g. `zsmalloc/classes`).
 * @module
 */

import { extfragIndexView, unusableIndexView } from '../compaction/views.js';
import { checkMachine, MopsError, valueKind } from '../errors.js';
import type { Machine } from '../machine.js';
import { memoryExt } from '../memory/mem.js';
import { buddyinfo } from './buddyinfo.js';
import { pagetypeinfo } from './pagetypeinfo.js';
import { vmstat } from './vmstat.js';
import { zoneinfo } from './zoneinfo.js';

/**
 * A /proc view: renders the machine's state as the kernel's file would read.
 * @param machine the machine to render
 * @returns the file's text, newline-terminated
 */
export type ProcViewFn = (machine: Machine) => string;

/** The views every machine has, by name: /proc's, then debugfs's extfrag files. */
export const BUILTIN_PROC_VIEWS: Readonly<Record<string, ProcViewFn>> = Object.freeze({
  buddyinfo,
  pagetypeinfo,
  vmstat,
  zoneinfo,
  extfrag_index: extfragIndexView,
  unusable_index: unusableIndexView,
});

/** The {@link memoryExt} key of a machine's registered views. */
const EXTRA = {};

/** The views registered on `machine`, if any. */
const extraViews = (machine: Machine): Map<string, ProcViewFn> | undefined =>
  machine.mem.ext.get(EXTRA) as Map<string, ProcViewFn> | undefined;

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;

/** Strips a leading `/proc/` so both `buddyinfo` and `/proc/buddyinfo` name a view. */
function normalize(name: string): string {
  return name.replace(/^\/proc\//, '');
}

/**
 * Adds a view to one machine, e.g. `registerProcView(m, 'zsmalloc/classes', fn)`. Names
 * are path-like (`[A-Za-z0-9_.-]` segments joined by `/`). A plugin's register calls it.
 * @param machine the machine the view belongs to (views are per machine)
 * @param name the view's path, with or without a leading `/proc/`
 * @param fn renders the view from the machine
 * @throws {@link MopsError} `E_USAGE` for a bad name, a name already taken (built-in or
 *   registered) or an `fn` that is not a function
 */
export function registerProcView(machine: Machine, name: string, fn: ProcViewFn): void {
  const n = normalize(name);
  if (!NAME_RE.test(n))
    throw new MopsError(
      'E_USAGE',
      `proc view name '${name}' is not a path of [A-Za-z0-9_.-] segments (e.g. 'zsmalloc/classes')`,
      'name',
    );
  if (typeof fn !== 'function')
    throw new MopsError('E_USAGE', `proc view '${n}': give a function (machine) => string`, 'fn');
  const views = memoryExt(machine.mem, EXTRA, () => new Map<string, ProcViewFn>());
  if (Object.hasOwn(BUILTIN_PROC_VIEWS, n) || views.has(n))
    throw new MopsError('E_USAGE', `proc view '${n}' already exists on this machine`, 'name');
  views.set(n, fn);
}

/**
 * Names of the views of `machine`.
 * @param machine the machine
 * @returns the built-ins, then the registered ones, sorted
 */
export function procViewNames(machine: Machine): string[] {
  const added = [...(extraViews(machine)?.keys() ?? [])].sort();
  return [...Object.keys(BUILTIN_PROC_VIEWS), ...added];
}

/**
 * Renders view `name` (`'buddyinfo'` or `'/proc/buddyinfo'`) of `machine`. It only reads:
 * a halted machine can be shown too.
 * @param machine the machine (not `m.mem`)
 * @param name a built-in view (buddyinfo, pagetypeinfo, vmstat, zoneinfo, extfrag_index,
 *   unusable_index) or one a plugin registered (e.g. `zsmalloc/classes`)
 * @returns the text, in the layout of the profile's release
 * @throws {@link MopsError} `E_USAGE` when `machine` is not a machine, or listing the known
 *   names when there is no such view
 */
export function procView(machine: Machine, name: string): string {
  checkMachine(machine, 'procView');
  const n = typeof name === 'string' ? normalize(name) : '';
  const fn = Object.hasOwn(BUILTIN_PROC_VIEWS, n)
    ? BUILTIN_PROC_VIEWS[n]
    : extraViews(machine)?.get(n);
  if (!fn)
    throw new MopsError(
      'E_USAGE',
      `no proc view ${typeof name === 'string' ? `'${name}'` : valueKind(name)}; known views: ${procViewNames(machine).join(', ')}`,
      'name',
    );
  return fn(machine);
}
