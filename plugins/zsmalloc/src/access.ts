/**
 * Object access (spec §7.4): zs_obj_read_begin / zs_obj_write find a live object's zspage
 * under `pool->lock` and hold that zspage's read lock while they touch the bytes, so that
 * neither page migration nor zs_compact moves the object meanwhile; v4.8 also holds the
 * handle's pin (pin.ts) from the start of the access to its end.
 * @module
 */

import { bug, type KernelGen, MopsError, PAGE_SIZE, valueKind } from '@mops/core';
import { ZS_HANDLE_SIZE } from './classes.js';
import { checksum, HANDLE_SLOTS, readBytes, writeBytes } from './objects.js';
import { pinTag, unpinTag } from './pin.js';
import type { ZsPool } from './pool.js';
import { POINTS, Zspage } from './zspage.js';

/** An object held open by {@link ZsPool.objReadBegin}; give it back to objReadEnd. */
export interface ZsObjMapping {
  /** The handle. */
  readonly handle: number;
  /** The object's bytes (the size given to zs_malloc), header excluded. */
  readonly data: Uint8Array;
  /** The zspage whose read lock is held. */
  readonly zspage: Zspage;
}

/** What {@link pinObject} hands back: the handle's slot and its zspage, now held. */
interface HeldObject {
  readonly slot: number;
  readonly zs: Zspage;
}

/**
 * Holds the object of `handle` for an access: v4.8 pins the handle first, as zs_map_object
 * does (pin_tag(), a bit spinlock: a second mapper spins until the first unmaps); then
 * every profile translates `handle` under `pool->lock` (read) and takes its zspage's read
 * lock before dropping the pool lock ({@link lockObject}). `what` names the API call in
 * usage errors, `fn` the kernel function in a BUG. Profiles that do not pin get
 * lockObject's generator itself.
 */
function pinObject(pool: ZsPool, handle: number, what: string, fn: string): KernelGen<HeldObject> {
  return pool.rules.pinsHandles
    ? pinThenLock(pool, handle, what, fn)
    : lockObject(pool, handle, what, fn);
}

/** v4.8's {@link pinObject}: pin_tag(), then {@link lockObject}. */
function* pinThenLock(
  pool: ZsPool,
  handle: number,
  what: string,
  fn: string,
): KernelGen<HeldObject> {
  // v4.8 pin_tag(): from now on migration cannot move the object.
  const pinSlot = handle % HANDLE_SLOTS;
  yield* pinTag(pool, pinSlot, handle);
  let held = false;
  try {
    const o = yield* lockObject(pool, handle, what, fn);
    held = true;
    return o;
  } finally {
    // A plain call that may not wait, or a handle freed meanwhile, gives the pin back too.
    if (!held) unpinTag(pool, pinSlot);
  }
}

/**
 * Translates `handle` under `pool->lock` (read) and takes its zspage's read lock before
 * dropping the pool lock: the handle's slot and the zspage, now held.
 */
function* lockObject(
  pool: ZsPool,
  handle: number,
  what: string,
  fn: string,
): KernelGen<HeldObject> {
  const sched = pool.k.sched;
  yield* pool.lock.readLock();
  const slot = pool.handles.slotOf(handle);
  if (slot < 0) {
    // Freed since the caller's check: report it as the caller would.
    pool.lock.readUnlock();
    pool.checkHandle(handle, what);
  }
  const pfn = pool.handles.pfn[slot];
  const zs = pool.zspageOf(pfn);
  if (!zs) bug(pool.mem, `${fn}: handle points into a page without zspage`, pfn);
  let zspageLocked = false;
  try {
    yield* zs.lock.readLock();
    zspageLocked = true;
  } finally {
    // A plain call that may not wait for the zspage lock gives the pool lock back.
    if (!zspageLocked) pool.lock.readUnlock();
  }
  if (sched.preemptible) yield pool.lock.points.readUnlock;
  pool.lock.readUnlock();
  return { slot, zs };
}

/** Offset of the object of `slot` in its zspage, header excluded. */
function objOffset(pool: ZsPool, zs: Zspage, slot: number): number {
  const cls = zs.cls;
  return pool.handles.idx[slot] * cls.size + (cls.huge ? 0 : ZS_HANDLE_SIZE);
}

