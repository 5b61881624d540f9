/**
 * Objects inside zspages (spec §7.1; zsmalloc-by-profile §2): the handle table, the
 * allocated-object header and free-object links kept in page bytes, init_zspage,
 * obj_malloc / obj_free and the copies that cross a page boundary.
 * @module
 */

import { PAGE_SHIFT, PAGE_SIZE, type Task } from '@mops/core';
import type { SizeClass, Zspage } from './zspage.js';

/** OBJ_ALLOCATED_TAG: bit 0 of an object's first word marks it allocated. */
export const OBJ_ALLOCATED_TAG = 1;
/** OBJ_TAG_BITS: free links store the next index shifted by this. */
export const OBJ_TAG_BITS = 1;
/**
 * Handle slots: a handle is `high * HANDLE_SLOTS + slot`, where `high` is the slot's
 * generation times {@link MAX_POOLS} plus the pool's index on its machine. Handles stay
 * below 2^52, so that an object's header (`handle * 2 + OBJ_ALLOCATED_TAG`) is an exact
 * number.
 */
export const HANDLE_SLOTS = 2 ** 26;
/** The pools one machine may have: each has a share of every slot's handle values. */
export const MAX_POOLS = 2 ** 8;
/** Values of `high` (2^18 generations a slot goes through before its values repeat). */
const HIGH_LIMIT = 2 ** 26;
const TWO32 = 2 ** 32;
/** Link word of the last free object (all ones shifted by OBJ_TAG_BITS), low half. */
const END_LO = 0xfffffffe;
const END_HI = 0xffffffff;

/**
 * The handle table (the kernel's "zs_handle" slab cache): each live handle holds the
 * location of its object, as `obj` = (pfn, index) would, plus what the emulator records
 * about it: the size asked for and the checksum of the last write.
 */
export class HandleTable {
  /** pfn of the page where the object starts; -1 for a free slot. */
  pfn: Int32Array;
  /** Object index within its zspage. */
  idx: Int32Array;
  /** Size given to zs_malloc. */
  size: Int32Array;
  /**
   * The high part of the slot's handle: its generation (bumped on free, so stale handles
   * are recognised) times {@link MAX_POOLS}, plus the pool's index.
   */
  gen: Int32Array;
  /** FNV-1a of the object's bytes at the last write. */
  sum: Int32Array;
  /** 1 once the object was written. */
  written: Uint8Array;
  /**
   * v4.8 HANDLE_PIN_BIT of the handle word, a bit spinlock (zs_map_object until
   * zs_unmap_object, zs_free, a migration's trypin_tag): the holder of each held pin, by
   * slot: its task, or null for code run outside any task (a plain call's mapping). A slot
   * is pinned exactly when it has an entry here (pin.ts `isPinned`); the holder is for
   * reports and for giving it its preemption back. zs_page_migrate fails with -EAGAIN on a
   * pinned object that starts in its page.
   */
  readonly pinHolder = new Map<number, Task | null>();
  /** Free slots (a stack). */
  private free: Int32Array;
  private nFree = 0;
  /** Slots handed out so far (slot 0 is never used). */
  private top = 1;
  /** Live handles. */
  live = 0;

  /** The pool's index: the high part of each slot's first handle. */
  private readonly base: number;

  /**
   * @param index which pool of its machine this table serves (0 for the first, below
   *   {@link MAX_POOLS}): every handle's high part is `index` modulo MAX_POOLS, so pools of
   *   one machine never share a handle value
   * @param initial slots to allocate room for
   */
  constructor(index = 0, initial = 1024) {
    if (!Number.isInteger(index) || index < 0 || index >= MAX_POOLS)
      throw new RangeError(`a handle table's pool index must be 0..${MAX_POOLS - 1}`);
    this.base = index;
    this.pfn = new Int32Array(initial).fill(-1);
    this.idx = new Int32Array(initial);
    this.size = new Int32Array(initial);
    this.gen = new Int32Array(initial);
    this.sum = new Int32Array(initial);
    this.written = new Uint8Array(initial);
    this.free = new Int32Array(initial);
  }

  /** cache_alloc_handle(): a new handle. */
  alloc(): number {
    let slot: number;
    if (this.nFree > 0) slot = this.free[--this.nFree];
    else {
      if (this.top === this.pfn.length) this.grow();
      slot = this.top++;
      this.gen[slot] = this.base;
    }
    this.live++;
    return this.gen[slot] * HANDLE_SLOTS + slot;
  }

  /** cache_free_handle(). */
  release(handle: number): void {
    const slot = handle % HANDLE_SLOTS;
    this.pfn[slot] = -1;
    this.written[slot] = 0;
    // zs_free's unpin_tag() comes with the free: the slot may be someone else's next.
    this.pinHolder.delete(slot);
    this.gen[slot] = (this.gen[slot] + MAX_POOLS) % HIGH_LIMIT;
    this.free[this.nFree++] = slot;
    this.live--;
  }

