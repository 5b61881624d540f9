/**
 * Built-in race scenarios from the mailing-list threads (spec §9, catalogue §12): 9a
 * (S04), 9b (in ./refcount_races.ts), 9c and 9c-passes (S29, in ./migration_entry.ts),
 * 9d (S26), 9d-double (S27), 9e (S30) and 9e-split (S31), each with a `buggy` variant that
 * makes the mistake the race is about and a `fixed` variant with the kernel's resolution.
 * @module
 */

import {
  __GFP,
  bug,
  compoundHead,
  folioTryGet,
  GFP,
  getPageUnlessZero,
  hexPfn,
  type IsolateMistakes,
  type IsolateOutcome,
  isolatedOk,
  isolateMovablePageOutcome,
  type KernelGen,
  type Machine,
  putPage,
  splitFolio,
  trylockPage,
  unlockPage,
} from '@mops/core';
import { RaceDriver } from './driver.js';
import { scenario9c, scenario9cPasses } from './migration_entry.js';
import { BUGGY_FIXED, EVERY_PROFILE, fillFreePages, raceMachine } from './race_machine.js';
import { scenario9b } from './refcount_races.js';
import { registerScenario, type Scenario, type ScenarioContext } from './scenario.js';
import { draftPutbackMovablePages, holdThenPutback, type Putback } from './vm_tasks.js';

/**
 * A compaction-like scanner task: isolate `pfn`, link what it isolated on its own migration
 * list, then put it back (with `putback`, by default putback_movable_pages()). Records the
 * outcome in `seen`.
 */
function* scanner(
  m: Machine,
  pfn: number,
  mistakes: IsolateMistakes | undefined,
  seen: { out?: IsolateOutcome },
  holders?: { n: number },
  putback?: Putback,
): KernelGen<IsolateOutcome> {
  const out = yield* isolateMovablePageOutcome(m, pfn, 0, mistakes);
  seen.out = out;
  if (isolatedOk(out.result)) yield* holdThenPutback(m, out.isolated, holders, putback);
  return out;
}

/**
 * The 9a scanner: isolate_migratepages_block() hands `pfn` to isolate_movable_page() and,
 * on success, links the page it examined on its migration list (`list_add(&page->lru)`)
 * and puts it back later. When the VM isolated another page (the draft's mistake), the
 * page linked is still the examined one, which nobody isolated, while the page isolated is
 * on no list: it stays isolated, with the VM's reference, for good. The run ends there;
 * the kernel would go on to migrate or put back a page it never isolated.
 */
function* scanner9a(
  m: Machine,
  pfn: number,
  mistakes: IsolateMistakes | undefined,
  seen: { out?: IsolateOutcome },
): KernelGen<IsolateOutcome> {
  const out = yield* isolateMovablePageOutcome(m, pfn, 0, mistakes);
  seen.out = out;
  if (!isolatedOk(out.result)) return out;
  if (out.isolated === pfn) {
    yield* holdThenPutback(m, pfn);
    return out;
  }
  if (m.sched.preemptible)
    yield {
      op: 'list_add',
      pfn,
      note: `the page examined; ${hexPfn(out.isolated)}, the one isolated, is on no list`,
    };
  return out;
}

/**
 * 9a / S04: the scanner examines tail T1 of an order-2 folio and derives its head H; the
 * folio is freed and H comes back as a published driver page. The 2023 draft
 * (`folio_try_get(page_folio(page))`) then isolates H, and the caller links T1, the page
 * it examined (`list_add(&page->lru)`); `folio_get_nontail_page` fails on the tail. The rest of
 * the machine is in use, so the freed folio stays an order-2 block and the order-0
 * allocation splits it and returns H.
 */
export const scenario9a: Scenario = {
  name: '9a',
  description:
    'folio_try_get on a tail page in isolate_movable_page (buggy) vs folio_get_nontail_page (fixed)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9a, S04',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const drv = new RaceDriver(m);
    const H = m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2, 'thp');
    const T1 = H + 1;
    fillFreePages(m);
    const seen: { out?: IsolateOutcome } = { out: undefined };
    const mistakes = variant === 'buggy' ? { folioTryGetOnHead: true } : undefined;
    const folios = m.profile.hasFolios;
    function* owner(): KernelGen<number> {
      if (m.sched.preemptible)
        yield folios
          ? { op: 'folio_put', pfn: H, note: 'free the order-2 folio' }
          : { op: 'put_page', pfn: H, note: 'free the order-2 compound page' };
      putPage(m.mem, H);
      if (m.sched.preemptible) yield { op: 'alloc_pages', note: 'order 0, publish as movable' };
      return drv.alloc();
    }
    return {
      machine: m,
      state: [drv, seen],
      start: () => {
        m.sched.spawn('scanner', () => scanner9a(m, T1, mistakes, seen));
        m.sched.spawn('owner', owner);
      },
      finish: () =>
        seen.out && seen.out.isolated !== -1 && seen.out.isolated !== T1
          ? [`scanner examined ${hexPfn(T1)} but isolated ${hexPfn(seen.out.isolated)}`]
          : [],
    };
  },
};

