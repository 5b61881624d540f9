/**
 * isolate_movable_page() / isolate_movable_ops_page() (mm/migrate.c; spec §3.1).
 * @module
 */

import { putPage } from '../buddy/free_page.js';
import { bug, dumpPage, hexPfn } from '../debug/dump_page.js';
import { Errno, MopsError } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATED, PG } from '../page/flags.js';
import type { Kctx } from '../page/lock.js';
import { trylockPage, unlockPage } from '../page/lock.js';
import { compoundHead } from '../page/page.js';
import { folioTryGet, getPageUnlessZero } from '../page/refcount.js';
import type { KernelGen } from '../sched/types.js';
import {
  callIsolatePageAlone,
  callIsolatePageGen,
  callIsolatePageResume,
  ISOLATE_PENDING,
  type PendingCall,
  protocolViolation,
} from './callbacks.js';
import {
  type DefinedOps,
  page_has_movable_ops,
  pageMovableLocked,
  pageMovableOps,
} from './movable.js';

/**
 * Historical mistakes that can be switched back on, to reproduce the races they allowed
 * (spec §9). Never set in normal runs.
 */
export interface IsolateMistakes {
  /**
   * 9a (Jan 2023 draft): take the reference with `folio_try_get(page_folio(page))` instead
   * of on the page itself, and go on with the folio it found.
   */
  folioTryGetOnHead?: boolean;
  /**
   * 9d: do not re-check movability under the page lock; call through the ops as peeked
   * before the lock (the v3 draft of Mar 2016 already re-checked PageMovable after
   * trylock_page; the check is what makes the peek safe).
   */
  noRecheckUnderLock?: boolean;
}

/** What an isolation attempt did, for callers that need more than the kernel's result. */
export interface IsolateOutcome {
  /** The kernel's result: `true`/`false`, or `0`/`-EBUSY` in v6.0. */
  readonly result: boolean | number;
  /** The pfn that got isolated (differs from the examined page only with a 9a mistake). */
  readonly isolated: number;
}

/**
 * Whether an `isolate_movable_page` result means "isolated", in any profile.
 * @param result what {@link isolateMovablePage} returned: `true`/`false`, or `0`/`-EBUSY`
 *   in v6.0
 * @returns true for `true` and `0`
 */
export function isolatedOk(result: boolean | number): boolean {
  return result === true || result === 0;
}

/** Slab guard (v6.3) and the movability peek before the lock (steps 2-3). */
function movableBeforeLock(mem: Memory, page: number): boolean {
  const prof = mem.profile;
  const p = mem.pages;
  // 2. (v6.3) Slab guard: struct slab overlays `mapping`, and SLUB's list poison has bit 1
  // set, which looks like the MOVABLE tag.
  if (prof.slabGuard && p.flags[page] & (1 << PG.slab)) return false;
  // 3. Check movability before touching the lock: the owner of a page it has not published
  // may use non-atomic bit operations on its flags, which a scanner's trylock would clobber.
  if (!page_has_movable_ops(mem, page)) return false;
  return !(prof.slabGuard && p.flags[page] & (1 << PG.slab));
}

/**
 * Steps 5-6 under the page lock: re-validate (the owner may have released the page in
 * v4.8–v6.3, or another isolator got there first) and find the ops (through `mapping`, or
 * the page-type registry in v6.17). Undefined means "fail".
 */
function revalidate(mem: Memory, page: number, mistakes?: IsolateMistakes): DefinedOps | undefined {
  const p = mem.pages;
  if (
    mem.profile.movableMarker !== 'page_type' &&
    !mistakes?.noRecheckUnderLock &&
    !pageMovableLocked(mem, page)
  )
    return undefined;
  if (p.flags[page] & ISOLATED) return undefined;
  const d = pageMovableOps(mem, page);
  if (!d) noOps(mem, page, mistakes);
  return d;
}

