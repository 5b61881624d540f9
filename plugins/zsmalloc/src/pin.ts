/**
 * v4.8's handle pin (zsmalloc-by-profile §3.1, §3.2): bit 0 of the handle word,
 * HANDLE_PIN_BIT, is a bit spinlock. zs_map_object and zs_free take it with pin_tag(),
 * spinning while another holder has it; zs_unmap_object and the end of zs_free drop it with
 * unpin_tag(); zs_page_migrate and zs_compact's migrate_zspage only try it (trypin_tag) and
 * leave an object whose pin is held alone. As every bit spinlock, it is exclusive, keeps
 * preemption off in its holder (a holder that sleeps is a sleep in atomic context) and is
 * not tracked by lockdep. Later profiles have no pin (`ZsRules.pinsHandles`).
 * @see mm/zsmalloc.c pin_tag(), unpin_tag(), trypin_tag() (4.8)
 * @see include/linux/bit_spinlock.h bit_spin_lock(), bit_spin_unlock()
 * @module
 */

import { cpuRelax, type KernelGen } from '@mops/core';
import type { ZsPool } from './pool.js';

/**
 * pin_tag(handle): bit_spin_lock() of the pin of the handle in `slot`. While another holder
 * has the bit, each round of the wait yields core's `cpu_relax` point, with preemption on
 * (bit_spin_lock() enables it around its wait loop), so that the holder runs and the
 * scheduler reports a spin nothing can end (a task freeing a handle it has mapped itself)
 * as a `Livelock` whose point names the pin and its holder. Once the bit is taken,
 * preemption is off in the taking task until {@link unpinTag}.
 * @param pool the pool
 * @param slot the handle's slot
 * @param handle the handle, for reports
 */
export function* pinTag(pool: ZsPool, slot: number, handle: number): KernelGen {
  while (isPinned(pool, slot)) {
    const pfn = pool.handles.pfn[slot];
    yield* cpuRelax(pfn >= 0 ? pfn : undefined, spinNote(pool, slot, handle));
  }
  take(pool, slot);
}

/**
 * trypin_tag(handle): take the pin of the handle in `slot` if nobody holds it; whether it
 * was taken.
 */
export function trypinTag(pool: ZsPool, slot: number): boolean {
  if (isPinned(pool, slot)) return false;
  take(pool, slot);
  return true;
}

/**
 * testpin_tag(handle): whether someone (a task, or code outside any task) holds the pin of
 * the handle in `slot`. Never in profiles that do not pin.
 */
export function isPinned(pool: ZsPool, slot: number): boolean {
  return pool.handles.pinHolder.has(slot);
}

function take(pool: ZsPool, slot: number): void {
  const t = pool.k.sched.current;
  pool.handles.pinHolder.set(slot, t ?? null);
  // bit_spin_lock()'s preempt_disable(); no lockdep map, as for every bit spinlock.
  if (t !== undefined) t.atomicDepth++;
}

/**
 * unpin_tag(handle): bit_spin_unlock() of the pin of the handle in `slot`; its holder has
 * preemption back.
 */
export function unpinTag(pool: ZsPool, slot: number): void {
  const holders = pool.handles.pinHolder;
  const holder = holders.get(slot);
  holders.delete(slot);
  if (holder) holder.atomicDepth--;
}

/**
 * unpin_tag() at the end of zs_free(): the free released the pin with the handle (the slot
 * may be someone else's, pinned, by now), so only the freer's preemption comes back; a free
 * that did not happen (a plain call that could not wait, a handle freed meanwhile) still
 * holds its pin and drops it.
 */
export function unpinAfterFree(pool: ZsPool, slot: number): void {
  const t = pool.k.sched.current;
  // An unpinned slot has no holder (undefined), never equal to `t ?? null`.
  if (pool.handles.pinHolder.get(slot) === (t ?? null)) unpinTag(pool, slot);
  else if (t !== undefined) t.atomicDepth--;
}

/** What a spinner on the pin of `slot` waits for, as its cpu_relax point names it. */
function spinNote(pool: ZsPool, slot: number, handle: number): string {
  const holder = pool.handles.pinHolder.get(slot);
  const who =
    holder === undefined
      ? 'nobody'
      : holder === null
        ? 'code outside any task (a mapping still open)'
        : holder === pool.k.sched.current
          ? `${holder.label} itself`
          : holder.label;
  return `pin_tag(handle ${handle}): HANDLE_PIN_BIT held by ${who}`;
}
