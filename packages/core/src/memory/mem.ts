/**
 * The memory of one machine: page array, node and zones, pageblock bits, owners, counters,
 * and the halt state raised by an MmBug. Everything below the scheduler works on this.
 * @module
 */

import { MmBug, MopsError, valueKind } from '../errors.js';
import { FLAGS_CHECK_AT_FREE, PG } from '../page/flags.js';
import type { Profile } from '../profile.js';
import { TraceBus } from '../trace/bus.js';
import { VmStat } from '../vmstat/vmstat.js';
import { DEFAULT_WATERMARK_BOOST_FACTOR, pageblock_order } from './constants.js';
import { MappingTable, OwnerTable, PageArrays } from './pages.js';
import { Node, PB_MIGRATETYPE_MASK, PB_SKIP, type Zone } from './zone.js';

/** A warning recorded by the VM (VM_WARN_ON_ONCE, bad page state, lockdep, …). */
export interface MmWarning {
  /** Kind, e.g. `'bad_page'`, `'lockdep'`, `'WARN_ON_ONCE'`, `'VM_WARN_ON_ONCE'`. */
  readonly kind: string;
  /** The full text, as the kernel would log it. */
  readonly text: string;
  /** The page involved, if any. */
  readonly pfn?: number;
}

/**
 * The line a warning is known by: the first of its text that is not blank and not a rule
 * of `=` or `-` (lockdep's reports open with a rule, then their title).
 * @param text the warning's text ({@link MmWarning.text})
 * @returns that line, or the first line when every line is blank or a rule
 */
export function warningHeadline(text: string): string {
  const lines = text.split('\n');
  return lines.find((l) => !/^\s*$|^[=-]+$/.test(l)) ?? lines[0];
}

/**
 * A direct compactor's capture_control as the buddy allocator sees it: a block freed by that
 * task which reaches the compaction's order is handed to it instead of the free lists.
 */
export interface FreeCapture {
  /**
   * compaction_capture(): whether to take the free block `pfn` of `order` in `zone`, whose
   * pageblock has migrate type `mt`; records it when it does.
   */
  offer(zone: Zone, pfn: number, order: number, mt: number): boolean;
}