/** Isolation found no ops under the lock. */
function noOps(mem: Memory, page: number, mistakes: IsolateMistakes | undefined): void {
  // Only reachable without the re-check: the owner cleared the pointer after our peek.
  if (mistakes?.noRecheckUnderLock)
    bug(
      mem,
      `BUG: kernel NULL pointer dereference (${mem.profile.movableMarker === 'address_space' ? 'page->mapping->a_ops->isolate_page' : 'movable_ops->isolate_page'})`,
      page,
    );
  const pfn = `pfn 0x${page.toString(16)}`;
  mem.warnOnce(
    'isolate_movable_ops_page:no_ops',
    mem.profile.movableMarker === 'address_space'
      ? `WARNING: isolate_movable_page: ${pfn} is PageMovable but its address_space lacks migratepage or putback_page; not isolated (4.8 would isolate it and oops on the missing callback)`
      : `WARNING: isolate_movable_ops_page: no movable_ops for ${pfn}`,
    page,
  );
}

/** Step 8: the isolated flag belongs to the VM: warn if the driver set it, then set it. */
function markIsolated(mem: Memory, d: DefinedOps, page: number): void {
  const p = mem.pages;
  const f = p.flags[page];
  if (!(f & ISOLATED) && p.lruNext[page] === 0) p.flags[page] = f | ISOLATED;
  else markIsolatedSlow(mem, d, page);
}

function markIsolatedSlow(mem: Memory, d: DefinedOps, page: number): void {
  const p = mem.pages;
  if (p.flags[page] & ISOLATED) {
    mem.warnOnce(
      'isolate_movable_page:isolated',
      `WARNING: ${mem.profile.isolateFlagWarning} after ${d.name} isolate_page`,
      page,
    );
    protocolViolation(
      mem,
      d.name,
      'isolate_page set the isolated flag, which only the VM may touch',
      page,
    );
  }
  p.flags[page] |= ISOLATED;
  if (p.lists.isLinked(page))
    protocolViolation(
      mem,
      d.name,
      'page isolated twice: after isolate_page its lru is still linked into another list',
      page,
    );
}

/**
 * isolate_movable_page(page, mode): take the VM's isolation reference on a movable page,
 * lock it, re-validate, call the driver's `isolate_page`, set the isolated flag. On
 * failure the page is left exactly as found. The caller links an isolated page into its
 * migration list through `lru`. A generator (the driver's isolate_page may be one, and the
 * steps are scheduling points, named as the release names them: `Profile.isolationGet`, then
 * `Profile.pointNames`' `movableCheck`, `trylock` and `unlock`): call it as
 * `yield* isolateMovablePage(m, pfn, mode)` from a task. It only trylocks, never sleeps on
 * the page lock.
 * @param k the machine (or `{ mem, sched }`): isolation only trylocks, but its unlock wakes
 *   the lock's waiters, which needs the scheduler
 * @param pfn the page to isolate, on which the caller holds no reference (isolation takes
 *   its own, speculatively)
 * @param mode the `isolate_mode_t` bits ({@link ISOLATE}) handed to the driver's
 *   isolate_page; 0 for none
 * @param mistakes historical mistakes to switch back on (spec §9); leave undefined
 * @param out receives in `isolated` the pfn isolated, or -1
 * @returns the profile's result: `true`/`false`, or `0`/`-EBUSY` in v6.0 (test it with
 *   {@link isolatedOk}); on success the caller holds the isolation reference and must pass
 *   the page to migratePages or putbackMovablePages
 * @throws {@link MopsError} `E_RANGE` for a pfn that is not one of the machine's pages
 */
