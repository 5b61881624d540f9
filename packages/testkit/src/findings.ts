/**
 * Findings the conformance rules share: pages that cannot be isolated again, pages left
 * isolated, reference counts that moved, and a VM step that ended in a BUG.
 * @module
 */

import { ISOLATED } from '@mops/core';
import { isolateAll, pfnList, putbackAll, type Rig } from './rig.js';

/** The pages' reference counts, to compare with later. */
export function refcounts(r: Rig, pages: readonly number[]): number[] {
  return pages.map((x) => r.m.mem.pages.refcount[x]);
}

/**
 * Pages the driver must have taken back into its own structures: each can be isolated
 * again (then it is put back). Reports the ones that cannot.
 */
export function isolatableAgain(r: Rig, pages: readonly number[], after: string): string[] {
  const again = new Set(isolateAll(r, pages));
  putbackAll(r);
  const lost = pages.filter((p) => !again.has(p));
  if (lost.length === 0) return [];
  return [
    `${lost.length} of ${pages.length} pages could not be isolated again after ${after} (pfn ${pfnList(lost)}): the driver must keep its pages in its own structures`,
  ];
}

/** The pages `pages` still isolated, as findings. */
export function stillIsolated(r: Rig, pages: readonly number[], after: string): string[] {
  return pages
    .filter((p) => r.m.mem.pages.flags[p] & ISOLATED)
    .map((p) => `pfn ${p}: still isolated after ${after}`);
}

/** Reference counts that differ from `before`, as findings. */
export function refsChanged(
  r: Rig,
  pages: readonly number[],
  before: readonly number[],
  after: string,
): string[] {
  const out: string[] = [];
  pages.forEach((pfn, i) => {
    const now = r.m.mem.pages.refcount[pfn];
    if (now !== before[i]) out.push(`pfn ${pfn}: refcount ${now} after ${after}, was ${before[i]}`);
  });
  return out;
}

/**
 * Runs the VM's part of a check after the owner's releases; a BUG or another throw ends it
 * as a finding after what was found before (the release findings name the cause).
 */
export function vmSteps(out: string[], steps: () => void): void {
  try {
    steps();
  } catch (e) {
    out.push(e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e));
  }
}
