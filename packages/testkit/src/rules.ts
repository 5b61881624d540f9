/**
 * The rules of the conformance suite: each drives the VM against the driver and returns
 * what it found wrong (nothing when the driver kept the rule).
 * @module
 */

import {
  allocPages,
  compactMemory,
  folioPut,
  GFP,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  MIGRATE_MODE,
  migratePages,
  type ProfileName,
  putbackMovablePages,
} from '@mops/core';
import {
  isolatableAgain,
  isolateAndMigrate,
  notIsolated,
  refcounts,
  refsChanged,
  stillIsolated,
} from './findings.js';
import { releaseIsolated } from './release.js';
import {
  type DriverAdapter,
  invariants,
  isolateAll,
  migrateList,
  populate,
  putbackAll,
  report,
  rig,
  suiteMachine,
  warnings,
} from './rig.js';

/** The finding of a rule that had nothing to check: the driver refused every page. */
const NONE_ISOLATED = 'no page could be isolated, so the rule checked nothing';

export type Check = (adapter: DriverAdapter, profile: ProfileName) => string[];

/** A rule: its id, what it requires, the spec section, and its check. */
export interface Rule {
  readonly id: string;
  readonly rule: string;
  readonly section: string;
  readonly check: Check;
  /** Why the rule cannot check this adapter (it lacks a hook), or undefined when it can. */
  readonly skip?: (adapter: DriverAdapter) => string | undefined;
}

/**
 * Every page the driver published is isolated (at rest, nothing keeps it from moving), the
 * VM's isolation reference held. A reference the driver takes in isolate_page is its own
 * business (the kernel's contract neither asks for nor forbids one); the putback and
 * migration rules catch one it does not drop again.
 */
const isolate: Check = (a, p) => {
  const r = rig(a, p);
  const refs = refcounts(r, r.pages);
  const done = isolateAll(r);
  const out = notIsolated(r.pages, done).map(
    (x) =>
      `${x}: a published page at rest must be isolatable; isolate_page may refuse only a page that cannot move right now (§2.1)`,
  );
  for (const pfn of done) {
    const i = r.pages.indexOf(pfn);
    const now = r.m.mem.pages.refcount[pfn];
    if (now < refs[i] + 1)
      out.push(
        `pfn ${pfn}: refcount ${now} after isolation, below the ${refs[i] + 1} the VM's isolation reference makes: isolate_page dropped a reference it did not own`,
      );
  }
  putbackAll(r);
  return report(r.m, out);
};

/**
 * Each isolated page migrates: src is let go, its target is alive, holds the same bytes
 * and is the driver's page again (it can be isolated).
 */
const migrate: Check = (a, p) => {
  const r = rig(a, p);
  const { done, rc, out, moved } = isolateAndMigrate(r, MIGRATE_MODE.SYNC);
  if (done.length === 0) out.unshift(NONE_ISOLATED);
  else if (rc !== 0) out.unshift(`migrate_pages returned ${rc}`);
  out.push(...isolatableAgain(r, moved, 'migration'));
  return report(r.m, out);
};

const putback: Check = (a, p) => {
  const r = rig(a, p);
  const refs = refcounts(r, r.pages);
  const done = isolateAll(r);
  putbackAll(r);
  const out = [
    ...refsChanged(r, r.pages, refs, 'putback'),
    ...stillIsolated(r, r.pages, 'putback'),
  ];
  if (done.length === 0) out.push(NONE_ISOLATED);
  out.push(...isolatableAgain(r, done, 'putback'));
  return report(r.m, out);
};

const failurePutback: Check = (a, p) => {
  const r = rig(a, p);
  const refs = refcounts(r, r.pages);
  const done = isolateAll(r);
  const { rc } = migrateList(r, MIGRATE_MODE.ASYNC, false);
  const out: string[] = [];
  if (done.length === 0) out.push(NONE_ISOLATED);
  else if (rc !== -12) out.push(`migrate_pages without targets returned ${rc}, expected -ENOMEM`);
  putbackAll(r);
  out.push(
    ...refsChanged(r, r.pages, refs, 'the failed migration and putback'),
    ...stillIsolated(r, done, 'putback'),
    ...isolatableAgain(r, done, 'the failed migration and putback'),
  );
  return report(r.m, out);
};

/**
 * Two rounds of `migrate` (ASYNC), the second on the first one's targets: each round's
 * srcs end in the buddy allocator, its targets are the driver's pages with the references
 * src had, and every target left over from a failed attempt is free again.
 */