export function* isolateMovablePage(
  k: Kctx,
  pfn: number,
  mode: number,
  mistakes?: IsolateMistakes,
  out?: { isolated: number },
): KernelGen<boolean | number> {
  const { mem, sched } = k;
  mem.checkPfn(pfn, 'isolate_movable_page');
  const prof = mem.profile;
  const fail = prof.isolateReturnsInt ? Errno.EBUSY : false;
  if (out) out.isolated = -1;

  // 1. A speculative reference on the page itself. It fails on free pages, pages being
  // freed, frozen pages and tail pages (their refcount is 0). If we win a race against the
  // final put, our own put below does the free, so nothing leaks; holding the reference
  // pins the page's identity while we look at it.
  let page = pfn;
  if (mistakes?.folioTryGetOnHead) {
    const head = compoundHead(mem, pfn);
    // The 2023 draft's folio_try_get(page_folio(page)); before folios, the same get on
    // compound_head(page).
    if (sched.preemptible)
      yield { op: prof.hasFolios ? 'folio_try_get' : prof.isolationGet, pfn: head };
    if (!folioTryGet(mem, head)) return fail;
    page = head;
  } else {
    if (sched.preemptible) yield { op: prof.isolationGet, pfn };
    if (!getPageUnlessZero(mem, pfn)) return fail;
  }
  if (sched.preemptible) yield { op: prof.pointNames.movableCheck, pfn: page };
  if (!movableBeforeLock(mem, page)) return putAndFail(k, page, fail);

  // 4. trylock, never sleep: the lock serialises against other isolators and against the
  // owner, who publishes and unpublishes movability only under it.
  if (sched.preemptible) yield { op: prof.pointNames.trylock, pfn: page };
  if (!trylockPage(mem, page)) return putAndFail(k, page, fail);
  const d = revalidate(mem, page, mistakes);
  if (!d) return unlockPutFail(k, page, fail);

  // 7. Ask the driver.
  const ok = yield* callIsolatePageGen(mem, d, page, mode);
  if (!ok) return unlockPutFail(k, page, fail);
  markIsolated(mem, d, page);

  // 9. Unlock; the reference from step 1 is kept as the isolation reference.
  if (sched.preemptible) yield { op: prof.pointNames.unlock, pfn: page };
  unlockPage(k, page);
  if (page !== pfn) isolatedOther(mem, page, pfn);
  if (out) out.isolated = page;
  return prof.isolateReturnsInt ? 0 : true;
}

/**
 * The VM's own protocol violation (spec §9a, S04): it isolated a page other than the one it
 * examined. Recorded as a `vm_protocol_violation` (a `protocol_violation` names a driver's
 * mistake), with the page dump.
 */
function isolatedOther(mem: Memory, page: number, pfn: number): void {
  const what = `isolated page ${hexPfn(page)} != examined page ${hexPfn(pfn)}`;
  mem.warn('vm_protocol_violation', `${what}\n${dumpPage(mem, page, what)}`, page);
}

/** Returned by {@link isolateMovablePageFast} when the isolation must run as a generator. */
export const ISOLATE_AS_TASK = 2;

/** The isolate_page call each machine's {@link isolateMovablePageFast} left pending. */
const pendingIsolation = new WeakMap<Memory, { d: DefinedOps; pfn: number; call: PendingCall }>();

/** Where a lone isolation's driver call is started: copied only when it is left pending. */
const started: PendingCall = { iter: undefined, first: undefined } as unknown as PendingCall;

/**
 * {@link isolateMovablePage} for a task running alone (`sched.preemptible` false), without
 * creating a generator of the VM's: the same steps, no scheduling points. A generator
 * isolate_page that ends without yielding runs inline; one that yields a point is left
 * for the task to finish.
 * @param k the machine (or `{ mem, sched }`): isolation only trylocks, but its unlock wakes
 *   the lock's waiters, which needs the scheduler
 * @param pfn the page to isolate
 * @param mode the `isolate_mode_t` bits for isolate_page
 * @returns the profile's result as for isolateMovablePage; {@link ISOLATE_AS_TASK}, having
 *   touched nothing, when other tasks may run: the caller then uses isolateMovablePage; or
 *   {@link ISOLATE_PENDING} when the driver's isolate_page yielded a point: the caller,
 *   a task, then gets the result from `yield* isolateMovablePageResume(k, pfn)`
 * @throws {@link MopsError} `E_RANGE` for a pfn that is not one of the machine's pages
 */
