/**
 * A small test driver for the protocol tests: it owns movable pages, publishes them the
 * way its machine's profile requires, and can be told to misbehave.
 */
import {
  __ClearPageMovable,
  __SetPageMovable,
  defineMovableOps,
  Errno,
  GFP,
  getPage,
  type Kctx,
  type KernelGen,
  lockPage,
  type Machine,
  type MovableOperations,
  type Mutex,
  makeAddressSpace,
  PAGE_SIZE,
  PG,
  PGTY,
  putPage,
  SetPageMovableOps,
  setMovableOps,
  trylockPage,
  unlockPage,
} from '../src/index.js';

/** Ways the test driver can break the protocol. */
export type Misbehaviour =
  | 'setIsolatedInIsolate'
  | 'touchSrcLru'
  | 'noDstSetup'
  | 'dstOfOther'
  | 'noClearSrc'
  | 'badRc'
  | 'throwInMigrate'
  | 'throwInIsolate'
  | 'clearIsolatedInPutback'
  | 'clearIsolatedInMigrate'
  | 'unlockInIsolate'
  | 'unlockInMigrate'
  | 'unlockInPutback'
  | 'keepSrcRef';

/**
 * A callback's form: a plain function, a generator function, or a plain function that
 * returns an iterator.
 */
export type CallbackForm = 'plain' | 'generator' | 'plain-returning-iterator';

/** The forms of the test driver's callbacks (plain functions by default). */
export interface TestDriverOptions {
  readonly isolate?: CallbackForm;
  readonly migrate?: CallbackForm;
  readonly putback?: CallbackForm;
}

/** One recorded callback. */
export interface Call {
  readonly cb: 'isolate' | 'migrate' | 'putback';
  readonly pfn: number;
  readonly dst?: number;
  readonly mode?: number;
  /** Whether the page (and dst) were locked when the driver was called. */
  readonly locked: boolean;
}

export class TestDriver {
  readonly k: Kctx;
  readonly owned = new Set<number>();
  isolated = 0;
  readonly calls: Call[] = [];
  /** What migrate_page returns (after the call is recorded); 0 migrates. */
  migrateRc: number | ((src: number, mode: number) => number) = 0;
  /** isolate_page refuses when true. */
  refuse = false;
  misbehave: Misbehaviour | undefined;
  readonly ops: MovableOperations;
  /**
   * A lock the generator callbacks ({@link TestDriverOptions}) take and drop before their
   * work, when set: a driver that must wait for one of its own locks.
   */
  gate: Mutex | undefined;
  private readonly space;

  constructor(
    readonly m: Machine,
    name = 'testdrv',
    opts: TestDriverOptions = {},
  ) {
    this.k = { mem: m.mem, sched: m.sched };
    const self = this;
    function* gated<T>(work: () => T): KernelGen<T> {
      const gate = self.gate;
      if (gate) {
        yield* gate.lock();
        gate.unlock();
      }
      return work();
    }
    this.ops = defineMovableOps(name, {
      isolatePage: inForm(opts.isolate, gated, (page: number, mode: number) =>
        self.isolate(page, mode),
      ),
      migratePage: inForm(opts.migrate, gated, (dst: number, src: number, mode: number) =>
        self.migrate(dst, src, mode),
      ),
      putbackPage: inForm(opts.putback, gated, (page: number) => self.putback(page)),
    });
    this.space = makeAddressSpace(name, this.ops);
    if (m.profile.movableMarker === 'page_type') setMovableOps(m.mem, this.ops, PGTY.offline);
  }

  private locked(pfn: number): boolean {
    return (this.m.mem.pages.flags[pfn] & (1 << PG.locked)) !== 0;
  }

  /** The movable_ops of another driver (v6.17: for PGTY_zsmalloc), made on first use. */
  private other: ReturnType<typeof defineMovableOps> | undefined;

  /** Publishes `pfn` as a movable page of another driver ('dstOfOther'). */
  private publishAsOther(pfn: number): void {
    const mem = this.m.mem;
    const marker = this.m.profile.movableMarker;
    if (this.other === undefined) {
      this.other = defineMovableOps('other', {
        isolatePage: () => false,
        migratePage: () => -11,
        putbackPage: () => {},
      });
      if (marker === 'page_type') setMovableOps(mem, this.other, PGTY.zsmalloc);
    }
    if (marker === 'page_type') {
      mem.pages.type[pfn] = PGTY.zsmalloc << 24;
      SetPageMovableOps(mem, pfn);
    } else
      __SetPageMovable(
        mem,
        pfn,
        marker === 'address_space' ? makeAddressSpace('other', this.other) : this.other,
      );
  }

  /** Publishes `pfn` (locked by the caller) as this driver's movable page. */
  publish(pfn: number): void {
    const mem = this.m.mem;
    if (this.m.profile.movableMarker === 'page_type') {
      mem.pages.type[pfn] = PGTY.offline << 24;
      SetPageMovableOps(mem, pfn);
    } else
      __SetPageMovable(
        mem,
        pfn,
        this.m.profile.movableMarker === 'address_space' ? this.space : this.ops,
      );
  }

