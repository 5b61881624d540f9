/**
 * Calling a driver's callbacks from the VM: plain or generator functions, and the
 * protocol checks around each call (spec §2.1). A violation is never absorbed silently:
 * it is recorded as a `protocol_violation` warning with the page dump, alongside the
 * VM_WARN_ON_ONCE the kernel itself would print where it has one.
 * @module
 */

import { assertText, bug } from '../debug/dump_page.js';
import { MmBug } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { ISOLATED, LOCKED, PG } from '../page/flags.js';
import { isPoint, notAPoint } from '../sched/point.js';
import type { KernelGen } from '../sched/types.js';
import { describe, isIterator, lockDropped, protocolViolation, shown } from './driver_faults.js';
import { __PageMovable, type DefinedOps, page_has_movable_ops, pageMovableOps } from './movable.js';
import { notIsolatedBug } from './move.js';

export { protocolViolation };

/**
 * The checks after `isolate_page`: the page lock is the VM's (the VM unlocks it next, and
 * that unlock is a BUG for a page the driver unlocked); a result that is not a boolean is a
 * violation, treated as false.
 */
function checkIsolateResult(mem: Memory, d: DefinedOps, pfn: number, r: unknown): boolean {
  if (!(mem.pages.flags[pfn] & LOCKED)) lockDropped(mem, d, 'isolate_page', 'the page', pfn);
  return typeof r === 'boolean' ? r : isolateNotBoolean(mem, d, pfn, r);
}

function isolateNotBoolean(mem: Memory, d: DefinedOps, pfn: number, r: unknown): boolean {
  protocolViolation(
    mem,
    d.name,
    `isolate_page returned ${shown(r)}, not a boolean; treated as false`,
    pfn,
  );
  return false;
}

function isolateThrew(mem: Memory, d: DefinedOps, pfn: number, e: unknown): boolean {
  if (e instanceof MmBug) throw e;
  protocolViolation(
    mem,
    d.name,
    `isolate_page threw (${describe(e)}); the page stays where it was`,
    pfn,
  );
  return false;
}

/**
 * Calls `isolate_page` from code that cannot wait (the VM itself calls
 * {@link callIsolatePageGen} or, in a task running alone, {@link callIsolatePageAlone}). A
 * throw or a non-boolean result counts as "not isolated" and is recorded as a violation; an
 * MmBug (a kernel BUG inside the driver) propagates. An iterator the callback returns runs
 * to its end here; a wait in it could never end, which is reported as a BUG.
 */
export function callIsolatePage(mem: Memory, d: DefinedOps, pfn: number, mode: number): boolean {
  try {
    mem.onDriverCall?.('isolate_page', pfn);
    return checkIsolateResult(mem, d, pfn, runInline(mem, d.ops.isolatePage(pfn, mode)));
  } catch (e) {
    return isolateThrew(mem, d, pfn, e);
  }
}

/**
 * {@link callIsolatePage} in a task: a generator `isolate_page`, or the iterator a plain
 * one returned, runs with its scheduling points.
 */
export function* callIsolatePageGen(
  mem: Memory,
  d: DefinedOps,
  pfn: number,
  mode: number,
): KernelGen<boolean> {
  try {
    mem.onDriverCall?.('isolate_page', pfn);
    const r = d.ops.isolatePage(pfn, mode) as unknown;
    return checkIsolateResult(mem, d, pfn, isIterator(r) ? yield* r : r);
  } catch (e) {
    return isolateThrew(mem, d, pfn, e);
  }
}

/** A driver's generator callback that a lone task started and that yielded a point. */
export interface PendingCall {
  /** The driver's generator. */
  iter: KernelGen<unknown>;
  /** What its first `next()` gave: the point to hand to the scheduler. */
  first: IteratorResult<unknown, unknown>;
}

/**
 * Returned by {@link callIsolatePageAlone}, and by `isolateMovablePageFast`, when the
 * driver's isolate_page yielded a scheduling point (it must wait for a lock, say): the page
 * is locked and referenced, the call is under way, and the task finishes it
 * (`isolateMovablePageResume`).
 */
export const ISOLATE_PENDING = 3;

/**
 * {@link callIsolatePageGen} for a task running alone, without a generator of the VM's:
 * the driver's generator is started and, if it ends without yielding, its checked result
 * is returned; if it yields a point (it must wait, or asks for a scheduling point), the call
 * is left in `out` and ISOLATE_PENDING returned, for {@link callIsolatePageResume} to
 * finish in the task, as the generator form would.
 */