export function isolateMovablePageFast(k: Kctx, pfn: number, mode: number): boolean | number {
  if (k.sched.preemptible) return ISOLATE_AS_TASK;
  const mem = k.mem;
  mem.checkPfn(pfn, 'isolate_movable_page');
  if (!getPageUnlessZero(mem, pfn)) return isolateFail(mem);
  if (!movableBeforeLock(mem, pfn) || !trylockPage(mem, pfn))
    return putAndFail(k, pfn, isolateFail(mem));
  const d = revalidate(mem, pfn);
  if (!d) return unlockPutFail(k, pfn, isolateFail(mem));
  const ok = callIsolatePageAlone(mem, d, pfn, mode, started);
  if (ok === ISOLATE_PENDING) {
    pendingIsolation.set(mem, { d, pfn, call: { iter: started.iter, first: started.first } });
    started.iter = undefined as never;
    return ISOLATE_PENDING;
  }
  return isolateFinish(k, d, pfn, ok);
}

/**
 * The end of an isolation {@link isolateMovablePageFast} left pending (ISOLATE_PENDING),
 * in the task that started it: the rest of the driver's isolate_page, with its points,
 * then the same steps as isolateMovablePage's.
 * @param k the machine (or `{ mem, sched }`)
 * @param pfn the page the pending isolation is for
 * @returns the profile's result as for isolateMovablePage
 * @throws {@link MopsError} `E_STATE` when no isolation of `pfn` is pending
 */
export function* isolateMovablePageResume(k: Kctx, pfn: number): KernelGen<boolean | number> {
  const mem = k.mem;
  const p = pendingIsolation.get(mem);
  if (p === undefined || p.pfn !== pfn)
    throw new MopsError(
      'E_STATE',
      `isolateMovablePageResume: no isolation of pfn ${pfn} is pending (isolateMovablePageFast returns ISOLATE_PENDING for one)`,
      'pfn',
    );
  pendingIsolation.delete(mem);
  if (!(yield* callIsolatePageResume(mem, p.d, pfn, p.call)))
    return unlockPutFail(k, pfn, isolateFail(mem));
  markIsolated(mem, p.d, pfn);
  if (k.sched.preemptible) yield { op: mem.profile.pointNames.unlock, pfn };
  unlockPage(k, pfn);
  return mem.profile.isolateReturnsInt ? 0 : true;
}

/** The steps after isolate_page answered: mark and unlock, or unlock and put. */
function isolateFinish(k: Kctx, d: DefinedOps, pfn: number, ok: boolean): boolean | number {
  if (!ok) return unlockPutFail(k, pfn, isolateFail(k.mem));
  markIsolated(k.mem, d, pfn);
  unlockPage(k, pfn);
  return k.mem.profile.isolateReturnsInt ? 0 : true;
}

/** The profile's "not isolated" result. */
function isolateFail(mem: Memory): boolean | number {
  return mem.profile.isolateReturnsInt ? Errno.EBUSY : false;
}

function putAndFail(k: Kctx, page: number, fail: boolean | number): boolean | number {
  putPage(k.mem, page);
  return fail;
}

function unlockPutFail(k: Kctx, page: number, fail: boolean | number): boolean | number {
  unlockPage(k, page);
  putPage(k.mem, page);
  return fail;
}

/**
 * {@link isolateMovablePage}, also saying which pfn was isolated.
 * @param k the machine (or `{ mem, sched }`): isolation only trylocks, but its unlock wakes
 *   the lock's waiters, which needs the scheduler
 * @param pfn the page to isolate
 * @param mode the `isolate_mode_t` bits for isolate_page
 * @param mistakes historical mistakes to switch back on (spec §9); leave undefined
 * @returns the kernel's result and the pfn isolated (-1 if none)
 */
export function* isolateMovablePageOutcome(
  k: Kctx,
  pfn: number,
  mode: number,
  mistakes?: IsolateMistakes,
): KernelGen<IsolateOutcome> {
  const out = { isolated: -1 };
  const result = yield* isolateMovablePage(k, pfn, mode, mistakes, out);
  return { result, isolated: out.isolated };
}