/**
 * 9d / S26: the scanner takes its reference and sees the movable tag; the owner locks the
 * page, clears `mapping`, unlocks and drops its reference; the scanner's trylock succeeds.
 * In the form without the re-check of PageMovable under the page lock it calls through a
 * NULL pointer.
 */
export const scenario9d: Scenario = {
  name: '9d',
  description:
    'owner nullifies page->mapping between the scanner reference and its trylock (buggy: no re-check under the lock)',
  variants: BUGGY_FIXED,
  profiles: ['v6.3', 'v6.0', 'v4.8'],
  refs: 'spec §9d, S26',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const drv = new RaceDriver(m);
    const a = drv.alloc();
    const seen: { out?: IsolateOutcome } = { out: undefined };
    const mistakes = variant === 'buggy' ? { noRecheckUnderLock: true } : undefined;
    return {
      machine: m,
      state: [drv, seen],
      start: () => {
        m.sched.spawn('scanner', () => scanner(m, a, mistakes, seen));
        m.sched.spawn('owner', () => drv.release(a));
      },
    };
  },
};

/**
 * 9d-double / S27: isolator A isolates T; the owner releases it the v3-draft way (clears
 * PG_isolated itself, keeps it movable); isolator B isolates T a second time. In the buggy
 * variant the VM is the draft's too: its putback tolerates a flag the owner cleared (it
 * only drops its isolation reference), so what the run reports is the consequence of the
 * draft's rule, B isolating a page still on A's list, not the owner's clear itself. The
 * driver did what the draft said, so the core's protocol violation is reported as the
 * draft's fault (the instance's `draft`). With the final protocol the owner only clears the
 * pointer, PG_isolated stays VM-owned, B fails.
 */
export const scenario9dDouble: Scenario = {
  name: '9d-double',
  description:
    "the v3 draft's owner-managed isolated flag lets a second isolator take an isolated page (buggy: the draft's release and putback, the draft's fault, not the driver's; fixed: the final protocol, PG_isolated VM-owned)",
  variants: BUGGY_FIXED,
  profiles: ['v6.3', 'v6.0', 'v4.8'],
  refs: 'spec §4.2, §9d, S27',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const drv = new RaceDriver(m);
    const t = drv.alloc();
    const holders = { n: 0 };
    const putback = variant === 'buggy' ? draftPutbackMovablePages : undefined;
    return {
      machine: m,
      state: [drv, holders],
      start: () => {
        m.sched.spawn('isolatorA', () => scanner(m, t, undefined, {}, holders, putback));
        m.sched.spawn('owner', () => (variant === 'buggy' ? drv.draftReclaim(t) : drv.release(t)));
        m.sched.spawn('isolatorB', () => scanner(m, t, undefined, {}, holders, putback));
      },
      check: () =>
        holders.n > 1 ? [`pfn ${hexPfn(t)} is isolated by ${holders.n} isolators at once`] : [],
      // The driver does what the draft says: the violation the run finds is the draft's.
      ...(variant === 'buggy' ? { draft: 'v3 draft of spec §4.2' } : {}),
    };
  },
};

/**
 * A speculative "add unless zero" on a page and the put that drops it again: their names in
 * traces and the primitives.
 */
interface SpeculativeGet {
  readonly op: string;
  /** How the release derives a page's head: `page_folio` (folios), else `compound_head`. */
  readonly head: string;
  readonly get: (pfn: number) => boolean;
  readonly putOp: string;
  readonly put: (pfn: number) => void;
}

/** How `m`'s release derives the head of a page: `page_folio` with folios, else `compound_head`. */
function headOf(m: Machine): string {
  return m.profile.hasFolios ? 'page_folio' : 'compound_head';
}

/**
 * try_get_folio() as GUP-fast does it: derive the head of `page` without a reference, take
 * one speculatively, and (with `recheck`) make sure `page` still belongs to that head,
 * dropping the reference and starting over if it does not. Returns the head, holding the
 * reference, or -1 when the get failed.
 */
function* tryGetFolio(
  m: Machine,
  page: number,
  how: SpeculativeGet,
  recheck: boolean,
): KernelGen<number> {
  const mem = m.mem;
  for (;;) {
    const head = compoundHead(mem, page);
    if (m.sched.preemptible) yield { op: how.op, pfn: head, note: `${how.head}(${hexPfn(page)})` };
    if (!how.get(head)) return -1;
    if (!recheck) return head;
    if (m.sched.preemptible) yield { op: `${how.head} recheck`, pfn: page };
    if (compoundHead(mem, page) === head) return head;
    if (m.sched.preemptible)
      yield {
        op: how.putOp,
        pfn: head,
        note: `${how.head === 'page_folio' ? 'folio' : 'compound page'} changed: retry`,
      };
    how.put(head);
  }
}

