/**
 * The movable_ops driver conformance suite: the contract of spec §2 and the release rules
 * of §4 as executable checks, per profile, independent of any test runner.
 * @module
 */

import {
  allocPages,
  checkInvariants,
  compactMemory,
  createMachine,
  folioPut,
  GFP,
  ISOLATED,
  installPlugin,
  isolatedOk,
  isolateMovablePage,
  type KernelGen,
  type ListId,
  LOCKED,
  type Machine,
  type MachineConfig,
  MIGRATE_MODE,
  type MopsPlugin,
  migratePages,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
} from '@mops/core';

/** How the suite drives a driver plugin. */
export interface DriverAdapter {
  /** Name for reports. */
  readonly name: string;
  /** The plugin, installed into a fresh machine for every check. */
  readonly plugin: MopsPlugin;
  /**
   * Makes the driver own `n` published movable pages on `m` (after the plugin was
   * installed) and returns their pfns. May return fewer when the driver packs objects.
   */
  populate(m: Machine, n: number): number[];
  /** Machine options for the checks (default: 16 MiB, one Normal zone, page contents). */
  readonly machine?: Partial<MachineConfig>;
  /** The profiles to check (default: those the plugin's manifest lists). */
  readonly profiles?: readonly ProfileName[];
}

/** One rule's outcome. */
export interface RuleResult {
  /** Short rule id, e.g. `isolate-locked`. */
  readonly id: string;
  /** What the rule requires. */
  readonly rule: string;
  /** The spec section it comes from. */
  readonly section: string;
  /** Whether the driver satisfied it. */
  readonly passed: boolean;
  /** Why it failed (empty when it passed). */
  readonly detail: string;
}

interface Rig {
  m: Machine;
  pages: number[];
  list: ListId;
}

/**
 * The suite's machine (16 MiB, one Normal zone, contents; the adapter's settings override
 * these, `seed` overrides the adapter's) with the plugin installed.
 */
function suiteMachine(adapter: DriverAdapter, profile: ProfileName, seed?: number): Machine {
  const m = createMachine({
    memory: '16M',
    zones: 'normal-only',
    minFreeKbytes: 0,
    contents: true,
    ...adapter.machine,
    profile,
    ...(seed === undefined ? {} : { seed }),
  });
  installPlugin(m, adapter.plugin);
  return m;
}

function rig(adapter: DriverAdapter, profile: ProfileName, n = 8): Rig {
  const m = suiteMachine(adapter, profile);
  const pages = adapter.populate(m, n);
  if (pages.length === 0) throw new Error(`${adapter.name}: populate() returned no pages`);
  return { m, pages, list: m.mem.pages.lists.newList() };
}

function violations(m: Machine): string[] {
  return m.mem.warnings
    .filter((w) => w.kind === 'protocol_violation' || w.kind === 'VM_WARN_ON_ONCE')
    .map((w) => w.text.split('\n')[0]);
}

function invariants(m: Machine): string[] {
  return checkInvariants(m).violations;
}

/** A rule's findings followed by the machine's protocol warnings and invariant violations. */
function report(m: Machine, out: readonly string[]): string[] {
  return [...out, ...violations(m), ...invariants(m)];
}

/** putback_movable_pages() on the rig's list. */
function putbackAll(r: Rig): void {
  r.m.run(() => putbackMovablePages(r.m, r.list));
}

function isolateAll(r: Rig): number[] {
  const done: number[] = [];
  for (const pfn of r.pages) {
    const res = r.m.run(() => isolateMovablePage(r.m, pfn, 0));
    if (isolatedOk(res)) {
      r.m.mem.pages.lists.addTail(r.list, pfn);
      done.push(pfn);
    }
  }
  return done;
}

function migrateList(r: Rig, mode: number, targets: boolean): { rc: number; dsts: number[] } {
  const dsts: number[] = [];
  const getNew = (): number => {
    if (!targets) return -1;
    const d = allocPages(r.m.mem, GFP.HIGHUSER_MOVABLE, 0);
    if (d >= 0) dsts.push(d);
    return d;
  };
  const res = r.m.run(
    (): KernelGen<{ rc: number }> =>
      migratePages(r.m, r.list, getNew, (d) => folioPut(r.m.mem, d), mode, 0),
  );
  return { rc: res.rc, dsts };
}