/**
 * zs_obj_read_begin(): see {@link ZsPool.objReadBegin}.
 * @see mm/zsmalloc.c zs_obj_read_begin()
 */
export function* objReadBegin(pool: ZsPool, handle: number): KernelGen<ZsObjMapping> {
  pool.checkHandle(handle, 'objRead');
  const { slot, zs } = yield* pinObject(pool, handle, 'objRead', 'zs_obj_read_begin');
  const zoff = objOffset(pool, zs, slot);
  const len = pool.handles.size[slot];
  const inPage = zoff & (PAGE_SIZE - 1);
  let data: Uint8Array;
  if (inPage + len <= PAGE_SIZE) {
    const a = pool.handles.pfn[slot] * PAGE_SIZE + inPage;
    data = pool.bytes.u8.subarray(a, a + len);
  } else {
    data = new Uint8Array(len);
    readBytes(pool.bytes, zs, zoff, data, 0, len);
  }
  return { handle, data, zspage: zs };
}

/**
 * zs_obj_read_end(): see {@link ZsPool.objReadEnd}. Anything but a mapping of `pool` that
 * objReadBegin returned is E_USAGE, checked before anything is released.
 * @see mm/zsmalloc.c zs_obj_read_end()
 */
export function objReadEnd(pool: ZsPool, m: ZsObjMapping): void {
  const zs = typeof m === 'object' && m !== null ? (m as Partial<ZsObjMapping>).zspage : undefined;
  if (!(zs instanceof Zspage) || zs.pool !== pool || !pool.handles.issued(m.handle))
    throw new MopsError(
      'E_USAGE',
      `objReadEnd: ${valueKind(m)} is not a mapping of pool ${pool.name}; pass what objReadBegin returned`,
      'mapping',
    );
  unpinObject(pool, zs, m.handle % HANDLE_SLOTS);
}

/** read_begin, copy, read_end, for a task: see {@link ZsPool.objReadTask}. */
export function* objReadTask(pool: ZsPool, handle: number): KernelGen<Uint8Array> {
  const m = yield* objReadBegin(pool, handle);
  const out = m.data.slice();
  if (pool.k.sched.preemptible) yield POINTS.readUnlock;
  objReadEnd(pool, m);
  return out;
}

/**
 * zs_obj_write(): see {@link ZsPool.objWrite}.
 * @see mm/zsmalloc.c zs_obj_write()
 */
export function* objWriteTask(
  pool: ZsPool,
  handle: number,
  data: Uint8Array,
  offset: number,
): KernelGen {
  const s0 = pool.checkHandle(handle, 'objWrite');
  const size = pool.handles.size[s0];
  if (!(data instanceof Uint8Array))
    throw new MopsError(
      'E_USAGE',
      `objWrite: data must be a Uint8Array, got ${valueKind(data)}`,
      'data',
    );
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new MopsError(
      'E_RANGE',
      `objWrite: offset must be a non-negative integer, got ${valueKind(offset)}`,
      'offset',
    );
  if (offset + data.length > size)
    throw new MopsError(
      'E_RANGE',
      `objWrite: ${data?.length} bytes at offset ${offset} do not fit in the ${size}-byte object of handle ${handle}`,
      'data',
    );
  const { slot, zs } = yield* pinObject(pool, handle, 'objWrite', 'zs_obj_write');
  const zoff = objOffset(pool, zs, slot);
  writeBytes(pool.bytes, zs, zoff + offset, data);
  pool.handles.sum[slot] = checksum(pool.bytes, zs, zoff, size);
  pool.handles.written[slot] = 1;
  if (pool.k.sched.preemptible) yield POINTS.readUnlock;
  unpinObject(pool, zs, slot);
}

/** What {@link pinObject} took: the zspage read lock, then (v4.8) unpin_tag(). */
export function unpinObject(pool: ZsPool, zs: Zspage, slot: number): void {
  zs.lock.readUnlock();
  if (pool.rules.pinsHandles) unpinTag(pool, slot);
}
