/**
 * Calling a driver's callbacks from the VM: plain or generator functions, and the
 * protocol checks around each call (spec §2.1). A violation is never absorbed silently:
 * it is recorded as a `protocol_violation` warning with the page dump, alongside the
 * VM_WARN_ON_ONCE the kernel itself would print where it has one.
 * @module
 */

import { dumpPage } from '../debug/dump_page.js';
import { MmBug } from '../errors.js';
import type { Memory } from '../memory/mem.js';
import { PG } from '../page/flags.js';
import type { KernelGen } from '../sched/types.js';
import { __PageMovable, type DefinedOps, page_has_movable_ops, pageMovableOps } from './movable.js';

const ISOLATED = 1 << PG.isolated;

/** Records a protocol violation by a driver: a warning event with the page dump. */
export function protocolViolation(mem: Memory, driver: string, what: string, pfn: number): void {
  mem.warn('protocol_violation', `${driver}: ${what}\n${dumpPage(mem, pfn, what)}`, pfn);
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Runs a callback that may be a generator function. */
function* invoke<T>(gen: boolean, call: () => unknown): KernelGen<T> {
  if (gen) return yield* call() as KernelGen<T>;
  return call() as T;
}

/**
 * Calls `isolate_page`. A throw or a non-boolean result counts as "not isolated" and is
 * recorded as a violation; an MmBug (a kernel BUG inside the driver) propagates.
 */
export function* callIsolatePage(
  mem: Memory,
  d: DefinedOps,
  pfn: number,
  mode: number,
): KernelGen<boolean> {
  let r: unknown;
  try {
    r = yield* invoke<unknown>(d.isolateGen, () => d.ops.isolatePage(pfn, mode));
  } catch (e) {
    if (e instanceof MmBug) throw e;
    protocolViolation(
      mem,
      d.name,
      `isolate_page threw (${describe(e)}); the page stays where it was`,
      pfn,
    );
    return false;
  }
  if (typeof r !== 'boolean') {
    protocolViolation(
      mem,
      d.name,
      `isolate_page returned ${String(r)}, not a boolean; treated as false`,
      pfn,
    );
    return false;
  }
  return r;
}

/** Whether `rc` is 0 or a negative errno. */
function validRc(rc: unknown): rc is number {
  return typeof rc === 'number' && Number.isInteger(rc) && rc <= 0 && rc >= -4095;
}

/**
 * Calls `migrate_page(dst, src, mode)` and checks the driver's duties: it must not touch
 * src's VM-owned lru or isolated flag; on success dst must be its movable page holding its
 * own reference and (v4.8–v6.3) src must no longer be PageMovable. A throw or a value that
 * is not 0 or a negative errno is a violation and counts as a permanent failure (-EINVAL).
 */
export function* callMigratePage(
  mem: Memory,
  d: DefinedOps,
  dst: number,
  src: number,
  mode: number,
): KernelGen<number> {
  const p = mem.pages;
  const next = p.lruNext[src];
  const prev = p.lruPrev[src];
  let rc: unknown;
  try {
    rc = yield* invoke<unknown>(d.migrateGen, () => d.ops.migratePage(dst, src, mode));
  } catch (e) {
    if (e instanceof MmBug) throw e;
    protocolViolation(
      mem,
      d.name,
      `migrate_page threw (${describe(e)}); treated as a permanent failure`,
      src,
    );
    rc = -22;
  }
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
  if (!(p.flags[src] & ISOLATED)) {
    protocolViolation(
      mem,
      d.name,
      'migrate_page cleared the isolated flag, which only the VM may touch',
      src,
    );
    p.flags[src] |= ISOLATED;
  }
  if (!validRc(rc)) {
    protocolViolation(
      mem,
      d.name,
      `migrate_page returned ${String(rc)}, not 0 or a negative errno; treated as -EINVAL`,
      src,
    );
    return -22;
  }
  if (rc === 0) {
    const prof = mem.profile;
    const dstMovable =
      prof.movableMarker === 'page_type'
        ? page_has_movable_ops(mem, dst)
        : __PageMovable(mem, dst) && pageMovableOps(mem, dst) !== undefined;
    if (!dstMovable)
      protocolViolation(
        mem,
        d.name,
        'migrate_page returned success but dst is not its movable page',
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
 * Calls `putback_page`. A throw is recorded as a violation; the VM still clears the
 * isolated flag and drops its reference afterwards.
 */
export function* callPutbackPage(mem: Memory, d: DefinedOps, pfn: number): KernelGen<void> {
  try {
    yield* invoke<void>(d.putbackGen, () => d.ops.putbackPage(pfn));
  } catch (e) {
    if (e instanceof MmBug) throw e;
    protocolViolation(mem, d.name, `putback_page threw (${describe(e)})`, pfn);
  }
  if (!(mem.pages.flags[pfn] & ISOLATED)) {
    protocolViolation(
      mem,
      d.name,
      'putback_page cleared the isolated flag, which only the VM may touch',
      pfn,
    );
  }
}
