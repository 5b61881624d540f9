/**
 * The host side of a balloon: which guest pfns it holds, how long it takes to answer, when
 * it refuses, and a watch on the guest never touching a page it gave away.
 * @module
 */

import {
  bug,
  checkMachine,
  checkOptionsObject,
  type Kctx,
  type KernelGen,
  type Machine,
  type Memory,
  MopsError,
  mightSleep,
  PAGE_SIZE,
  PfnSet,
  type Prng,
  valueKind,
} from '@mops/core';

/** The byte an inflated page reads as while the host holds it. */
export const HOST_POISON = 0xb1;

/**
 * Options of a {@link Hypervisor}.
 *
 * virtio's host never refuses a page; refusal (`limit`, `refuseRate`, `refuse`) models
 * vmw_balloon's host. Setting any of them makes a host that may refuse
 * ({@link Hypervisor.mayRefuse}), and a {@link VirtioBalloon} then works in vmw_balloon's
 * order: its fill tells the host first, enqueues only the accepted pages and frees the
 * refused ones, and its 2026-design migratepage deflates the old page first and returns
 * -ENOENT when the new page is refused. Without them the driver keeps virtio's order.
 */
export interface HypervisorOptions {
  /**
   * Scheduling points each request waits for the host's acknowledgement (a slow host,
   * as vmw_balloon's hypercalls can be). Default 0.
   */
  latency?: number;
  /**
   * The host holds at most this many pages; it refuses inflation beyond (a host that may
   * refuse: vmw_balloon's order). Default: no limit.
   */
  limit?: number;
  /**
   * The probability (0..1, from the machine's seeded PRNG) that the host refuses a page;
   * above 0, a host that may refuse (vmw_balloon's order). Default 0.
   */
  refuseRate?: number;
  /**
   * A policy refusing given pfns (checked after `limit` and `refuseRate`); set, a host that
   * may refuse (vmw_balloon's order).
   */
  refuse?: (pfn: number) => boolean;
}

/** Counts kept by the host. */
export interface HypervisorStats {
  /** Inflate requests (one per tell_host on the inflate queue). */
  inflateRequests: number;
  /** Deflate requests. */
  deflateRequests: number;
  /** Pages inflated. */
  pagesInflated: number;
  /** Pages deflated. */
  pagesDeflated: number;
  /** Pages the host refused to inflate. */
  refused: number;
}

/**
 * A hypervisor model. It records the guest pfns it holds ("inflated"); while it holds one,
 * the page's contents belong to the host (they read as {@link HOST_POISON}) and a guest
 * write to them is a kernel BUG (`MmBug`), caught by {@link guestWrite} at once or by
 * {@link deflate} / {@link verify} from the contents. It can be slow (`latency`) and can
 * refuse pages (`limit`, `refuseRate`, `refuse`), as vmw_balloon's host may.
 * @see drivers/virtio/virtio_balloon.c tell_host()
 * @see drivers/misc/vmw_balloon.c vmballoon_lock()
 */
export class Hypervisor {
  /** The guest pfns the host holds. */
  private readonly held: PfnSet;
  /** Counts. */
  readonly stats: HypervisorStats = {
    inflateRequests: 0,
    deflateRequests: 0,
    pagesInflated: 0,
    pagesDeflated: 0,
    refused: 0,
  };
  /** Scheduling points per request. */
  latency: number;
  /** Most pages the host holds (Infinity: no limit). */
  limit: number;
  /** Probability of refusing a page. */
  refuseRate: number;
  /** Refusal policy. */
  refuse: ((pfn: number) => boolean) | undefined;
  /** The machine this host runs: the guest whose pages it holds. */
  readonly guest: Machine;
  private readonly mem: Memory;
  private readonly prng: Prng;
  /** The guest's page contents, if it has any. */
  private readonly contents: Uint8Array | undefined;

  /** @param machine the guest */
  constructor(machine: Machine, opts: HypervisorOptions = {}) {
    checkMachine(machine, 'Hypervisor');
    checkOptionsObject(opts, 'Hypervisor', ['latency', 'limit', 'refuseRate', 'refuse']);
    this.guest = machine;
    this.mem = machine.mem;
    this.prng = machine.prng;
    this.contents = machine.mem.pages.contents;
    this.held = new PfnSet(machine.mem.nrPages);
    this.latency = nonNegativeInt(opts.latency ?? 0, 'latency');
    this.limit = opts.limit === undefined ? Infinity : nonNegativeInt(opts.limit, 'limit');
    const rate = opts.refuseRate ?? 0;
    if (!(typeof rate === 'number' && rate >= 0 && rate <= 1))
      throw new MopsError(
        'E_RANGE',
        `refuseRate must be within 0..1, got ${valueKind(rate)}`,
        'refuseRate',
      );
    this.refuseRate = rate;
    if (opts.refuse !== undefined && typeof opts.refuse !== 'function')
      throw new MopsError('E_USAGE', 'refuse must be a function (pfn) => boolean', 'refuse');
    this.refuse = opts.refuse;
  }

