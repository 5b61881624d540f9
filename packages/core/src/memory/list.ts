/**
 * Doubly linked lists threaded through pages' `lru` fields (include/linux/list.h).
 *
 * Links are stored in two Int32Arrays indexed by pfn. A link value encodes its target:
 * `pfn + 1` for a page, `-(head + 1)` for a list head, 0 for "not linked". List heads live
 * in a separate growable pool, so lists can be created at any time (free lists, migration
 * lists, a driver's page list) and a page can be unlinked without knowing its list, as
 * list_del() does.
 * @module
 */

/** A list head id, from {@link LruLists.newList}. */
export type ListId = number;

/** `next` and `prev` of `n` list heads, in one buffer (a snapshot of them is one copy). */
function heads(n: number): [Int32Array, Int32Array] {
  const buf = new ArrayBuffer(n * 8);
  return [new Int32Array(buf, 0, n), new Int32Array(buf, n * 4, n)];
}

/** The lists of one machine. */
export class LruLists {
  private headNext: Int32Array;
  private headPrev: Int32Array;
  private nrHeads = 0;
  private freeHeads: number[] = [];

  constructor(
    /** `lru.next` of every page. */
    readonly next: Int32Array,
    /** `lru.prev` of every page. */
    readonly prev: Int32Array,
  ) {
    [this.headNext, this.headPrev] = heads(64);
  }

  /** Creates an empty list (INIT_LIST_HEAD). */
  newList(): ListId {
    let h = this.freeHeads.pop();
    if (h === undefined) {
      h = this.nrHeads++;
      if (h >= this.headNext.length) {
        const [hn, hp] = heads(this.headNext.length * 2);
        hn.set(this.headNext);
        hp.set(this.headPrev);
        this.headNext = hn;
        this.headPrev = hp;
      }
    }
    const self = -(h + 1);
    this.headNext[h] = self;
    this.headPrev[h] = self;
    return h;
  }

  /**
   * Whether `h` is a list of these lists: a head {@link newList} gave out and
   * {@link freeList} has not taken back.
   */
  isList(h: unknown): h is ListId {
    return (
      typeof h === 'number' &&
      Number.isInteger(h) &&
      h >= 0 &&
      h < this.nrHeads &&
      !this.freeHeads.includes(h)
    );
  }

  /** Returns a list head to the pool; the list must be empty. */
  freeList(h: ListId): void {
    this.freeHeads.push(h);
  }

  private setNext(node: number, v: number): void {
    if (node > 0) this.next[node - 1] = v;
    else this.headNext[-node - 1] = v;
  }

  private setPrev(node: number, v: number): void {
    if (node > 0) this.prev[node - 1] = v;
    else this.headPrev[-node - 1] = v;
  }

  /** list_add: insert `pfn` right after the head. */
  addHead(h: ListId, pfn: number): void {
    const headNext = this.headNext;
    const first = headNext[h];
    const prev = this.prev;
    this.next[pfn] = first;
    prev[pfn] = -(h + 1);
    if (first > 0) prev[first - 1] = pfn + 1;
    else this.headPrev[-first - 1] = pfn + 1;
    headNext[h] = pfn + 1;
  }

  /** list_add_tail: insert `pfn` before the head (at the end). */
  addTail(h: ListId, pfn: number): void {
    const headPrev = this.headPrev;
    const last = headPrev[h];
    const next = this.next;
    next[pfn] = -(h + 1);
    this.prev[pfn] = last;
    if (last > 0) next[last - 1] = pfn + 1;
    else this.headNext[-last - 1] = pfn + 1;
    headPrev[h] = pfn + 1;
  }

  /** list_del: unlink `pfn` from whatever list holds it. */
  del(pfn: number): void {
    const next = this.next;
    const prev = this.prev;
    const n = next[pfn];
    const p = prev[pfn];
    if (p > 0) next[p - 1] = n;
    else this.headNext[-p - 1] = n;
    if (n > 0) prev[n - 1] = p;
    else this.headPrev[-n - 1] = p;
    next[pfn] = 0;
    prev[pfn] = 0;
  }

  /** Whether `pfn` is linked into some list. */
  isLinked(pfn: number): boolean {
    return this.next[pfn] !== 0;
  }

  /** list_empty. */
  isEmpty(h: ListId): boolean {
    return this.headNext[h] === -(h + 1);
  }

  /** First page of the list, or -1 when empty. */
  first(h: ListId): number {
    const v = this.headNext[h];
    return v > 0 ? v - 1 : -1;
  }

