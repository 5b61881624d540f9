/**
 * A set of pfns backed by one byte per page frame: O(1) without hashing, for drivers that
 * track millions of pages. Iterates in ascending pfn order.
 * @module
 */

/** A set of page frame numbers of one machine. */
export class PfnSet implements ReadonlySet<number> {
  private readonly bits: Uint8Array;
  private count = 0;

  constructor(
    /** Number of page frames of the machine. */
    readonly nr: number,
  ) {
    this.bits = new Uint8Array(nr);
  }

  /** Number of pfns in the set. */
  get size(): number {
    return this.count;
  }

  /** Whether `pfn` is in the set. */
  has(pfn: number): boolean {
    return this.bits[pfn] === 1;
  }

  /** Adds `pfn`. */
  add(pfn: number): this {
    if (this.bits[pfn] !== 1) {
      this.bits[pfn] = 1;
      this.count++;
    }
    return this;
  }

  /** Removes `pfn`; true if it was there. */
  delete(pfn: number): boolean {
    if (this.bits[pfn] !== 1) return false;
    this.bits[pfn] = 0;
    this.count--;
    return true;
  }

  /** The pfns in ascending order. */
  *values(): SetIterator<number> {
    let left = this.count;
    for (let p = 0; left > 0 && p < this.nr; p++)
      if (this.bits[p] === 1) {
        left--;
        yield p;
      }
  }

  /** Same as {@link values}. */
  keys(): SetIterator<number> {
    return this.values();
  }

  /** Pairs `[pfn, pfn]`, as Set.entries(). */
  *entries(): SetIterator<[number, number]> {
    for (const p of this.values()) yield [p, p];
  }

  /** Calls `fn` for each pfn in ascending order. */
  forEach(fn: (value: number, value2: number, set: ReadonlySet<number>) => void): void {
    for (const p of this.values()) fn(p, p, this);
  }

  /** Iterates the pfns in ascending order. */
  [Symbol.iterator](): SetIterator<number> {
    return this.values();
  }
}