  /**
   * Whether the host may refuse an inflation: a `limit`, a `refuseRate` above 0 or a
   * `refuse` policy is set (vmw_balloon's host; virtio's never refuses). Read when a fill
   * or a migration starts, it picks the driver's order (see {@link HypervisorOptions}).
   */
  get mayRefuse(): boolean {
    return this.limit !== Infinity || this.refuseRate > 0 || this.refuse !== undefined;
  }

  /** Whether the host holds `pfn` (never, for a value that is not an integer). */
  isInflated(pfn: number): boolean {
    return Number.isInteger(pfn) && this.held.has(pfn);
  }

  /** Number of guest pages the host holds. */
  get inflatedCount(): number {
    return this.held.size;
  }

  /** The pfns the host holds, ascending. */
  inflatedPfns(): number[] {
    return [...this.held];
  }

  /**
   * The host takes `pfns`; returns those it accepted (the rest were refused, unless
   * `refusable` is false: a request on a queue without refusals). Each accepted page now
   * reads as {@link HOST_POISON}. Inflating a pfn the host already holds, or a free page,
   * is a guest bug (MmBug). A pfn outside the guest (or not an integer) is a MopsError
   * (E_RANGE), checked before the host takes any page.
   */
  inflate(pfns: ArrayLike<number>, refusable = true): number[] {
    for (let i = 0; i < pfns.length; i++) this.checkPfn(pfns[i]);
    this.stats.inflateRequests++;
    const ok: number[] = [];
    for (let i = 0; i < pfns.length; i++) if (this.take(pfns[i], refusable)) ok.push(pfns[i]);
    return ok;
  }

  /**
   * The host gives `pfns` back. A page whose contents changed while the host held it means
   * the guest wrote to it: MmBug. Deflating a pfn the host does not hold is a guest bug
   * (MmBug). The page comes back zeroed. A pfn outside the guest (or not an integer) is a
   * MopsError (E_RANGE), checked before the host gives any page back.
   */
  deflate(pfns: ArrayLike<number>): void {
    for (let i = 0; i < pfns.length; i++) this.checkPfn(pfns[i]);
    this.stats.deflateRequests++;
    for (let i = 0; i < pfns.length; i++) this.give(pfns[i]);
  }

  /**
   * A one-page inflate request; whether the host accepted the page. A pfn outside the guest
   * (or not an integer) is a MopsError (E_RANGE) and changes nothing.
   */
  inflateOne(pfn: number, refusable = true): boolean {
    this.checkPfn(pfn);
    this.stats.inflateRequests++;
    return this.take(pfn, refusable);
  }

  /**
   * A one-page deflate request. A pfn outside the guest (or not an integer) is a MopsError
   * (E_RANGE) and changes nothing.
   */
  deflateOne(pfn: number): void {
    this.checkPfn(pfn);
    this.stats.deflateRequests++;
    this.give(pfn);
  }

  /** The host takes `pfn`, an integer its caller checked. */
  private take(pfn: number, refusable: boolean): boolean {
    // One test for the two ways an inflate of a guest pfn can be wrong (already held, a
    // free page); badInflate tells them apart.
    if (this.held.has(pfn) || !(this.mem.pages.refcount[pfn] > 0)) this.badInflate(pfn);
    if (refusable && this.refuses(pfn)) return this.refused();
    this.held.add(pfn);
    this.stats.pagesInflated++;
    if (this.contents) this.poison(pfn);
    return true;
  }

  private refused(): false {
    this.stats.refused++;
    return false;
  }