  /** Last page of the list, or -1 when empty. */
  last(h: ListId): number {
    const v = this.headPrev[h];
    return v > 0 ? v - 1 : -1;
  }

  /** The page after `pfn` on its list, or -1 at the end. */
  nextOf(pfn: number): number {
    const v = this.next[pfn];
    return v > 0 ? v - 1 : -1;
  }

  /** The page before `pfn` on its list, or -1 at the start. */
  prevOf(pfn: number): number {
    const v = this.prev[pfn];
    return v > 0 ? v - 1 : -1;
  }

  /**
   * Rotates list `h` so that `pfn` (on it) comes first; the pages that were before it go to
   * the end, in order (compaction's move_freelist_head: list_cut_before + list_splice_tail).
   */
  rotateToFront(h: ListId, pfn: number): void {
    if (this.headNext[h] === pfn + 1) return;
    const self = -(h + 1);
    // Take the head out of the ring and put it back just before `pfn`.
    const first = this.headNext[h];
    const last = this.headPrev[h];
    this.setNext(last, first);
    this.setPrev(first, last);
    const before = this.prev[pfn];
    this.setNext(before, self);
    this.headPrev[h] = before;
    this.headNext[h] = pfn + 1;
    this.prev[pfn] = self;
  }

  /**
   * Rotates list `h` so that `pfn` (on it) comes last; the pages up to it go to the end, in
   * order (compaction's move_freelist_tail: list_cut_position + list_splice_tail).
   */
  rotateToBack(h: ListId, pfn: number): void {
    if (this.headPrev[h] === pfn + 1) return;
    this.rotateToFront(h, this.next[pfn] - 1);
  }

  /** Pages of the list in order (cold paths: checkers, views, tests). */
  toArray(h: ListId): number[] {
    const out: number[] = [];
    for (let p = this.first(h); p !== -1; p = this.nextOf(p)) out.push(p);
    return out;
  }

  /** Number of entries (walks the list). */
  count(h: ListId): number {
    let n = 0;
    for (let p = this.first(h); p !== -1; p = this.nextOf(p)) n++;
    return n;
  }

  /** list_move_tail: unlink `pfn` and append it to `h`. */
  moveTail(h: ListId, pfn: number): void {
    this.del(pfn);
    this.addTail(h, pfn);
  }

  /** The raw link before `pfn` (a page or a list head), for {@link insertAfterLink}. */
  prevLink(pfn: number): number {
    return this.prev[pfn];
  }

  /** list_add(entry, prev): insert `pfn` after the node a {@link prevLink} value names. */
  insertAfterLink(link: number, pfn: number): void {
    const after = link > 0 ? this.next[link - 1] : this.headNext[-link - 1];
    const node = pfn + 1;
    this.next[pfn] = after;
    this.prev[pfn] = link;
    this.setPrev(after, node);
    this.setNext(link, node);
  }

  /** list_splice_init: insert all of `from` at the front of `to`, leaving `from` empty. */
  spliceHead(from: ListId, to: ListId): void {
    const self = -(from + 1);
    const first = this.headNext[from];
    if (first === self) return;
    const last = this.headPrev[from];
    const after = this.headNext[to];
    this.prev[first - 1] = -(to + 1);
    this.headNext[to] = first;
    this.next[last - 1] = after;
    this.setPrev(after, last);
    this.headNext[from] = self;
    this.headPrev[from] = self;
  }

  /** list_splice_tail_init: append all of `from` to `to`, leaving `from` empty. */
  spliceTail(from: ListId, to: ListId): void {
    const self = -(from + 1);
    const first = this.headNext[from];
    if (first === self) return;
    const last = this.headPrev[from];
    const before = this.headPrev[to];
    this.next[last - 1] = -(to + 1);
    this.headPrev[to] = last;
    this.prev[first - 1] = before;
    this.setNext(before, first);
    this.headNext[from] = self;
    this.headPrev[from] = self;
  }

  /**
   * list_cut_before + list_splice_tail: move the first `n` pages of `from` (all of them if
   * it holds fewer) to the end of `to`, in order.
   */
  moveFirstN(from: ListId, to: ListId, n: number): void {
    let p = this.first(from);
    for (let i = 0; i < n && p !== -1; i++) p = this.nextOf(p);
    if (p === -1) {
      this.spliceTail(from, to);
      return;
    }
    for (let q = this.first(from); q !== p; q = this.first(from)) this.moveTail(to, q);
  }
}
