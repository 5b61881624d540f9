/**
 * The machines the conformance rules run on, and the VM operations they drive: isolate,
 * migrate (with a record of which target each page got), put back.
 * @module
 */

import {
  allocPages,
  checkInvariants,
  createMachine,
  folioPut,
  GFP,
  installPlugin,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type ListId,
  type Machine,
  type MachineConfig,
  type MopsPlugin,
  migratePages,
  NR_PAGE_ORDERS,
  type ProfileName,
  pageIsBuddy,
  putbackMovablePages,
  warningHeadline,
} from '@mops/core';

/** How the suite drives a driver plugin. */
export interface DriverAdapter {
  /** Name for reports. */
  readonly name: string;
  /** The plugin, installed into a fresh machine for every check. */
  readonly plugin: MopsPlugin;
  /**
   * Makes the driver own `n` published movable pages on `m` (after the plugin was
   * installed) and returns their pfns. May return fewer or more, as the driver's own
   * unit dictates (a balloon request, whole zspages).
   */
  populate(m: Machine, n: number): number[];
  /**
   * The owner gives up page `pfn` while the VM may hold it isolated, the way the driver
   * really does it (zsmalloc: zs_free of every object on the page's zspage), and returns
   * every page it gave up with it (`pfn` among them; zsmalloc gives up the whole zspage).
   * It runs outside any task; the rule `release-isolated` calls it only for pages
   * {@link DriverAdapter.populate} returned, all of them isolated by the VM at the time.
   *
   * What the driver must do depends on the profile (spec §4): in v4.8–v6.3, under the page
   * lock, `__ClearPageMovable(page)` and then drop its references (v4.8 may instead keep
   * the page until the VM puts it back, as zsmalloc does: its `putback_page` then frees
   * it, possibly through a work item); in v6.17 there is no release API, so it keeps the
   * page's movable_ops and page type, drops its references and makes its callbacks fake
   * success (`migrate_page` returns 0, `putback_page` does nothing). In every profile it
   * never touches the isolated flag or the page's `lru`.
   *
   * What the VM cannot see — a driver that still counts a page it gave up as its own (say a
   * v6.17 `putback_page` that takes it back, just before the VM frees it) — only the
   * driver's own invariant checker can tell (`machine.registerInvariantChecker`): every rule
   * runs it, so check there that each page in your structures is alive and movable.
   *
   * Without this hook `release-isolated` is skipped (reported as not checked). Leave it
   * out for a driver that cannot give up an isolated page (a balloon: spec §6.4).
   */
  release?(m: Machine, pfn: number): number[];
  /**
   * Machine options for the checks (default: 16 MiB, one Normal zone, and page contents
   * only when the plugin's manifest says `needsContents: true`, as `mops` builds its
   * machines: a driver that uses page contents without saying so fails the rules here
   * rather than in the command).
   */
  readonly machine?: Partial<MachineConfig>;
  /** The profiles to check (default: those the plugin's manifest lists). */
  readonly profiles?: readonly ProfileName[];
}

/** A machine with the driver's pages and a migration list. */
export interface Rig {
  m: Machine;
  pages: number[];
  list: ListId;
}

/**
 * The machine a rule built last (each machine is dropped once the next is built: a rule
 * may go through many), for reporting a rule that threw.
 */
let latest: Machine | undefined;

/** Forgets the last machine (a rule run starts); returns a reader of the one built next. */
export function watchMachines(): () => Machine | undefined {
  latest = undefined;
  return () => latest;
}

/**
 * The suite's machine (16 MiB, one Normal zone, page contents when the plugin's manifest
 * says `needsContents: true`; the adapter's settings override these, `seed` overrides the
 * adapter's) with the plugin installed.
 */
export function suiteMachine(adapter: DriverAdapter, profile: ProfileName, seed?: number): Machine {
  const m = createMachine({
    memory: '16M',
    zones: 'normal-only',
    minFreeKbytes: 0,
    contents: adapter.plugin.manifest.needsContents === true,
    ...adapter.machine,
    profile,
    ...(seed === undefined ? {} : { seed }),
  });
  latest = m;
  installPlugin(m, adapter.plugin);
  return m;
}

/**
 * What is wrong with a value a driver's `populate(machine, n)` returned, or undefined when
 * it is what the contract asks for: an array of the pfns it made (non-negative integers;
 * empty when it could make none).
 * @param pages what `populate` returned
 * @returns the reason, as it follows `populate()` in a message
 */
export function populateResultProblem(pages: unknown): string | undefined {
  if (Array.isArray(pages) && pages.every((x) => Number.isInteger(x) && x >= 0)) return undefined;
  return `must return an array of pfns (non-negative integers), got ${describeValue(pages)}`;
}

/**
 * The adapter's `populate(m, n)`; throws when it returned no pages, so a rule that would
 * exercise nothing fails with the reason instead of passing.
 */