/**
 * 9e / S30: a walker (GUP-fast's try_get_folio(), a PFN walker) saw H as the head of folio
 * F1 and, holding no reference, takes one with "add 1 unless 0"; meanwhile F1 is freed and
 * a new order-1 folio F2 is allocated with H as its tail page 1. Fixed (the kernel's
 * invariant T0): a tail page's refcount slot is always 0, so the get fails harmlessly.
 * Buggy (the Aug 2023 proposal to keep F2's total mapcount in tail page 1's refcount slot):
 * the slot holds the mapcount, the get succeeds on it and silently adds 1, and the put
 * after the walker's page_folio() re-check writes it back, racing with mapcount updates.
 * The walker is the same in both variants: only what the MM keeps in a tail's slot differs.
 */
export const scenario9e: Scenario = {
  name: '9e',
  description:
    "speculative get on a recycled head that became a tail page (buggy: the MM keeps the folio's total mapcount in tail page 1's refcount slot, which the get corrupts; fixed: a tail's refcount stays 0, so the get fails)",
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9e, S30, S31',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const mem = m.mem;
    const p = mem.pages;
    // A (pfn 0) and H (pfn 1) are buddies: once both are freed, an order-1 folio at A has H
    // as its tail page.
    const A = m.allocPages(GFP.KERNEL, 0, 'holder');
    const H = m.allocPages(GFP.KERNEL, 0, 'f1');
    /** F2's total mapcount, kept in H's refcount slot once H is its tail (buggy MM). */
    const MAPCOUNT = 5;
    // `inSlot`: the slot holds the mapcount; `value`: what it holds; `hit`: the value the
    // walker's get found there (-1: none).
    const slot = { inSlot: false, value: 0, hit: -1 };
    const preempt = (): boolean => m.sched.preemptible;
    /** H's refcount slot holds F2's mapcount (H is F2's tail and the MM stored it there). */
    const overlaid = (pfn: number): boolean => slot.inSlot && pfn === H && p.compound[H] < 0;
    // folio_ref_try_add_rcu(): add 1 unless 0, on whatever the slot holds; folio_put_refs()
    // on the folio the reference was taken on.
    const folios = m.profile.hasFolios;
    // folio_ref_try_add() since "mm: page_ref: remove folio_try_get_rcu()" (2024, v6.17),
    // the patch that makes the page-cache get folio_try_get().
    const tryAdd =
      m.profile.pageCacheGet === 'folio_try_get' ? 'folio_ref_try_add' : 'folio_ref_try_add_rcu';
    const get: SpeculativeGet = {
      op: folios ? tryAdd : 'page_cache_get_speculative',
      head: headOf(m),
      get: (pfn) => {
        if (!overlaid(pfn)) return getPageUnlessZero(mem, pfn);
        if (slot.value === 0) return false;
        slot.hit = slot.value;
        slot.value++;
        // 4.x page_cache_get_speculative(): VM_BUG_ON_PAGE(PageTail(page)) after its get.
        if (!folios) bug(mem, 'VM_BUG_ON_PAGE(PageTail(page)) in page_cache_get_speculative', pfn);
        return true;
      },
      putOp: folios ? 'folio_put_refs' : 'put_page',
      put: (pfn) => {
        if (overlaid(pfn)) slot.value--;
        else putPage(mem, pfn);
      },
    };
    function* walker(): KernelGen<boolean> {
      const head = yield* tryGetFolio(m, H, get, true);
      if (head < 0) return false;
      if (preempt()) yield { op: 'put_page', pfn: head };
      putPage(mem, head);
      return true;
    }
    function* owner(): KernelGen<number> {
      if (preempt()) yield { op: 'put_page', pfn: H, note: 'free F1' };
      putPage(mem, H);
      if (preempt()) yield { op: 'put_page', pfn: A };
      putPage(mem, A);
      if (preempt()) yield { op: 'alloc_pages', note: 'order 1 __GFP_COMP (F2)' };
      const f2 = m.allocPages(GFP.KERNEL | __GFP.COMP, 1, 'f2');
      if (variant === 'buggy' && f2 === A) {
        if (preempt())
          yield {
            op: folios ? 'folio_set_total_mapcount' : 'set_total_mapcount',
            pfn: H,
            note: `${MAPCOUNT}, in tail page 1's ${folios ? 'refcount slot' : '_refcount'}`,
          };
        slot.inSlot = true;
        slot.value = MAPCOUNT;
      }
      return f2;
    }
    return {
      machine: m,
      state: [slot],
      start: () => {
        m.sched.spawn('walker', walker);
        m.sched.spawn('owner', owner);
      },
      check: () =>
        slot.hit >= 0
          ? [
              `the walker's speculative get succeeded on ${hexPfn(H)}, now tail page 1 of F2: its refcount slot held F2's total mapcount ${slot.hit} and the get made it ${slot.hit + 1} (refcount must stay 0 on tail pages)`,
            ]
          : [],
    };
  },
};