  /** The slot of a live handle, or -1 when `handle` is not one (never issued, or freed). */
  slotOf(handle: number): number {
    if (!Number.isSafeInteger(handle) || handle <= 0) return -1;
    const slot = handle % HANDLE_SLOTS;
    if (slot >= this.top || this.pfn[slot] < 0) return -1;
    return Math.floor(handle / HANDLE_SLOTS) === this.gen[slot] ? slot : -1;
  }

  /** Whether `handle` was issued by this table at some point (live or freed). */
  issued(handle: number): boolean {
    if (!Number.isSafeInteger(handle) || handle <= 0) return false;
    const slot = handle % HANDLE_SLOTS;
    if (slot === 0 || slot >= this.top) return false;
    // This pool's, of a generation between the slot's first and its current one.
    const age = (Math.floor(handle / HANDLE_SLOTS) - this.base + HIGH_LIMIT) % HIGH_LIMIT;
    return age % MAX_POOLS === 0 && age <= (this.gen[slot] - this.base + HIGH_LIMIT) % HIGH_LIMIT;
  }

  /** Every live slot. */
  *liveSlots(): Generator<number> {
    for (let s = 1; s < this.top; s++) if (this.pfn[s] >= 0) yield s;
  }

  private grow(): void {
    const n = this.pfn.length * 2;
    const g32 = (a: Int32Array, fill = 0): Int32Array => {
      const b = new Int32Array(n).fill(fill);
      b.set(a);
      return b;
    };
    this.pfn = g32(this.pfn, -1);
    this.idx = g32(this.idx);
    this.size = g32(this.size);
    this.gen = g32(this.gen);
    this.sum = g32(this.sum);
    this.free = g32(this.free);
    const g8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(n);
      b.set(a);
      return b;
    };
    this.written = g8(this.written);
  }
}

/** Page bytes and their 32-bit view, shared by the object code. */
export interface Bytes {
  /** All page contents. */
  readonly u8: Uint8Array;
  /** The same memory as 32-bit words (little-endian, as on x86-64). */
  readonly u32: Uint32Array;
  /** Handle kept in the page descriptor of a huge zspage's page (0 = none). */
  readonly hugeHandle: Float64Array;
}

/** Byte address in `Bytes.u8` of offset `off` of zspage-wide byte offset `zoff`. */
export function objAddr(zs: Zspage, zoff: number): number {
  return zs.pages[zoff >>> PAGE_SHIFT] * PAGE_SIZE + (zoff & (PAGE_SIZE - 1));
}

/** Writes the allocated-object header: the handle with OBJ_ALLOCATED_TAG. */
export function writeHeader(b: Bytes, addr: number, handle: number): void {
  const v = handle * 2 + OBJ_ALLOCATED_TAG;
  b.u32[addr >>> 2] = v % TWO32;
  b.u32[(addr >>> 2) + 1] = Math.floor(v / TWO32);
}

/**
 * obj_allocated(): the handle in an object's header, or 0 when its tag bit is clear (a
 * free link).
 */
export function readHeader(b: Bytes, addr: number): number {
  const lo = b.u32[addr >>> 2];
  if (!(lo & OBJ_ALLOCATED_TAG)) return 0;
  return (b.u32[(addr >>> 2) + 1] * TWO32 + lo - OBJ_ALLOCATED_TAG) / 2;
}

/**
 * The handle recorded for the object at zspage offset `zoff`: in a huge object's page
 * descriptor, else in the object's header; 0 or less when the object is free.
 */
export function storedHandle(b: Bytes, zs: Zspage, zoff: number): number {
  return zs.cls.huge
    ? (b.hugeHandle[zs.pages[zoff >>> PAGE_SHIFT]] - 1) / 2
    : readHeader(b, objAddr(zs, zoff));
}

function writeLink(b: Bytes, addr: number, next: number): void {
  if (next < 0) {
    b.u32[addr >>> 2] = END_LO;
    b.u32[(addr >>> 2) + 1] = END_HI;
  } else {
    b.u32[addr >>> 2] = next << OBJ_TAG_BITS;
    b.u32[(addr >>> 2) + 1] = 0;
  }
}

function readLink(b: Bytes, addr: number): number {
  const lo = b.u32[addr >>> 2];
  return lo === END_LO && b.u32[(addr >>> 2) + 1] === END_HI ? -1 : lo >>> OBJ_TAG_BITS;
}

/**
 * Offset of the first object that starts in page `k` of a zspage of objects of `size`.
 * @see mm/zsmalloc.c init_zspage(), set_first_obj_offset()
 */
export function firstObjOffset(k: number, size: number): number {
  const r = (k * PAGE_SIZE) % size;
  return r === 0 ? 0 : size - r;
}