export function callIsolatePageAlone(
  mem: Memory,
  d: DefinedOps,
  pfn: number,
  mode: number,
  out: PendingCall,
): boolean | typeof ISOLATE_PENDING {
  try {
    mem.onDriverCall?.('isolate_page', pfn);
    const r = firstStep(d.ops.isolatePage(pfn, mode), out);
    return r === STEPPED ? ISOLATE_PENDING : checkIsolateResult(mem, d, pfn, r);
  } catch (e) {
    return isolateThrew(mem, d, pfn, e);
  }
}

/** The rest of a call {@link callIsolatePageAlone} left pending, as {@link callIsolatePageGen}. */
export function* callIsolatePageResume(
  mem: Memory,
  d: DefinedOps,
  pfn: number,
  call: PendingCall,
): KernelGen<boolean> {
  let r: unknown;
  try {
    r = yield* finishSteps(call);
  } catch (e) {
    return isolateThrew(mem, d, pfn, e);
  }
  return checkIsolateResult(mem, d, pfn, r);
}

/**
 * A plain callback may hand back a generator when it wants to interleave (a driver that
 * checks `sched.preemptible`); run alone, it yields only sleeps, which nothing could end.
 */
function runInline(mem: Memory, r: unknown): unknown {
  if (!isIterator(r)) return r;
  for (let n = r.next(); ; n = r.next()) {
    // A value that is not a scheduling point is thrown back at the yield that made it.
    while (!n.done && !isPoint(n.value)) n = r.throw(notAPoint(n.value));
    if (n.done) return n.value;
    if (n.value.op === 'block')
      bug(
        mem,
        `a lone task would sleep forever in a driver callback (${(n.value as { what?: string }).what ?? 'block'})`,
      );
  }
}

/** Whether `rc` is 0 or a negative errno. */
function validRc(rc: unknown): rc is number {
  return rc === 0 || (typeof rc === 'number' && Number.isInteger(rc) && rc < 0 && rc >= -4095);
}

function migrateThrew(mem: Memory, d: DefinedOps, src: number, e: unknown): number {
  if (e instanceof MmBug) throw e;
  protocolViolation(
    mem,
    d.name,
    `migrate_page threw (${describe(e)}); treated as a permanent failure`,
    src,
  );
  return -22;
}

/**
 * The checks after `migrate_page`: the driver must not touch src's VM-owned lru or
 * isolated flag; on success dst must be its movable page holding its own reference and
 * (v4.8–v6.3) src must no longer be PageMovable. A value that is not 0 or a negative errno
 * is a violation and counts as a permanent failure (-EINVAL).
 */
function checkMigrate(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  next: number,
  prev: number,
  iso: number,
  rc: unknown,
): number {
  const p = mem.pages;
  if (
    rc === 0 &&
    p.lruNext[src] === next &&
    p.lruPrev[src] === prev &&
    (p.flags[src] & (ISOLATED | LOCKED)) === (ISOLATED | LOCKED) &&
    p.flags[dst] & LOCKED &&
    migrateSuccessClean(mem, d, dst, src)
  )
    return 0;
  return checkMigrateSlow(mem, d, dst, src, next, prev, iso, rc);
}

/** v6.17: dst untouched by a driver that returned 0 (see {@link checkMigrateSlow}). */
function fakeSuccess(mem: Memory, dst: number): boolean {
  const p = mem.pages;
  return p.refcount[dst] === 1 && p.type[dst] === -1 && !(p.flags[dst] & (1 << PG.movable_ops));
}

/**
 * Whether a 0 from migrate_page passes the success checks of {@link checkMigrateSlow}
 * without a violation: a v6.17 fake success, or dst the driver's movable page with its own
 * reference and (v4.8–v6.3) src cleared.
 */
function migrateSuccessClean(mem: Memory, d: DefinedOps, dst: number, src: number): boolean {
  const p = mem.pages;
  const prof = mem.profile;
  if (!prof.ownerMayRelease && fakeSuccess(mem, dst)) return true;
  if (p.refcount[dst] < 2) return false;
  if (prof.driverClearsSrc && p.mapping[src] >>> 2 !== 0) return false;
  return dstOps(mem, dst) === d;
}