/**
 * 9e-split / S31: a GUP-fast-like walker derives the head H of P's folio without a
 * reference; the owner splits the folio (possible only while nobody else holds a
 * reference), so P becomes a page of its own; the walker's speculative get then succeeds on
 * H, now an unrelated order-0 page. Fixed (try_get_folio): re-check `page_folio(P)`, drop
 * H and retry with P. Buggy (no re-check): the walker later puts P, dropping the owner's
 * reference on P, while the one it took on H leaks. The re-check of the head after the get
 * came with "mm/gup: fix try_grab_compound_head() race with split_huge_page()" (5.13): the
 * 4.8 kernel's GUP-fast re-checked only the PTE, so in v4.8 the fixed variant shows a
 * resolution that release did not have.
 */
export const scenario9eSplit: Scenario = {
  name: '9e-split',
  description:
    'speculative get on a head derived before a folio split (buggy: no page_folio re-check; fixed: re-check and retry)',
  variants: BUGGY_FIXED,
  profiles: EVERY_PROFILE,
  refs: 'spec §9e, S31; try_grab_compound_head() re-check (5.13)',
  setup({ variant, profile }: ScenarioContext) {
    const m = raceMachine(profile);
    const mem = m.mem;
    const p = mem.pages;
    const H = m.allocPages(GFP.HIGHUSER_MOVABLE | __GFP.COMP, 2, 'thp');
    const P = H + 2;
    const seen = { split: false };
    const folios = m.profile.hasFolios;
    const preempt = (): boolean => m.sched.preemptible;
    function* walker(): KernelGen<boolean> {
      const get: SpeculativeGet = {
        op: folios ? 'folio_try_get' : 'page_cache_get_speculative',
        head: headOf(m),
        get: (pfn) => folioTryGet(mem, pfn),
        putOp: folios ? 'folio_put' : 'put_page',
        put: (pfn) => putPage(mem, pfn),
      };
      if ((yield* tryGetFolio(m, P, get, variant === 'fixed')) < 0) return false;
      // The pin is used, then released through the page the walker was given.
      if (preempt()) yield { op: 'put_page', pfn: P, note: 'unpin' };
      putPage(mem, compoundHead(mem, P));
      return true;
    }
    function* owner(): KernelGen<boolean> {
      // split_huge_page() on the locked folio: can_split_folio() and the refcount freeze
      // fail on an extra pin; the caller unlocks the head afterwards.
      if (preempt()) yield { op: folios ? 'folio_lock' : 'lock_page', pfn: H };
      if (!trylockPage(mem, H)) return false;
      if (preempt()) yield { op: folios ? 'split_folio' : 'split_huge_page', pfn: H };
      const ok = p.refcount[H] === 1;
      if (ok) {
        splitFolio(mem, H);
        seen.split = true;
      }
      if (preempt()) yield { op: folios ? 'folio_unlock' : 'unlock_page', pfn: H };
      unlockPage(m, H);
      return ok;
    }
    return {
      machine: m,
      state: [seen],
      start: () => {
        m.sched.spawn('walker', walker);
        m.sched.spawn('owner', owner);
      },
      finish: () => {
        const pages = seen.split ? [H, H + 1, P, H + 3] : [H];
        // The page whose count the walker's put took too far is the use-after-free: first.
        const wrong = pages.filter((q) => p.refcount[q] !== 1);
        wrong.sort((a, b) => p.refcount[a] - p.refcount[b]);
        return wrong.map((q) =>
          p.refcount[q] < 1
            ? `${hexPfn(q)} has refcount ${p.refcount[q]} although its owner still holds it: the walker put a reference it never took (the owner's), so the page is freed under its owner`
            : `${hexPfn(q)} has refcount ${p.refcount[q]} after the walker let go: the walker kept a reference it took there (its owner holds the only other)`,
        );
      },
    };
  },
};

/** Every built-in scenario. */
export const BUILTIN_SCENARIOS: readonly Scenario[] = [
  scenario9a,
  scenario9b,
  scenario9c,
  scenario9cPasses,
  scenario9d,
  scenario9dDouble,
  scenario9e,
  scenario9eSplit,
];

/** Registers the built-in scenarios (idempotent). */
export function registerBuiltinScenarios(): void {
  for (const s of BUILTIN_SCENARIOS) registerScenario(s, { replace: true });
}