/**
 * init_zspage(): chain every object into the free list, in index order, with the last
 * object starting in each page linking to the first of the next page.
 * @see mm/zsmalloc.c init_zspage()
 */
export function initZspage(b: Bytes, cls: SizeClass, zs: Zspage): void {
  const size = cls.size;
  let freeobj = 1;
  let off = 0;
  const n = zs.pages.length;
  for (let k = 0; k < n; k++) {
    const base = zs.pages[k] * PAGE_SIZE;
    let link = base + off;
    off += size;
    while (off < PAGE_SIZE) {
      writeLink(b, link, freeobj++);
      link = base + off;
      off += size;
    }
    writeLink(b, link, k + 1 < n ? freeobj++ : -1);
    off %= PAGE_SIZE;
  }
  zs.freeobj = 0;
}

/**
 * obj_malloc(): pop the first free object, store the handle in its header (or, for a huge
 * zspage, in the page descriptor), and record the location in the handle table.
 * @see mm/zsmalloc.c obj_malloc()
 */
export function objMalloc(b: Bytes, h: HandleTable, zs: Zspage, handle: number): void {
  const cls = zs.cls;
  const idx = zs.freeobj;
  const zoff = idx * cls.size;
  const pfn = zs.pages[zoff >>> PAGE_SHIFT];
  const addr = pfn * PAGE_SIZE + (zoff & (PAGE_SIZE - 1));
  if (cls.huge) {
    zs.freeobj = -1;
    b.hugeHandle[pfn] = handle * 2 + OBJ_ALLOCATED_TAG;
  } else {
    zs.freeobj = readLink(b, addr);
    writeHeader(b, addr, handle);
  }
  zs.inuse++;
  const slot = handle % HANDLE_SLOTS;
  h.pfn[slot] = pfn;
  h.idx[slot] = idx;
}

/**
 * obj_free(): push an object back on its zspage's free list (a huge zspage only clears the
 * handle in its page descriptor).
 * @see mm/zsmalloc.c obj_free()
 */
export function objFree(b: Bytes, zs: Zspage, pfn: number, idx: number): void {
  const cls = zs.cls;
  if (cls.huge) b.hugeHandle[pfn] = 0;
  else writeLink(b, pfn * PAGE_SIZE + ((idx * cls.size) & (PAGE_SIZE - 1)), zs.freeobj);
  zs.freeobj = idx;
  zs.inuse--;
}

/** Copies `len` bytes from zspage offset `from` of `src` to offset `to` of `dst`. */
export function copyObjectBytes(
  b: Bytes,
  dst: Zspage,
  to: number,
  src: Zspage,
  from: number,
  len: number,
): void {
  const u8 = b.u8;
  while (len > 0) {
    const sa = objAddr(src, from);
    const da = objAddr(dst, to);
    const n = Math.min(
      len,
      PAGE_SIZE - (from & (PAGE_SIZE - 1)),
      PAGE_SIZE - (to & (PAGE_SIZE - 1)),
    );
    u8.copyWithin(da, sa, sa + n);
    from += n;
    to += n;
    len -= n;
  }
}

/** Copies `len` bytes at zspage offset `zoff` into `out` at `outOff`. */
export function readBytes(
  b: Bytes,
  zs: Zspage,
  zoff: number,
  out: Uint8Array,
  outOff: number,
  len: number,
): void {
  while (len > 0) {
    const a = objAddr(zs, zoff);
    const n = Math.min(len, PAGE_SIZE - (zoff & (PAGE_SIZE - 1)));
    out.set(b.u8.subarray(a, a + n), outOff);
    zoff += n;
    outOff += n;
    len -= n;
  }
}

/** Copies `data` into the zspage at offset `zoff`, across a page boundary if need be. */
export function writeBytes(b: Bytes, zs: Zspage, zoff: number, data: Uint8Array): void {
  let done = 0;
  let len = data.length;
  while (len > 0) {
    const a = objAddr(zs, zoff);
    const n = Math.min(len, PAGE_SIZE - (zoff & (PAGE_SIZE - 1)));
    b.u8.set(data.subarray(done, done + n), a);
    zoff += n;
    done += n;
    len -= n;
  }
}

/** FNV-1a over `len` bytes of an object at zspage offset `zoff`. */
export function checksum(b: Bytes, zs: Zspage, zoff: number, len: number): number {
  let h = 0x811c9dc5 | 0;
  const u8 = b.u8;
  while (len > 0) {
    const a = objAddr(zs, zoff);
    const n = Math.min(len, PAGE_SIZE - (zoff & (PAGE_SIZE - 1)));
    for (let i = a; i < a + n; i++) h = Math.imul(h ^ u8[i], 0x01000193);
    zoff += n;
    len -= n;
  }
  return h | 0;
}