type Check = (adapter: DriverAdapter, profile: ProfileName) => string[];

const RULES: { id: string; rule: string; section: string; check: Check }[] = [
  {
    id: 'isolate',
    rule: 'isolate_page accepts published pages under the page lock, leaves the lock to the VM and never touches the isolated flag',
    section: '§2.1, §3.1',
    check: (a, p) => {
      const r = rig(a, p);
      const refs = r.pages.map((x) => r.m.mem.pages.refcount[x]);
      const done = isolateAll(r);
      const out: string[] = [];
      if (done.length === 0) out.push('no page could be isolated');
      done.forEach((pfn) => {
        const i = r.pages.indexOf(pfn);
        const pg = r.m.mem.pages;
        if (pg.refcount[pfn] !== refs[i] + 1)
          out.push(
            `pfn ${pfn}: refcount ${pg.refcount[pfn]} after isolation, expected ${refs[i] + 1}`,
          );
        if (pg.flags[pfn] & LOCKED) out.push(`pfn ${pfn}: still locked after isolation`);
      });
      putbackAll(r);
      return report(r.m, out);
    },
  },
  {
    id: 'migrate',
    rule: 'a successful migrate_page makes dst the driver’s movable page with its own reference, copies the contents and lets go of src',
    section: '§2.1, §2.5',
    check: (a, p) => {
      const r = rig(a, p);
      const done = isolateAll(r);
      const data = done.map((pfn) => Buffer.from(r.m.mem.pages.pageData(pfn)));
      const { rc, dsts } = migrateList(r, MIGRATE_MODE.SYNC, true);
      const out: string[] = [];
      if (rc !== 0) out.push(`migrate_pages returned ${rc}`);
      // A freed src may be handed out again as a later target within the same call.
      done.forEach((pfn, i) => {
        if (r.m.mem.pages.refcount[pfn] !== 0 && !dsts.includes(pfn))
          out.push(
            `src pfn ${pfn}: refcount ${r.m.mem.pages.refcount[pfn]} after migration (not released)`,
          );
        const d = dsts[i];
        if (
          d !== undefined &&
          !Buffer.from(r.m.mem.pages.pageData(d)).equals(data[i]) &&
          r.m.mem.pages.refcount[d] > 0
        )
          out.push(`dst pfn ${d}: contents differ from src pfn ${pfn}`);
      });
      return report(r.m, out);
    },
  },
  {
    id: 'putback',
    rule: 'putback_page takes the page back: it can be isolated again and holds no extra reference',
    section: '§2.1, §3.2',
    check: (a, p) => {
      const r = rig(a, p);
      const refs = r.pages.map((x) => r.m.mem.pages.refcount[x]);
      isolateAll(r);
      putbackAll(r);
      const out: string[] = [];
      r.pages.forEach((pfn, i) => {
        if (r.m.mem.pages.refcount[pfn] !== refs[i])
          out.push(
            `pfn ${pfn}: refcount ${r.m.mem.pages.refcount[pfn]} after putback, was ${refs[i]}`,
          );
        if (r.m.mem.pages.flags[pfn] & ISOLATED)
          out.push(`pfn ${pfn}: still isolated after putback`);
      });
      if (isolateAll(r).length === 0) out.push('no page could be isolated again after putback');
      putbackAll(r);
      return report(r.m, out);
    },
  },
  {
    id: 'failure-putback',
    rule: 'pages that could not migrate (no targets: -ENOMEM) go back to the driver intact',
    section: '§2.4, §3.5',
    check: (a, p) => {
      const r = rig(a, p);
      const done = isolateAll(r);
      const { rc } = migrateList(r, MIGRATE_MODE.ASYNC, false);
      const out: string[] = [];
      if (rc !== -12) out.push(`migrate_pages without targets returned ${rc}, expected -ENOMEM`);
      putbackAll(r);
      for (const pfn of done)
        if (r.m.mem.pages.flags[pfn] & ISOLATED) out.push(`pfn ${pfn}: still isolated`);
      return report(r.m, out);
    },
  },
  {
    id: 'ping-pong',
    rule: 'pages migrated twice in a row leak no reference and every src returns to the buddy allocator',
    section: '§2.5, §3.6',
    check: (a, p) => {
      const r = rig(a, p);
      const out: string[] = [];
      for (let round = 0; round < 2; round++) {
        const done = isolateAll(r);
        const { rc, dsts } = migrateList(r, MIGRATE_MODE.ASYNC, true);
        if (rc !== 0) out.push(`round ${round}: migrate_pages returned ${rc}`);
        for (const pfn of done)
          if (r.m.mem.pages.refcount[pfn] !== 0 && !dsts.includes(pfn))
            out.push(`round ${round}: src pfn ${pfn} kept refcount ${r.m.mem.pages.refcount[pfn]}`);
        r.pages = dsts.filter((d) => r.m.mem.pages.refcount[d] > 0);
        putbackAll(r);
      }
      return report(r.m, out);
    },
  },
  {
    id: 'race',
    rule: 'two compactors racing over the driver’s pages (isolate, migrate, put back) under the seeded random scheduler keep every invariant, for 50 seeds',
    section: '§3.1, §9, S07',
    check: (a, p) => {
      const out: string[] = [];
      for (let seed = 1; seed <= 50 && out.length === 0; seed++) {
        const m = suiteMachine(a, p, seed);
        const pages = a.populate(m, 6);
        const compactor = (name: string) =>
          m.sched.spawn(name, function* (): KernelGen<void> {
            const list = m.mem.pages.lists.newList();
            for (const pfn of pages) {
              const r = yield* isolateMovablePage(m, pfn, 0);
              if (isolatedOk(r)) m.mem.pages.lists.addTail(list, pfn);
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
          if (v.length && out.length === 0)
            out.push(`seed ${seed}, step ${m.sched.steps}: ${v[0]}`);
        };
        try {
          m.sched.runAll('random');
        } catch (e) {
          out.push(`seed ${seed}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
        }
        out.push(
          ...violations(m).map((v) => `seed ${seed}: ${v}`),
          ...invariants(m).map((v) => `seed ${seed}: ${v}`),
        );
      }
      return out;
    },
  },
  {
    id: 'compaction',
    rule: 'compact_memory migrates the driver’s pages and leaves every invariant intact',
    section: '§8.8',
    check: (a, p) => {
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
      a.populate(m, 64);
      m.run(() => compactMemory(m));
      const out: string[] = [];
      if (m.mem.vmstat.get('pgmigrate_success') === 0)
        out.push('compaction migrated none of the driver’s pages');
      return report(m, out);
    },
  },
];

/**
 * A machine for checking a driver: the plugin installed and `n` of its pages made. For your
 * own scripted interleavings: spawn tasks on `machine.sched`, set `machine.sched.manual =
 * true`, and step them with `step` / `runUntil` / `runToEnd`.
 */
export function driverMachine(
  adapter: DriverAdapter,
  profile: ProfileName,
  n = 8,
): { machine: Machine; pages: number[] } {
  const r = rig(adapter, profile, n);
  r.m.mem.pages.lists.freeList(r.list);
  return { machine: r.m, pages: r.pages };
}

/** The rules of the suite (id, rule, spec section). */
export const CONFORMANCE_RULES: readonly { id: string; rule: string; section: string }[] =
  RULES.map(({ id, rule, section }) => ({ id, rule, section }));

/** The profiles a driver is checked against: the adapter's list or the plugin's manifest. */
export function conformanceProfiles(adapter: DriverAdapter): ProfileName[] {
  const list = adapter.profiles ?? adapter.plugin.manifest.profiles;
  return PROFILE_NAMES.filter((p) => list.includes(p));
}

/** Runs one rule; a thrown error counts as a failure with its message. */
export function runRule(adapter: DriverAdapter, profile: ProfileName, id: string): RuleResult {
  const r = RULES.find((x) => x.id === id);
  if (!r) throw new Error(`unknown conformance rule '${id}'`);
  let detail: string[];
  try {
    detail = r.check(adapter, profile);
  } catch (e) {
    detail = [e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e)];
  }
  return {
    id: r.id,
    rule: r.rule,
    section: r.section,
    passed: detail.length === 0,
    detail: detail.join('; '),
  };
}

/** Runs every rule against one profile. */
export function checkDriverConformance(adapter: DriverAdapter, profile: ProfileName): RuleResult[] {
  return RULES.map((r) => runRule(adapter, profile, r.id));
}