const pingPong: Check = (a, p) => {
  const r = rig(a, p);
  const out: string[] = [];
  for (let round = 0; round < 2; round++) {
    const offered = r.pages;
    const { done, rc, out: moves, moved } = isolateAndMigrate(r, MIGRATE_MODE.ASYNC);
    const failed = rc !== 0 ? [`migrate_pages returned ${rc}`] : [];
    for (const x of [...notIsolated(offered, done), ...failed, ...moves])
      out.push(`round ${round}: ${x}`);
    r.pages = moved;
    putbackAll(r);
  }
  return report(r.m, out);
};

const race: Check = (a, p) => {
  const out: string[] = [];
  let isolated = 0;
  for (let seed = 1; seed <= 50 && out.length === 0; seed++) {
    const m = suiteMachine(a, p, seed);
    const pages = populate(a, m, 6);
    const compactor = (name: string) =>
      m.sched.spawn(name, function* (): KernelGen<void> {
        const list = m.mem.pages.lists.newList();
        for (const pfn of pages) {
          const r = yield* isolateMovablePage(m, pfn, 0);
          if (isolatedOk(r)) {
            isolated++;
            m.mem.pages.lists.addTail(list, pfn);
          }
        }
        const getNew = (): number => allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
        const res = yield* migratePages(
          m,
          list,
          getNew,
          (d) => folioPut(m.mem, d),
          MIGRATE_MODE.SYNC,
          0,
        );
        if (res.rc !== 0) yield* putbackMovablePages(m, list);
        m.mem.pages.lists.freeList(list);
      });
    compactor('compactor-1');
    compactor('compactor-2');
    m.sched.onStep = () => {
      const v = invariants(m);
      if (v.length && out.length === 0) out.push(`seed ${seed}, step ${m.sched.steps}: ${v[0]}`);
    };
    try {
      m.sched.runAll('random');
    } catch (e) {
      out.push(`seed ${seed}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
    out.push(
      ...warnings(m).map((v) => `seed ${seed}: ${v}`),
      ...invariants(m).map((v) => `seed ${seed}: ${v}`),
    );
  }
  if (out.length === 0 && isolated === 0) out.push(`${NONE_ISOLATED} (50 seeds)`);
  return out;
};

const compaction: Check = (a, p) => {
  const m = suiteMachine(a, p);
  // Fill everything, keep every other page as the driver's: compaction has work to do.
  const plain: number[] = [];
  for (
    let x = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    x >= 0;
    x = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0)
  )
    plain.push(x);
  const keep = new Set<number>();
  for (const x of plain) if (x % 512 === 511) keep.add(x);
  for (const x of plain) if (!keep.has(x)) folioPut(m.mem, x);
  populate(a, m, 64);
  m.run(() => compactMemory(m));
  const out: string[] = [];
  if (m.mem.vmstat.get('pgmigrate_success') === 0)
    out.push('compaction migrated none of the driver’s pages');
  return report(m, out);
};

export const RULES: readonly Rule[] = [
  {
    id: 'isolate',
    rule: 'isolate_page accepts every page the driver published and left at rest, under the page lock; it leaves the lock to the VM, drops no reference and never touches the isolated flag',
    section: '§2.1, §3.1',
    check: isolate,
  },
  {
    id: 'migrate',
    rule: 'a successful migrate_page makes dst the driver’s movable page with its own reference, copies the contents, takes dst into its structures and lets go of src',
    section: '§2.1, §2.5',
    check: migrate,
  },
  {
    id: 'putback',
    rule: 'putback_page takes the page back: every page can be isolated again and holds no extra reference',
    section: '§2.1, §3.2',
    check: putback,
  },
  {
    id: 'failure-putback',
    rule: 'pages that could not migrate (no targets: -ENOMEM) go back to the driver intact: the same references, and each can be isolated again',
    section: '§3.2, §3.5',
    check: failurePutback,
  },
  {
    id: 'ping-pong',
    rule: 'pages migrated twice in a row stay the driver’s with their references, leak none on a target (used or given back), and every src returns to the buddy allocator',
    section: '§2.5, §3.6',
    check: pingPong,
  },
  {
    id: 'race',
    rule: 'two compactors racing over the driver’s pages (isolate, migrate, put back) under the seeded random scheduler keep every invariant, for 50 seeds',
    section: '§3.1, §9, S07',
    check: race,
  },
  {
    id: 'compaction',
    rule: 'compact_memory migrates the driver’s pages and leaves every invariant intact',
    section: '§8.8',
    check: compaction,
  },
  {
    id: 'release-isolated',
    rule: 'the owner releasing pages the VM holds isolated: each ends in the buddy allocator after migration or putback (v4.8–v6.3 with __ClearPageMovable under the page lock, or v4.8 deferred to putback; v6.17 keeping movable_ops and faking success), never touching the isolated flag; the other pages migrate or go back to the driver',
    section: '§4, S19, S21',
    check: releaseIsolated,
    skip: (a) => (a.release ? undefined : 'the adapter has no release hook'),
  },
];