export function populate(adapter: DriverAdapter, m: Machine, n: number): number[] {
  const pages: unknown = adapter.populate(m, n);
  const problem = populateResultProblem(pages);
  if (problem !== undefined) throw new Error(`${adapter.name}: populate() ${problem}`);
  if ((pages as number[]).length === 0)
    throw new Error(`${adapter.name}: populate() returned no pages`);
  return pages as number[];
}

/** A populate() result that is not a list of pfns, for the error. */
function describeValue(v: unknown): string {
  if (Array.isArray(v))
    return `an array holding ${describeValue(v.find((x) => !(Number.isInteger(x) && x >= 0)))}`;
  if (typeof v === 'object' && v !== null) return 'an object';
  return typeof v === 'string' ? `the string ${JSON.stringify(v)}` : String(v);
}

export function rig(adapter: DriverAdapter, profile: ProfileName, n = 8): Rig {
  const m = suiteMachine(adapter, profile);
  const pages = populate(adapter, m, n);
  return { m, pages, list: m.mem.pages.lists.newList() };
}

/**
 * What the machine reported: protocol violations, the kernel's own warnings, bad pages
 * (with the reason), lockdep and sleep-in-atomic splats; the line each is known by (a
 * lockdep report's title, not the rule above it). With
 * `violations`, only the protocol violations (true) or everything else (false).
 */
export function warnings(m: Machine, violations?: boolean): string[] {
  return m.mem.warnings
    .filter((w) => violations === undefined || (w.kind === 'protocol_violation') === violations)
    .map((w) => {
      const lines = w.text.split('\n');
      return w.kind === 'bad_page'
        ? `${lines[0].trim()} ${lines[1] ?? ''}`
        : warningHeadline(w.text);
    });
}

export function invariants(m: Machine): string[] {
  return checkInvariants(m).violations;
}

/**
 * A rule's findings in the order that explains them: the protocol violations first (each
 * names a mistake of the driver's; the rule's own findings are often its consequences),
 * then the rule's findings, the kernel's warnings and BUGs, and the invariant violations.
 */
export function report(m: Machine, out: readonly string[]): string[] {
  return [...warnings(m, true), ...out, ...warnings(m, false), ...invariants(m)];
}

/** putback_movable_pages() on the rig's list. */
export function putbackAll(r: Rig): void {
  r.m.run(() => putbackMovablePages(r.m, r.list));
}

/** isolate_movable_page() on each of `pages`; the isolated ones go on the rig's list. */
export function isolateAll(r: Rig, pages: readonly number[] = r.pages): number[] {
  const done: number[] = [];
  for (const pfn of pages) {
    const res = r.m.run(() => isolateMovablePage(r.m, pfn, 0));
    if (isolatedOk(res)) {
      r.m.mem.pages.lists.addTail(r.list, pfn);
      done.push(pfn);
    }
  }
  return done;
}

/** What {@link migrateList} did. */
export interface Migrated {
  /** migrate_pages()'s result. */
  rc: number;
  /** Every target handed out. */
  dsts: Set<number>;
  /** The last target handed out for each src: the one a successful move went to. */
  dstOf: Map<number, number>;
  /** The pages migrate_pages() left on the list, for putback: those it did not migrate. */
  failed: Set<number>;
}

/**
 * migrate_pages() on the rig's list, with targets from the buddy allocator (or none, when
 * `targets` is false: every page fails with -ENOMEM).
 */
export function migrateList(r: Rig, mode: number, targets: boolean): Migrated {
  const dsts = new Set<number>();
  const dstOf = new Map<number, number>();
  const getNew = (src: number): number => {
    if (!targets) return -1;
    const d = allocPages(r.m.mem, GFP.HIGHUSER_MOVABLE, 0);
    if (d >= 0) {
      dsts.add(d);
      dstOf.set(src, d);
    }
    return d;
  };
  const res = r.m.run(
    (): KernelGen<{ rc: number }> =>
      migratePages(r.m, r.list, getNew, (d) => folioPut(r.m.mem, d), mode, 0),
  );
  return { rc: res.rc, dsts, dstOf, failed: new Set(r.m.mem.pages.lists.toArray(r.list)) };
}

/** A copy of a page's contents; undefined on a machine without page contents. */
export function pageData(m: Machine, pfn: number): Buffer | undefined {
  return m.mem.pages.contents ? Buffer.from(m.mem.pages.pageData(pfn)) : undefined;
}

/** The pfns as a short list for a message. */
export function pfnList(pfns: readonly number[]): string {
  const shown = pfns.slice(0, 8).join(', ');
  return pfns.length > 8 ? `${shown}, …` : shown;
}

/** Whether `pfn` is back in the buddy allocator: no reference left, inside a free block. */
export function freeInBuddy(m: Machine, pfn: number): boolean {
  if (m.mem.pages.refcount[pfn] !== 0) return false;
  for (let order = 0; order < NR_PAGE_ORDERS; order++)
    if (pageIsBuddy(m.mem, pfn - (pfn % (1 << order)), order)) return true;
  return false;
}