/** Memory state shared by every layer of a machine. */
export class Memory {
  /** The `struct page` array. */
  readonly pages: PageArrays;
  /** Node 0. */
  readonly node: Node;
  /** Pageblock bits by `pfn >> pageblock_order` (migratetype + skip). */
  readonly pageblock: Uint8Array;
  /** Objects `mapping` points to. */
  readonly mappings = new MappingTable();
  /** Page owners. */
  readonly owners = new OwnerTable();
  /** vm events and node stats. */
  readonly vmstat = new VmStat();
  /** The tracepoint bus (emitting sites test `trace.enabled.<event>` first). */
  readonly trace = new TraceBus();
  /** Warnings recorded so far, oldest first. */
  readonly warnings: MmWarning[] = [];
  /**
   * current->comm, for the kernel's messages that name the process (bad_page()): the
   * running task's, or the kernel thread's its code runs as; `mops` outside any task. The
   * machine installs it.
   */
  currentComm: () => string = () => 'mops';
  /** Listeners told of each warning (the machine forwards them as events). */
  onWarning: ((w: MmWarning) => void) | undefined;
  /**
   * Told as the VM calls a driver's movable_operations: the callback
   * (`isolate_page`, `migrate_page`, `putback_page`) and its pages (`migrate_page`: dst,
   * src). The explorer's reports show these calls in their steps.
   */
  onDriverCall: ((callback: string, pfn: number, src?: number) => void) | undefined;
  /** Keys of VM_WARN_ON_ONCE sites that already fired. */
  private readonly warnedOnce = new Set<string>();
  /** The MmBug that halted the machine, if any. */
  halted: MmBug | undefined;
  /** Pages leaked by a bad-page report (never freed, as the kernel leaks them). */
  readonly leaked = new Set<number>();
  /**
   * Pages the VM let go of for good (migrated away, or put back after their owner released
   * them) that its last put did not free: someone else still held a reference. Each leaves
   * the set when it is freed; one still here when no task is live is a leaked reference
   * (see checkInvariants).
   */
  readonly migratedHeld = new Set<number>();
  /** Populated zones, lowest first (set with {@link setPopulatedZones}). */
  populatedZones: Zone[] = [];
  /**
   * page_zone() in one load, as the kernel reads the zone from `page->flags`: the index in
   * `populatedZones` of the zone of each run of 2^zoneShift pfns (a zone starts only at a
   * run boundary, so one run never straddles two zones).
   */
  private zoneIdx = new Uint8Array(0);
  private zoneShift = 0;
  /** Slow-path steps tried after the watermark attempts fail (direct compaction). */
  readonly slowpath: ((gfp: number, order: number, allocFlags: number) => number)[] = [];
  /**
   * Set by a slow-path step that ran in a task of its own (direct compaction's) and found
   * no page: fires a tracepoint as that task. The allocation's failure, traced after the
   * step, then shows under the task its compaction lines do, as the kernel traces an
   * allocation at the end of __alloc_pages(), in the allocating task. Cleared when the
   * slow path starts and when it is used.
   */
  allocTraceAs: ((fire: () => void) => void) | undefined = undefined;
  /**
   * The capture_control of each direct compaction under way (6.x): __free_one_page() offers
   * them a block it is about to merge further (see `FreeCapture`).
   */
  readonly captures: FreeCapture[] = [];
  /**
   * v4.8: the isolated pages compaction counted in nr_isolated_file (acct_isolated) and
   * migrate_pages or putback_movable_pages has not subtracted yet. Pages isolated by other
   * callers are not counted, as in the kernel, and so not subtracted either.
   */
  readonly countedIsolated = new Set<number>();
  /** Allocations that failed (normal under pressure; never fatal). */
  allocFailures = 0;
  /**
   * What other subsystems keep per machine (kcompactd and proactive compaction, the v6.17
   * movable_ops registry, the filler driver, plugins' pools and devices), by the key of the
   * module that owns it: see {@link memoryExt}. It lives here, reachable from the machine,
   * so that whatever records and restores a machine's state (the explorer's snapshots)
   * covers it too.
   */
  readonly ext = new Map<object, unknown>();
  /**
   * vm.watermark_boost_factor (in 1/10000 of the high watermark; 0 disables boosting).
   * 15000 by default; 0 in v4.8, which has no boosting. Set it with `setWatermarkBoostFactor`.
   */
  watermarkBoostFactor: number;
  /** vm.defrag_mode (v6.17; default off). Set it with `setDefragMode`. */
  defragMode = false;
  /**
   * pgdat->kswapd_highest_zoneidx: the highest zone index wakeup_kswapd() recorded (from
   * rmqueue() for a boosted zone, from the slow path's wake_all_kswapds()) since kswapd last
   * ran, or -1. The kswapd stand-in (`runKswapd`) takes it.
   */
  kswapdWakeZoneidx = -1;
  /**
   * pgdat->kswapd_order: the largest order wakeup_kswapd() recorded since kswapd last ran
   * (0: none). Recorded even when kswapd is not woken; the next pass that runs takes it.
   */
  kswapdOrder = 0;
  /**
   * kswapd was woken (wakeup_kswapd() found the node unbalanced, or a zone boosted) and has
   * not run yet: it is off its wait queue, so further wakeups only record their order and
   * zone. The kswapd stand-in (`runKswapd`) runs its pass and clears it.
   */
  kswapdWoken = false;
  /**
   * kswapd ran a pass (`runKswapd`, at once when woken) and has not gone to sleep yet:
   * kswapd_try_to_sleep(), with its reset of the skip hints, comes on kcompactd's clock
   * (`kswapdBalance`), as the calls to wakeup_kcompactd() it makes then.
   */
  kswapdToSleep = false;
  /**
   * The wakeup_kcompactd() calls made below the compaction layer, waiting for it
   * (`kswapdBalance`) to make them, oldest first, as flattened (order, highest zone index)
   * pairs: a kswapd pass that took back a boost asks for pageblock_order, a pass for an
   * order it could not find free asks for that order before it sleeps, and wakeup_kswapd()
   * asks for the order itself for a balanced node when the allocation cannot reclaim. A
   * pair already waiting is not added again (the second call could not wake kcompactd).
   */
  readonly kcompactdWakeups: number[] = [];
  /**
   * wakeup_kcompactd(), which the compaction layer installs: the allocator calls it at once
   * for a balanced node's request (without it the request joins {@link kcompactdWakeups}).
   */
  wakeupKcompactd: ((order: number, highestZoneidx: number) => void) | undefined = undefined;
  /**
   * The migrate types /proc/pagetypeinfo shows, when the machine was rebuilt from a real
   * machine's file: the column set of that kernel's build. Undefined for machines mops built
   * (then CMA shows only when the machine has CMA memory).
   */
  procMigratetypes: readonly number[] | undefined = undefined;

  constructor(
    /** Number of page frames (max pfn + 1). */
    readonly nrPages: number,
    withContents: boolean,
    /** The protocol profile. */
    readonly profile: Profile,
  ) {
    this.pages = new PageArrays(nrPages, withContents);
    this.node = new Node(0);
    this.pageblock = new Uint8Array(Math.ceil(nrPages / (1 << pageblock_order)));
    this.owners.register('kernel');
    let bad = FLAGS_CHECK_AT_FREE & (profile.slabFlagIsBad ? -1 : ~(1 << PG.slab));
    if (profile.freeFlagRules === 'v4.8') bad |= 1 << PG.swapcache;
    if (profile.freeFlagRules === 'v6.17') bad &= ~(1 << PG.mlocked);
    this.freeCheckMask = bad;
    // Flags that send a free down the slow path: the bad ones, and v6.17's PG_mlocked.
    this.freeSlowMask = bad | (profile.freeFlagRules === 'v6.17' ? 1 << PG.mlocked : 0);
    this.freeResetMappingBits = profile.freeResetsMapping === 'tag' ? 3 : 1;
    this.watermarkBoostFactor =
      profile.watermarkBoost === 'none' ? 0 : DEFAULT_WATERMARK_BOOST_FACTOR;
  }