/**
 * The ops dst is a movable page of (the page type's, v6.17; else the tag's and mapping's),
 * or undefined when it is none.
 */
function dstOps(mem: Memory, dst: number): DefinedOps | undefined {
  const marked =
    mem.profile.movableMarker === 'page_type'
      ? page_has_movable_ops(mem, dst)
      : __PageMovable(mem, dst);
  return marked ? pageMovableOps(mem, dst) : undefined;
}

function checkMigrateSlow(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  next: number,
  prev: number,
  iso: number,
  rc: unknown,
): number {
  const p = mem.pages;
  if (!(p.flags[src] & LOCKED)) lockDropped(mem, d, 'migrate_page', 'src', src);
  if (!(p.flags[dst] & LOCKED)) lockDropped(mem, d, 'migrate_page', 'dst', dst);
  if (p.lruNext[src] !== next || p.lruPrev[src] !== prev) {
    protocolViolation(
      mem,
      d.name,
      'migrate_page changed src->lru, which the VM owns while the page is isolated',
      src,
    );
    p.lruNext[src] = next;
    p.lruPrev[src] = prev;
  }
  // A src that came without the flag (v6.17 warns and migrates it) is not the driver's doing.
  if (iso !== 0 && !(p.flags[src] & ISOLATED)) {
    protocolViolation(
      mem,
      d.name,
      'migrate_page cleared the isolated flag, which only the VM may touch',
      src,
    );
    // The kernel's own warning in move_to_new_folio (v4.8–v6.3), then the VM_BUG_ON of its
    // success branch for a page still tagged movable; the flag is repaired for the VM's
    // later steps. v6.17 only clears the flag on success and leaves it as the driver did:
    // a failed page goes on without it (the next pass and putback warn, and a scanner may
    // isolate it again).
    if (rc === 0 && mem.profile.coreDetectsRelease) {
      mem.warnOnce(
        'move_to_new_folio:isolated',
        `WARNING: WARN_ON_ONCE(rc == MIGRATEPAGE_SUCCESS && ${assertText(mem, '!folio_test_isolated(src)', '!PageIsolated(page)')})`,
        src,
      );
      if (__PageMovable(mem, src)) bug(mem, notIsolatedBug(mem), src);
    }
    if (!mem.profile.isolatedCheckWarns) p.flags[src] |= ISOLATED;
  }
  if (!validRc(rc)) {
    protocolViolation(
      mem,
      d.name,
      `migrate_page returned ${shown(rc)}, not 0 or a negative errno; treated as -EINVAL`,
      src,
    );
    return -22;
  }
  // v6.17 (§4.3): a 0 with dst untouched means the owner dropped src (or declined dst) and
  // "the migration core will be the owner of both pages": that is the protocol, not a
  // violation.
  if (rc === 0 && !(!mem.profile.ownerMayRelease && fakeSuccess(mem, dst))) {
    const prof = mem.profile;
    const ops = dstOps(mem, dst);
    if (ops === undefined)
      protocolViolation(
        mem,
        d.name,
        'migrate_page returned success but dst is not its movable page',
        dst,
      );
    else if (ops !== d)
      // The VM finds a page's driver from the page (page_movable_ops()): the next isolation
      // of dst would call the other driver's callbacks on a page it never had.
      protocolViolation(
        mem,
        d.name,
        `migrate_page returned success but made dst a movable page of ${ops.name}, not its own`,
        dst,
      );
    if (p.refcount[dst] < 2)
      protocolViolation(
        mem,
        d.name,
        'migrate_page returned success without taking a reference on dst',
        dst,
      );
    if (prof.driverClearsSrc && p.mapping[src] >>> 2 !== 0)
      protocolViolation(
        mem,
        d.name,
        'migrate_page returned success without __ClearPageMovable(src)',
        src,
      );
  }
  return rc;
}

/**
 * Calls a plain `migrate_page(dst, src, mode)` with the checks of the driver's duties, from
 * code that cannot wait (the VM itself calls {@link callMigratePageGen} or, in a task
 * running alone, {@link callMigratePageAlone}). An iterator the callback returns runs to
 * its end here; a wait in it could never end, which is reported as a BUG.
 */
