/**
 * Findings the conformance rules share: pages that cannot be isolated again, pages left
 * isolated, reference counts that moved, and a VM step that ended in a BUG.
 * @module
 */

import { ISOLATED } from '@mops/core';
import {
  freeInBuddy,
  isolateAll,
  type Migrated,
  migrateList,
  pageData,
  pfnList,
  putbackAll,
  type Rig,
} from './rig.js';

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

/**
 * Whether a target holds its src's bytes; always, on a machine without page contents (the
 * driver keeps no data in pages there, and there is nothing to compare).
 */
function sameContents(dst: Buffer | undefined, src: Buffer | undefined): boolean {
  return dst === undefined || src === undefined || dst.equals(src);
}

/** The finding for a 0 from migrate_page that left its target `d` to be freed. */
function dataFreed(src: number, d: number): string {
  return `src pfn ${src}: migrate_page returned 0 but its target pfn ${d} was freed with the data; a live page's 0 must leave dst the driver's page (v6.17's "fake success" is only for a page its owner already released)`;
}

/**
 * What a migration that should have moved every page of `srcs` left: each src let go, back
 * in the buddy allocator (or handed out again as a target once free: then it is checked as
 * a target), its target alive with src's bytes (`data`, on a machine with page contents)
 * and the references src had before
 * isolation (`refs`), and every other target handed out free again (a failing migrate_page
 * leaves dst untouched). Returns the findings and the targets that passed (the driver's
 * pages now).
 */
export function checkMoves(
  r: Rig,
  srcs: readonly number[],
  data: ReadonlyMap<number, Buffer | undefined>,
  refs: ReadonlyMap<number, number>,
  { dsts, dstOf, failed }: Migrated,
): { out: string[]; moved: number[] } {
  const refcount = r.m.mem.pages.refcount;
  const out: string[] = [];
  const moved: number[] = [];
  const used = new Set<number>();
  for (const src of srcs) {
    if (failed.has(src)) {
      out.push(
        `src pfn ${src}: not migrated: migrate_pages left it on the list for putback (its migrate_page failed every pass, or the VM could not take it)`,
      );
      continue;
    }
    if (!dsts.has(src) && !freeInBuddy(r.m, src)) {
      if (refcount[src] !== 0) {
        // A 0 that left dst untouched (the VM then freed it) and src the driver's.
        const d = dstOf.get(src);
        out.push(
          d !== undefined && refcount[d] === 0
            ? dataFreed(src, d)
            : `src pfn ${src}: refcount ${refcount[src]} after migration (not let go)`,
        );
        continue;
      }
      out.push(
        `src pfn ${src}: refcount 0 but on no free list after migration; a src let go must end in the buddy allocator`,
      );
    }
    const d = dstOf.get(src);
    if (d === undefined) continue;
    used.add(d);
    if (refcount[d] === 0) out.push(dataFreed(src, d));
    else if (!sameContents(pageData(r.m, d), data.get(src)))
      out.push(`dst pfn ${d}: contents differ from src pfn ${src}`);
    else if (refcount[d] !== refs.get(src))
      out.push(
        `dst pfn ${d}: refcount ${refcount[d]} after migration; src pfn ${src} had ${refs.get(src)} before isolation`,
      );
    else moved.push(d);
  }
  for (const d of dsts)
    if (!used.has(d) && !freeInBuddy(r.m, d))
      out.push(
        `target pfn ${d}: refcount ${refcount[d]} but unused; a target given back after a failed attempt must be free again (a failing migrate_page leaves dst untouched)`,
      );
  return { out, moved };
}

/**
 * Isolates the rig's pages and migrates those isolated to targets from the buddy allocator
 * in `mode`, then checks what that left ({@link checkMoves}).
 */
export function isolateAndMigrate(
  r: Rig,
  mode: number,
): { done: number[]; rc: number; out: string[]; moved: number[] } {
  const refs = new Map(r.pages.map((x) => [x, r.m.mem.pages.refcount[x]]));
  const done = isolateAll(r);
  const data = new Map(done.map((pfn) => [pfn, pageData(r.m, pfn)]));
  const migrated = migrateList(r, mode, true);
  return { done, rc: migrated.rc, ...checkMoves(r, done, data, refs, migrated) };
}

/** The pages of `offered` that {@link isolateAll} did not isolate (`done`), as findings. */
export function notIsolated(offered: readonly number[], done: readonly number[]): string[] {
  const left = offered.filter((x) => !done.includes(x));
  if (left.length === 0) return [];
  return [`${left.length} of ${offered.length} pages could not be isolated (pfn ${pfnList(left)})`];
}
