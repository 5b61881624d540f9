/**
 * The conformance rule for spec §4: the owner releasing pages the VM holds isolated, checked
 * after a migration and after a putback, per profile.
 * @module
 */

import {
  ISOLATED,
  MIGRATE_MODE,
  PageLocked,
  type ProfileName,
  page_has_movable_ops,
  pageMovableLocked,
} from '@mops/core';
import { checkMoves, isolatableAgain, refsChanged, stillIsolated, vmSteps } from './findings.js';
import {
  type DriverAdapter,
  freeInBuddy,
  isolateAll,
  migrateList,
  pageData,
  putbackAll,
  type Rig,
  report,
  rig,
} from './rig.js';
import type { Check } from './rules.js';

/** What {@link isolateAndRelease} did. */
interface Released {
  /** The pages the VM isolated. */
  done: number[];
  /** Every page the owner gave up. */
  released: Set<number>;
  /** What was wrong right after the releases. */
  out: string[];
}

/**
 * Isolates the driver's pages and lets the owner release every other isolated page until
 * about half are released (a release may take more pages with it). Right after each
 * release, each page it gave up that the VM still holds must be as spec §4 leaves it: still
 * holding the VM's isolation reference (the owner drops only its own; a release that
 * dropped the VM's comes first in the findings, as the cause of what goes wrong later),
 * unlocked, still isolated (the flag is the VM's, §4.2), still recognisable as a movable
 * page (§4.1 keeps the MOVABLE tag; §4.3 keeps movable_ops and the page type), and in
 * v4.8–v6.3 either no longer PageMovable or still holding an owner reference (a deferred
 * free): a page left with only the VM's reference that is still PageMovable makes the VM
 * call the driver back for a page the driver gave up (§4.1).
 */
function isolateAndRelease(r: Rig, release: NonNullable<DriverAdapter['release']>): Released {
  const { m } = r;
  const mem = m.mem;
  const done = isolateAll(r);
  const released = new Set<number>();
  const dropped: string[] = [];
  const out: string[] = [];
  if (done.length === 0) out.push('no page could be isolated');
  for (let i = 0; i < done.length && released.size * 2 < done.length; i += 2) {
    const pfn = done[i];
    if (released.has(pfn)) continue;
    const gone = release(m, pfn);
    if (!gone.includes(pfn))
      out.push(`release(${pfn}) did not list pfn ${pfn} among the pages it gave up`);
    for (const q of [pfn, ...gone]) {
      if (released.has(q)) continue;
      released.add(q);
      if (!done.includes(q)) continue;
      if (mem.pages.refcount[q] === 0) {
        dropped.push(
          `pfn ${q}: refcount 0 right after its owner's release while the VM held it isolated: the release dropped the VM's isolation reference, a reference the driver does not own; the owner drops only its own, the VM's keeps the page until putback or migration (§4.1)`,
        );
        continue;
      }
      const f = mem.pages.flags[q];
      if (PageLocked(mem, q)) out.push(`pfn ${q}: still locked after its owner released it`);
      if (!(f & ISOLATED))
        out.push(
          `pfn ${q}: its owner's release cleared the isolated flag while the VM held the page isolated; only the VM may touch it (§4.2: another isolation could take the page twice)`,
        );
      if (!page_has_movable_ops(mem, q))
        out.push(
          m.profile.ownerMayRelease
            ? `pfn ${q}: its owner's release cleared the MOVABLE tag; __ClearPageMovable keeps it so the VM still knows the page it isolated (§4.1)`
            : `pfn ${q}: its owner's release took away its movable_ops or page type; in ${m.profile.name} they stay until the page is freed (§4.3)`,
        );
      else if (
        m.profile.ownerMayRelease &&
        mem.pages.refcount[q] === 1 &&
        pageMovableLocked(mem, q)
      )
        out.push(
          `pfn ${q}: its owner dropped its references but left the page PageMovable, so the VM calls putback_page or migrate_page for a page the driver gave up; release under the page lock with __ClearPageMovable first (§4.1)`,
        );
    }
  }
  if (released.size > 0 && done.every((q) => released.has(q)))
    out.push(
      `releasing pfn ${done[0]} gave up every isolated page (${done.length}); the rule needs pages that stay with the driver`,
    );
  return { done, released, out: [...dropped, ...out] };
}

/**
 * Released pages not back in the buddy allocator; those in `reused` (handed out again as
 * targets once free) are left to the caller to check as targets.
 */
