/**
 * Page metadata as struct-of-arrays: one typed array per `struct page`
 * field, indexed by pfn. Eight 32-bit words per page: 32 bytes, against the kernel's 64.
 * @module
 */

import { MopsError } from '../errors.js';
import { OWNER_SHIFT } from '../page/flags.js';
import { PAGE_SHIFT, PAGE_SIZE } from './constants.js';
import { LruLists } from './list.js';

/**
 * The message of the `E_STATE` error a page-contents access raises on a machine built
 * without them; callers that explain it (the CLI, the conformance suite) recognise it.
 */
export const NO_PAGE_CONTENTS = 'this machine was built without page contents';

/** Largest machine that may carry page contents (one ArrayBuffer). */
export const MAX_CONTENT_BYTES = 4 * 1024 ** 3;

/**
 * Bytes between two fields of the metadata block: nine cache lines. Machines have a power of
 * two of pages, so fields laid end to end would start a multiple of 4 KiB apart and one
 * page's eight fields would all fall in the same set of an 8-way L1 cache, evicting each
 * other (and the fields of the other page of a migration) at every access. Offsetting field
 * i by 9i cache lines gives each field a set of its own, well apart from the next. A block
 * that fits in an L1 cache (up to 1024 pages) needs no gaps.
 */
const FIELD_GAP = 64 * 9;

/**
 * The `struct page` array of a machine.
 *
 * - `flags`: page flags (bits 0..21, see `PG`) and the owner id in the top byte;
 * - `refcount`: `_refcount`;
 * - `type`: the `_mapcount` / `page_type` word: -1 = no type and unmapped, a top byte of
 *   0xf0..0xfe = a page type (`PGTY`), otherwise a mapcount biased by -1;
 * - `mapping`: a handle from {@link MappingTable} shifted left by 2, plus the tag bits;
 * - `priv`: `private` (the buddy order of a free block's first page);
 * - `lruNext` / `lruPrev`: `lru` links (see {@link LruLists});
 * - `compound`: for a head page its order, for a tail page `-(pfn - head)`, else 0.
 */
export class PageArrays {
  readonly flags: Int32Array;
  readonly refcount: Int32Array;
  readonly type: Int32Array;
  readonly mapping: Int32Array;
  readonly priv: Int32Array;
  readonly lruNext: Int32Array;
  readonly lruPrev: Int32Array;
  readonly compound: Int32Array;
  /**
   * The whole metadata block: the eight fields and the gaps between them (a snapshot of the
   * metadata is one copy of it).
   */
  readonly block: Uint8Array;
  /** Page contents, `PAGE_SIZE` bytes per pfn, when the machine has contents. */
  readonly contents: Uint8Array | undefined;
  /** The lists threaded through `lru`. */
  readonly lists: LruLists;

  constructor(
    /** Number of page frames. */
    readonly nr: number,
    withContents: boolean,
  ) {
    // One buffer for the eight fields: a machine's metadata is one block of memory, and a
    // snapshot of it one copy.
    const stride = nr * 4 + (nr > 1024 ? FIELD_GAP : 0);
    const buf = new ArrayBuffer(stride * 8);
    this.block = new Uint8Array(buf);
    const field = (i: number): Int32Array => new Int32Array(buf, i * stride, nr);
    this.flags = field(0);
    this.refcount = field(1);
    this.type = field(2).fill(-1);
    this.mapping = field(3);
    this.priv = field(4);
    this.lruNext = field(5);
    this.lruPrev = field(6);
    this.compound = field(7);
    if (withContents) {
      const bytes = nr * PAGE_SIZE;
      if (bytes > MAX_CONTENT_BYTES)
        throw new MopsError(
          'E_CONFIG',
          `contents: a machine with page contents may hold at most ${MAX_CONTENT_BYTES / 1024 ** 3} GiB; ` +
            `use contents: false for ${bytes / 1024 ** 3} GiB`,
          'contents',
        );
      this.contents = new Uint8Array(bytes);
    } else this.contents = undefined;
    this.lists = new LruLists(this.lruNext, this.lruPrev);
  }

  /**
   * Bytes of metadata held per page: the eight fields (contents excluded, and the gaps of
   * {@link block}, a few hundred bytes per machine, are not per page).
   */
  metadataBytesPerPage(): number {
    const arrays = [
      this.flags,
      this.refcount,
      this.type,
      this.mapping,
      this.priv,
      this.lruNext,
      this.lruPrev,
      this.compound,
    ];
    let bytes = 0;
    for (const a of arrays) bytes += a.byteLength;
    return bytes / this.nr;
  }

  /** The 4 KiB contents of `pfn` (a view; throws when the machine has no contents). */
  pageData(pfn: number): Uint8Array {
    if (!this.contents) throw new MopsError('E_STATE', NO_PAGE_CONTENTS, 'contents');
    const off = pfn << PAGE_SHIFT;
    return this.contents.subarray(off, off + PAGE_SIZE);
  }

  /** Owner id stored in the flags word's top byte (0 = none). */
  ownerOf(pfn: number): number {
    return this.flags[pfn] >>> OWNER_SHIFT;
  }

  /** Sets the owner id of `pfn`. */
  setOwner(pfn: number, owner: number): void {
    this.flags[pfn] = (this.flags[pfn] & ((1 << OWNER_SHIFT) - 1)) | (owner << OWNER_SHIFT);
  }
}

/**
 * Objects that `page->mapping` points to (an address_space, a movable_operations table).
 * Pages store a small integer handle; handle 0 is NULL.
 */
export class MappingTable {
  private readonly objects: unknown[] = [undefined];
  private readonly ids = new Map<unknown, number>();

  private lastObj: object | undefined;
  private lastId = 0;

  /** The handle of `obj`, registering it on first use. */
  handleOf(obj: object): number {
    if (obj === this.lastObj) return this.lastId;
    let id = this.ids.get(obj);
    if (id === undefined) {
      id = this.objects.length;
      this.objects.push(obj);
      this.ids.set(obj, id);
    }
    this.lastObj = obj;
    this.lastId = id;
    return id;
  }

  /** The object behind a handle (undefined for 0). */
  get<T>(handle: number): T | undefined {
    return this.objects[handle] as T | undefined;
  }

  private readonly aux: unknown[] = [];

  /** Data a higher layer attached to a handle (the validated callbacks of an ops object). */
  getAux<T>(handle: number): T | undefined {
    return this.aux[handle] as T | undefined;
  }

  /** Attaches data to a handle. */
  setAux(handle: number, value: unknown): void {
    this.aux[handle] = value;
  }
}

/** Registered page owners (the flags word's top byte). */
export class OwnerTable {
  private readonly names: string[] = ['(none)'];

  /** Registers an owner name and returns its id (1..255); the same name gets the same id. */
  register(name: string): number {
    const i = this.names.indexOf(name);
    if (i > 0) return i;
    if (this.names.length > 255)
      throw new MopsError('E_CONFIG', 'at most 255 page owners can be registered', 'owner');
    this.names.push(name);
    return this.names.length - 1;
  }

  /** The name of an owner id. */
  name(id: number): string {
    return this.names[id] ?? `owner#${id}`;
  }
}