  /** An inflated page reads as {@link HOST_POISON}. */
  private poison(pfn: number): void {
    this.contents?.fill(HOST_POISON, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }

  private badInflate(pfn: number): never {
    const mem = this.mem;
    this.checkPfn(pfn);
    if (this.held.has(pfn)) bug(mem, 'hypervisor: inflate of a pfn the host already holds', pfn);
    bug(mem, 'hypervisor: the guest inflated a free page', pfn);
  }

  private give(pfn: number): void {
    if (!this.held.has(pfn)) this.badDeflate(pfn);
    if (this.contents) this.unpoison(pfn);
    this.held.delete(pfn);
    this.stats.pagesDeflated++;
  }

  /** A deflated page: checked untouched, then zeroed. */
  private unpoison(pfn: number): void {
    this.checkUntouched(pfn);
    this.contents?.fill(0, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }

  private badDeflate(pfn: number): never {
    this.checkPfn(pfn);
    bug(this.mem, 'hypervisor: deflate of a pfn the host does not hold', pfn);
  }

  /**
   * tell_host(vb, vq): kick the queue and sleep until the host acknowledges (after
   * `latency` scheduling points). The host reads the buffer `pfns` (a view of the driver's
   * `vb->pfns`) when it processes the request, so a driver that changes the buffer while
   * waiting tells the host something else. Returns the pfns the host accepted (all of
   * them for a deflate, and for an inflate that is not `refusable`). May sleep: never call
   * it in atomic context.
   * @see drivers/virtio/virtio_balloon.c tell_host()
   */
  *tellHost(
    k: Kctx,
    op: 'inflate' | 'deflate',
    pfns: ArrayLike<number>,
    refusable = true,
  ): KernelGen<number[]> {
    const sched = k.sched;
    mightSleep(sched, 'tell_host');
    if (sched.preemptible) {
      yield { op: 'virtqueue_kick', note: op };
      for (let i = 0; i < this.latency; i++) yield { op: 'wait_event(vb->acked)', note: op };
    }
    if (op === 'inflate') return this.inflate(pfns, refusable);
    this.deflate(pfns);
    return Array.from(pfns);
  }

  /**
   * A guest write of `bytes` at `offset` into page `pfn`. While the host holds the page
   * this is a kernel BUG (MmBug); otherwise the bytes are written (machines with contents).
   */
  guestWrite(pfn: number, offset = 0, bytes: ArrayLike<number> = [0]): void {
    this.checkPfn(pfn);
    if (!Number.isInteger(offset) || offset < 0 || offset + bytes.length > PAGE_SIZE)
      throw new MopsError(
        'E_RANGE',
        `offset ${offset} (+${bytes.length}) is outside a page`,
        'offset',
      );
    if (this.held.has(pfn)) bug(this.mem, 'hypervisor: guest write to an inflated page', pfn);
    this.mem.pages.contents?.set(bytes, pfn * PAGE_SIZE + offset);
  }

  /**
   * Checks every page the host holds: still allocated in the guest (a page freed while
   * inflated is a lost page) and, with `contents`, untouched (MmBug otherwise). Returns the
   * problems that are not BUGs.
   */
  verify(contents = true): string[] {
    const out: string[] = [];
    for (const pfn of this.inflatedPfns()) {
      if (this.mem.pages.refcount[pfn] === 0)
        out.push(`pfn 0x${pfn.toString(16)} is inflated at the host but free in the guest`);
      if (contents) this.checkUntouched(pfn);
    }
    return out;
  }

  private checkUntouched(pfn: number): void {
    const data = this.mem.pages.contents;
    if (!data) return;
    const end = (pfn + 1) * PAGE_SIZE;
    for (let i = pfn * PAGE_SIZE; i < end; i++)
      if (data[i] !== HOST_POISON)
        bug(
          this.mem,
          `hypervisor: the guest wrote to an inflated page (offset ${i - pfn * PAGE_SIZE})`,
          pfn,
        );
  }

  private refuses(pfn: number): boolean {
    if (this.inflatedCount >= this.limit) return true;
    if (this.refuseRate > 0 && this.prng.float() < this.refuseRate) return true;
    return this.refuse?.(pfn) === true;
  }

  /** E_RANGE unless `pfn` is an integer pfn of the guest (a PfnSet reads "3" as 3). */
  private checkPfn(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.mem.nrPages) outsideGuest(this.mem, pfn);
  }
}

function outsideGuest(mem: Memory, pfn: number): never {
  throw new MopsError(
    'E_RANGE',
    `pfn ${valueKind(pfn)} is outside the guest (0..${mem.nrPages - 1})`,
    'pfn',
  );
}

function nonNegativeInt(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0)
    throw new MopsError(
      'E_RANGE',
      `${field} must be a non-negative integer, got ${valueKind(v)}`,
      field,
    );
  return v;
}