  /**
   * PAGE_FLAGS_CHECK_AT_FREE for this profile (PG_slab counts only up to v6.3, PG_mlocked
   * only up to v6.3, PG_swapcache in v4.8).
   */
  readonly freeCheckMask: number;
  /** Flags that make free_pages_prepare take its slow path (see the constructor). */
  readonly freeSlowMask: number;
  /** The `mapping` tag bits that make free_pages_prepare reset it (see Profile.freeResetsMapping). */
  readonly freeResetMappingBits: number;

  /** The zone whose span holds `pfn` (page_zone()); `pfn` must be below `nrPages`. */
  zoneOf(pfn: number): Zone {
    return this.populatedZones[this.zoneIdx[pfn >>> this.zoneShift]];
  }

  /**
   * Sets the populated zones (lowest first) and the table behind {@link zoneOf}: a pfn
   * belongs to the highest zone starting at or below it (the lowest zone for pfns below
   * every zone).
   */
  setPopulatedZones(zones: Zone[]): void {
    this.populatedZones = zones;
    let shift = pageblock_order;
    for (const z of zones) while (shift > 0 && z.zoneStartPfn & ((1 << shift) - 1)) shift--;
    const idx = new Uint8Array(Math.ceil(this.nrPages / (1 << shift)));
    for (let i = 1; i < zones.length; i++) idx.fill(i, zones[i].zoneStartPfn >>> shift);
    this.zoneIdx = idx;
    this.zoneShift = shift;
  }

  /** Free base pages of all zones (`global_zone_page_state(NR_FREE_PAGES)`). */
  nrFreePages(): number {
    let n = 0;
    for (const z of this.populatedZones) n += z.nrFreePages;
    return n;
  }

  /** get_pageblock_migratetype(). */
  pageblockMigratetype(pfn: number): number {
    return this.pageblock[pfn >> pageblock_order] & PB_MIGRATETYPE_MASK;
  }

  /** set_pageblock_migratetype(). */
  setPageblockMigratetype(pfn: number, mt: number): void {
    const i = pfn >> pageblock_order;
    this.pageblock[i] = (this.pageblock[i] & ~PB_MIGRATETYPE_MASK) | mt;
  }

  /** get_pageblock_skip(). */
  pageblockSkip(pfn: number): boolean {
    return (this.pageblock[pfn >> pageblock_order] & PB_SKIP) !== 0;
  }

  /** set_pageblock_skip() / clear_pageblock_skip(). */
  setPageblockSkip(pfn: number, on: boolean): void {
    const i = pfn >> pageblock_order;
    this.pageblock[i] = on ? this.pageblock[i] | PB_SKIP : this.pageblock[i] & ~PB_SKIP;
  }

  /** Records a warning and tells the listener; a throwing listener is ignored. */
  warn(kind: string, text: string, pfn?: number): void {
    const w: MmWarning = pfn === undefined ? { kind, text } : { kind, text, pfn };
    this.warnings.push(w);
    try {
      this.onWarning?.(w);
    } catch {
      // A listener's failure must never break the VM.
    }
  }

  /**
   * WARN_ON_ONCE / VM_WARN_ON_ONCE: records the warning the first time `site` fires; returns
   * true then. Its kind is the macro the text names: `VM_WARN_ON_ONCE` for a `VM_WARN_…`
   * site (CONFIG_DEBUG_VM), `WARN_ON_ONCE` otherwise.
   */
  warnOnce(site: string, text: string, pfn?: number): boolean {
    if (this.warnedOnce.has(site)) return false;
    this.warnedOnce.add(site);
    this.warn(text.includes('VM_WARN') ? 'VM_WARN_ON_ONCE' : 'WARN_ON_ONCE', text, pfn);
    return true;
  }

  /**
   * Throws E_RANGE unless `pfn` is a page frame of this machine; `what` names the call in
   * the message.
   */
  checkPfn(pfn: number, what?: string): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrPages)
      throw new MopsError(
        'E_RANGE',
        `${what ? `${what}: ` : ''}pfn ${valueKind(pfn)} is outside this machine (0..${this.nrPages - 1})`,
        'pfn',
      );
  }

  /** Throws E_HALTED when an MmBug has halted the machine. */
  assertRunning(): void {
    if (this.halted)
      throw new MopsError(
        'E_HALTED',
        `the machine halted after a kernel BUG and accepts no more calls: ${this.halted.reason}`,
      );
  }
}

/**
 * The state a subsystem keeps for `mem`'s machine under `key` (an object private to the
 * module that owns it), made by `create` on first use. Keep per-machine state here rather
 * than in a module-level map: the explorer restores a reused machine from what it can reach
 * from the machine, and a module-level map would carry one run's state into the next.
 * @param mem the machine's memory
 * @param key an object private to the owning module (`const KEY = {}`)
 * @param create makes the state on first use
 * @returns the machine's state under `key`
 */
export function memoryExt<T>(mem: Memory, key: object, create: () => T): T {
  let v = mem.ext.get(key) as T | undefined;
  if (v === undefined) {
    v = create();
    mem.ext.set(key, v);
  }
  return v;
}
