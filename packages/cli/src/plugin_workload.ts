/**
 * `--workload plugin`: the pages of the `--plugin` drivers, made through each module's
 * `conformance.populate(machine, n)` and scattered through free memory.
 * @module
 */

import { allocPages, folioPut, GFP, type Machine, MmBug, MopsError, printable } from '@mops/core';
import { populateResultProblem } from '@mops/testkit';

/** A loaded plugin's `conformance.populate` export, for `--workload plugin`. */
export interface PopulateHook {
  /** The plugin's manifest name. */
  readonly name: string;
  /** Whether its manifest says `needsContents: true`. */
  readonly needsContents: boolean;
  /** The module's `conformance.populate`. */
  populate(m: Machine, n: number): unknown;
}

/** The populate hooks of the plugins each machine was built with. */
const populateHooks = new WeakMap<Machine, readonly PopulateHook[]>();

/** Records the populate hooks of the plugins `m` was built with. */
export function setPopulateHooks(m: Machine, hooks: readonly PopulateHook[]): void {
  populateHooks.set(m, hooks);
}

/**
 * What the command says when a plugin's populate throws: the plugin and the call named.
 * A kernel BUG stays what it is (the command reports it and exits 1). Page contents used
 * on a machine built without them is the plugin's manifest lacking `needsContents: true`
 * (a machine gets page contents only for the plugins that say so). Another MopsError
 * keeps its code; anything else the driver threw is `MopsError('E_PLUGIN')`.
 */
export function populateError(h: PopulateHook, e: unknown): unknown {
  if (e instanceof MmBug) return e;
  const call = `plugin ${h.name}: conformance.populate`;
  if (e instanceof MopsError) {
    if (e.code === 'E_STATE' && e.field === 'contents' && !h.needsContents)
      return new MopsError(
        'E_STATE',
        `${call} used page contents, which this machine was built without: a plugin that keeps data in pages says needsContents: true in its manifest, and mops then builds its machine with them`,
        'needsContents',
      );
    return new MopsError(e.code, `${call}: ${e.message.split('\n')[0]}`, e.field);
  }
  const what = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : printable(e);
  return new MopsError('E_PLUGIN', `${call} threw ${what}`, 'conformance.populate');
}

/**
 * `--workload plugin`: memory filled with plain movable pages, a random half freed again,
 * then each plugin that exports `conformance.populate` makes its pages in those holes
 * (together a quarter of memory, each an equal share), and the rest of the plain pages
 * are freed: the driver's pages end up scattered through free memory, for compaction to
 * gather. What a populate
 * throws is reported naming its plugin ({@link populateError}), and so is a result that is
 * not the array of pfns it made (`E_PLUGIN`, as `check-plugin` refuses it).
 */
export function pluginWorkload(m: Machine): { lines: string[] } {
  const hooks = populateHooks.get(m) ?? [];
  if (hooks.length === 0)
    throw new MopsError(
      'E_USAGE',
      '--workload plugin needs a --plugin whose module exports `conformance = { populate(machine, n) }`',
      '--workload',
    );
  const mem = m.mem;
  const plain: number[] = [];
  for (
    let p = allocPages(mem, GFP.HIGHUSER_MOVABLE, 0);
    p >= 0;
    p = allocPages(mem, GFP.HIGHUSER_MOVABLE, 0)
  )
    plain.push(p);
  for (let i = plain.length - 1; i > 0; i--) {
    const j = m.prng.below(i + 1);
    [plain[i], plain[j]] = [plain[j], plain[i]];
  }
  const half = plain.length >> 1;
  for (let i = 0; i < half; i++) folioPut(mem, plain[i]);
  const lines: string[] = [];
  const n = Math.floor(m.nrPages / 4 / hooks.length);
  for (const h of hooks) {
    let pages: unknown;
    try {
      pages = h.populate(m, n);
    } catch (e) {
      throw populateError(h, e);
    }
    const problem = populateResultProblem(pages);
    if (problem !== undefined)
      throw new MopsError(
        'E_PLUGIN',
        `plugin ${h.name}: conformance.populate ${problem}`,
        'conformance.populate',
      );
    const count = (pages as number[]).length;
    lines.push(`plugin: ${h.name} made ${count} of its pages, scattered through memory`);
  }
  for (let i = half; i < plain.length; i++) folioPut(mem, plain[i]);
  return { lines };
}