export function callMigratePage(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  mode: number,
): number {
  const next = mem.pages.lruNext[src];
  const prev = mem.pages.lruPrev[src];
  const iso = mem.pages.flags[src] & ISOLATED;
  let rc: unknown;
  try {
    mem.onDriverCall?.('migrate_page', dst, src);
    rc = d.ops.migratePage(dst, src, mode);
    if (typeof rc === 'object') rc = runInline(mem, rc);
  } catch (e) {
    rc = migrateThrew(mem, d, src, e);
  }
  return checkMigrate(mem, d, dst, src, next, prev, iso, rc);
}

/**
 * {@link callMigratePage} in a task: a generator `migrate_page`, or the iterator a plain
 * one returned, runs with its scheduling points.
 */
export function* callMigratePageGen(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  mode: number,
): KernelGen<number> {
  const next = mem.pages.lruNext[src];
  const prev = mem.pages.lruPrev[src];
  const iso = mem.pages.flags[src] & ISOLATED;
  let rc: unknown;
  try {
    mem.onDriverCall?.('migrate_page', dst, src);
    const r = d.ops.migratePage(dst, src, mode) as unknown;
    rc = isIterator(r) ? yield* r : r;
  } catch (e) {
    rc = migrateThrew(mem, d, src, e);
  }
  return checkMigrate(mem, d, dst, src, next, prev, iso, rc);
}

/** A generator migrate_page that a lone task started and that yielded a point. */
export interface PendingMigrate extends PendingCall {
  /** src->lru.next as it was before the call. */
  next: number;
  /** src->lru.prev as it was before the call. */
  prev: number;
  /** src's isolated flag (ISOLATED or 0) as it was before the call. */
  iso: number;
}

/** Returned by {@link callMigratePageAlone} when the driver yielded a point. */
export const MIGRATE_PENDING = 1;

/**
 * The migrate_page call of a task running alone, without creating a generator of the VM's:
 * a plain callback as {@link callMigratePage}, a generator callback (or the iterator a
 * plain one returned) started as {@link callMigratePageGen} would. If it finishes without
 * yielding, the checked result; otherwise MIGRATE_PENDING with the call in `out`, for
 * {@link callMigratePageResume}.
 */
export function callMigratePageAlone(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  mode: number,
  out: PendingMigrate,
): number {
  const next = mem.pages.lruNext[src];
  const prev = mem.pages.lruPrev[src];
  const iso = mem.pages.flags[src] & ISOLATED;
  let rc: unknown;
  try {
    mem.onDriverCall?.('migrate_page', dst, src);
    const alone = d.migrateAlone;
    rc =
      alone === undefined ? d.ops.migratePage(dst, src, mode) : alone.call(d.ops, dst, src, mode);
    if (typeof rc === 'object') rc = firstStep(rc, out);
  } catch (e) {
    rc = migrateThrew(mem, d, src, e);
  }
  if (rc === STEPPED) {
    out.next = next;
    out.prev = prev;
    out.iso = iso;
    return MIGRATE_PENDING;
  }
  return checkMigrate(mem, d, dst, src, next, prev, iso, rc);
}

/** What {@link firstStep} returns when the driver's iterator yielded a point. */
const STEPPED = Symbol('stepped');

/**
 * The first step of an iterator migrate_page returned: its result, or STEPPED with the
 * iterator and the point in `out`. Anything else is the result itself.
 */
function firstStep(r: unknown, out: PendingCall): unknown {
  if (!isIterator(r)) return r;
  const n = r.next();
  if (n.done === true) return n.value;
  out.iter = r;
  out.first = n;
  return STEPPED;
}

/** The rest of a call {@link callMigratePageAlone} left pending, as {@link callMigratePageGen}. */
export function* callMigratePageResume(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  call: PendingMigrate,
): KernelGen<number> {
  let rc: unknown;
  try {
    rc = yield* finishSteps(call);
  } catch (e) {
    rc = migrateThrew(mem, d, src, e);
  }
  return checkMigrate(mem, d, dst, src, call.next, call.prev, call.iso, rc);
}

/**
 * Runs a pending call to its end in the task: its first point is handed to the scheduler,
 * then each later one, as `yield*` of the driver's generator would; a value that is not a
 * scheduling point is thrown back at the yield that made it.
 */
function* finishSteps(call: PendingCall): KernelGen<unknown> {
  let n = call.first;
  while (n.done !== true) {
    if (isPoint(n.value)) {
      yield n.value;
      n = call.iter.next();
    } else n = call.iter.throw(notAPoint(n.value));
  }
  return n.value;
}