function releasedNotFree(
  r: Rig,
  released: ReadonlySet<number>,
  after: string,
  reused: ReadonlySet<number> = new Set(),
): string[] {
  const refcount = r.m.mem.pages.refcount;
  return [...released]
    .filter((q) => !reused.has(q) && !freeInBuddy(r.m, q))
    .map(
      (q) =>
        `pfn ${q}: released by its owner, but refcount ${refcount[q]}${refcount[q] === 0 ? ' and on no free list' : ''} after ${after}; it must end in the buddy allocator`,
    );
}

/** Pages the release rule asks for: two zspages of zsmalloc's 8-page class, say. */
const RELEASE_PAGES = 16;

/**
 * A rig of {@link RELEASE_PAGES} driver pages, the references each had, and the pages the
 * VM isolated, the owner released and the owner kept ({@link isolateAndRelease}).
 */
function releaseRig(
  a: DriverAdapter,
  p: ProfileName,
  release: NonNullable<DriverAdapter['release']>,
): Released & { r: Rig; refs: Map<number, number>; kept: number[] } {
  const r = rig(a, p, RELEASE_PAGES);
  const refs = new Map(r.pages.map((x) => [x, r.m.mem.pages.refcount[x]]));
  const rel = isolateAndRelease(r, release);
  return { ...rel, r, refs, kept: rel.done.filter((q) => !rel.released.has(q)) };
}

/**
 * (a) Migrates a list part of which the owner released: the released pages end in the
 * buddy allocator; the others migrate as in `migrate`; every target, a released page
 * handed out again as one included (it only is once free), ends as the driver's migrated
 * page or, unused, free again.
 */
function migrateReleased(
  a: DriverAdapter,
  p: ProfileName,
  release: NonNullable<DriverAdapter['release']>,
): string[] {
  const { r, refs, done, released, kept, out } = releaseRig(a, p, release);
  const data = new Map(kept.map((q) => [q, pageData(r.m, q)]));
  vmSteps(out, () => {
    // Pages their owner gave up but still holds (a deferred free: v4.8's zsmalloc keeps the
    // zspage until the VM puts its pages back, §0.2, §7.5) may fail to migrate; the VM
    // migrates any other released page without the driver (the refcount==1 shortcut, the
    // move step's !PageMovable branch, v6.17's fake success: §3.4, §4.1, §4.3).
    const refcount = r.m.mem.pages.refcount;
    const mayFail = done.filter((q) => released.has(q) && refcount[q] > 1).length;
    const migrated = migrateList(r, MIGRATE_MODE.SYNC, true);
    const rc = migrated.rc;
    if (rc < 0 || rc > mayFail)
      out.push(
        `migrate_pages returned ${rc}${mayFail ? `; only the ${mayFail} released pages their owner still holds may fail` : ', expected 0: the VM migrates a released page without the driver'}`,
      );
    if (rc !== 0) putbackAll(r);
    // Let any deferred free the driver queued (v4.8 zsmalloc's work item) run.
    r.m.sched.runAll();
    const { out: moves, moved } = checkMoves(r, kept, data, refs, migrated);
    out.push(
      ...moves,
      ...releasedNotFree(r, released, 'the migration', migrated.dsts),
      ...isolatableAgain(r, moved, 'migration'),
    );
  });
  return report(r.m, out);
}

/**
 * (b) Puts back a list part of which the owner released: the released pages end in the
 * buddy allocator, the others are the driver's again with their references (S19, S21).
 */
function putbackReleased(
  a: DriverAdapter,
  p: ProfileName,
  release: NonNullable<DriverAdapter['release']>,
): string[] {
  const { r, refs, released, kept, out } = releaseRig(a, p, release);
  vmSteps(out, () => {
    putbackAll(r);
    // Let any deferred free the driver queued (v4.8 zsmalloc's work item) run.
    r.m.sched.runAll();
    out.push(
      ...releasedNotFree(r, released, 'putback'),
      ...refsChanged(
        r,
        kept,
        kept.map((q) => refs.get(q) as number),
        'putback',
      ),
      ...stillIsolated(r, kept, 'putback'),
      ...isolatableAgain(r, kept, 'putback'),
    );
  });
  return report(r.m, out);
}

export const releaseIsolated: Check = (a, p) => {
  const release = a.release;
  if (!release) throw new Error(`${a.name}: the adapter has no release hook`);
  return [
    ...migrateReleased(a, p, release).map((x) => `migration: ${x}`),
    ...putbackReleased(a, p, release).map((x) => `putback: ${x}`),
  ];
};