  /** Allocates and publishes `n` pages; returns them. */
  alloc(n = 1): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const pfn = this.m.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'testdrv');
      if (pfn < 0) throw new Error('test driver: out of memory');
      trylockPage(this.m.mem, pfn);
      this.publish(pfn);
      unlockPage(this.k, pfn);
      const data = this.m.mem.pages.contents;
      if (data) data.fill(pfn & 0xff, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
      this.owned.add(pfn);
      out.push(pfn);
    }
    return out;
  }

  isolate(page: number, mode: number): boolean {
    this.calls.push({ cb: 'isolate', pfn: page, mode, locked: this.locked(page) });
    if (this.misbehave === 'throwInIsolate') throw new Error('driver bug in isolate');
    if (this.refuse || !this.owned.has(page)) return false;
    this.owned.delete(page);
    this.isolated++;
    if (this.misbehave === 'setIsolatedInIsolate') this.m.mem.pages.flags[page] |= 1 << PG.isolated;
    if (this.misbehave === 'unlockInIsolate') unlockPage(this.k, page);
    return true;
  }

  migrate(dst: number, src: number, mode: number): number {
    this.calls.push({
      cb: 'migrate',
      pfn: src,
      dst,
      mode,
      locked: this.locked(src) && this.locked(dst),
    });
    const rc = typeof this.migrateRc === 'function' ? this.migrateRc(src, mode) : this.migrateRc;
    if (this.misbehave === 'throwInMigrate') throw new Error('driver bug in migrate');
    if (this.misbehave === 'badRc') return 7;
    if (rc !== 0) return rc;
    const mem = this.m.mem;
    if (this.misbehave === 'touchSrcLru') mem.pages.lruNext[src] = 0;
    if (this.misbehave === 'clearIsolatedInMigrate') mem.pages.flags[src] &= ~(1 << PG.isolated);
    const data = mem.pages.contents;
    if (data) data.copyWithin(dst * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
    if (this.misbehave === 'dstOfOther') {
      this.publishAsOther(dst);
      getPage(mem, dst);
    } else if (this.misbehave !== 'noDstSetup') {
      this.publish(dst);
      getPage(mem, dst);
    }
    if (this.misbehave === 'unlockInMigrate') unlockPage(this.k, dst);
    this.owned.add(dst);
    this.isolated--;
    if (this.m.profile.driverClearsSrc && this.misbehave !== 'noClearSrc')
      __ClearPageMovable(mem, src);
    if (this.misbehave !== 'keepSrcRef') putPage(mem, src);
    return 0;
  }

  putback(page: number): void {
    this.calls.push({ cb: 'putback', pfn: page, locked: this.locked(page) });
    this.owned.add(page);
    this.isolated--;
    if (this.misbehave === 'clearIsolatedInPutback')
      this.m.mem.pages.flags[page] &= ~(1 << PG.isolated);
    if (this.misbehave === 'unlockInPutback') unlockPage(this.k, page);
  }

  /**
   * The owner releases an isolated page (v4.8–v6.3): under the page lock it clears the
   * movable pointer (keeping the tag), then drops its reference.
   */
  *release(pfn: number): KernelGen {
    const { mem, sched } = this.k;
    yield* lockPage(this.k, pfn);
    if (sched.preemptible) yield { op: '__ClearPageMovable', pfn };
    __ClearPageMovable(mem, pfn);
    unlockPage(this.k, pfn);
    this.isolated--;
    if (sched.preemptible) yield { op: 'put_page', pfn };
    putPage(mem, pfn);
  }

  /** The owner frees one of its (not isolated) pages: unpublish under the lock, then put. */
  *freeOwned(pfn: number): KernelGen {
    const { mem } = this.k;
    yield* lockPage(this.k, pfn);
    if (this.m.profile.ownerMayRelease) __ClearPageMovable(mem, pfn);
    unlockPage(this.k, pfn);
    this.owned.delete(pfn);
    putPage(mem, pfn);
  }

  /** Calls of one kind. */
  callsOf(cb: Call['cb']): Call[] {
    return this.calls.filter((c) => c.cb === cb);
  }

  /** The driver's own checker: every owned page is live, movable and not isolated. */
  check(): string[] {
    const out: string[] = [];
    const p = this.m.mem.pages;
    for (const pfn of this.owned) {
      if (p.refcount[pfn] < 1) out.push(`pfn ${pfn}: owned page has refcount ${p.refcount[pfn]}`);
      if (p.flags[pfn] & (1 << PG.isolated)) out.push(`pfn ${pfn}: owned page is isolated`);
    }
    return out;
  }
}

export { Errno };

/**
 * `work` as a callback of the given form; the generator forms first pass `gated` (which
 * takes and drops the driver's gate, when it has one).
 */
function inForm<A extends unknown[], T>(
  form: CallbackForm | undefined,
  gated: (work: () => T) => KernelGen<T>,
  work: (...args: A) => T,
): (...args: A) => T {
  if (form === 'generator')
    return function* (...args: A) {
      return yield* gated(() => work(...args));
    } as unknown as (...args: A) => T;
  if (form === 'plain-returning-iterator')
    return (...args: A) => gated(() => work(...args)) as unknown as T;
  return work;
}
