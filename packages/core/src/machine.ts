/**
 * The emulated machine: one DI child container holding its memory, scheduler, clock,
 * PRNG, counters and tracepoint bus, all built from `(config, seed, profile)`.
 * @module
 */

import { type DependencyContainer, container as rootContainer } from 'tsyringe';
import { freePages, putPage } from './buddy/free_page.js';
import { defaultMinFreeKbytes, initZones, setupWatermarks } from './buddy/init.js';
import { allocPages } from './buddy/page_alloc.js';
import { Clock } from './clock.js';
import { installDirectCompaction } from './compaction/entry.js';
import { installKcompactdWakeup } from './compaction/kcompactd.js';
import { hexPfn } from './debug/dump_page.js';
import {
  checkMemoryInvariants,
  type InvariantChecker,
  type InvariantReport,
} from './debug/invariants.js';
import { checkMachine, MmBug, MopsError, valueKind } from './errors.js';
import {
  checkOrder,
  MAX_MACHINE_BYTES,
  MIN_MACHINE_BYTES,
  PAGE_SHIFT,
  pageblock_nr_pages,
} from './memory/constants.js';
import { checkSpans, type ZoneLayoutName, type ZoneSpan, zoneLayout } from './memory/layout.js';
import { Memory } from './memory/mem.js';
import { pageMovableOps } from './migrate/movable.js';
import { DEFAULT_PROFILE, getProfile, type Profile, type ProfileName } from './profile.js';
import { haltOnBug } from './sched/deadlock.js';
import { Prng } from './sched/prng.js';
import { Scheduler } from './sched/scheduler.js';
import type { KernelGen } from './sched/types.js';
import { TraceBus } from './trace/bus.js';
import { taskComm } from './trace/filter_pred.js';

/** Options of {@link createMachine}. */
export interface MachineConfig {
  /** Memory size: bytes, or a string such as `'256M'`, `'1G'`, `'2MiB'`. 2 MiB..64 GiB, a multiple of 2 MiB. */
  memory: number | string;
  /** Protocol profile (default `'v6.3'`). */
  profile?: ProfileName;
  /** Seed of everything random in the machine (a 32-bit signed integer; default 1). */
  seed?: number;
  /** Keep real page contents (default: machines up to 1 GiB). */
  contents?: boolean;
  /** Zone layout name, or explicit spans (default `'x86_64'`). */
  zones?: ZoneLayoutName | readonly ZoneSpan[];
  /** vm.min_free_kbytes (default computed as the kernel does). */
  minFreeKbytes?: number;
}

/** The config after defaults and validation. */
export interface ResolvedMachineConfig {
  /** Bytes of memory. */
  readonly bytes: number;
  /** Page frames. */
  readonly nrPages: number;
  /** The profile. */
  readonly profile: Profile;
  /** The seed. */
  readonly seed: number;
  /** Whether pages carry contents. */
  readonly contents: boolean;
  /** Zone spans. */
  readonly spans: readonly ZoneSpan[];
}

/** DI token of the machine's {@link ResolvedMachineConfig}. */
export const MACHINE_CONFIG: unique symbol = Symbol('mops.MachineConfig');

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
};

/**
 * Parses `'256M'`, `'1GiB'`, `'2048K'` or a number of bytes.
 * @param v bytes, or a number with a unit K, M, G (KB/KiB… alike; powers of 1024)
 * @param field the option named in the error message
 * @returns the size in bytes (a number is returned as given, unchecked)
 * @throws {@link MopsError} `E_CONFIG` for a string that is not a size, or a value of another type
 */
export function parseSize(v: number | string, field = 'memory'): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string')
    throw new MopsError(
      'E_CONFIG',
      `${field}: a size is a number of bytes or a string such as '256M', got ${valueKind(v)}`,
      field,
    );
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined)
    throw new MopsError(
      'E_CONFIG',
      `${field}: cannot read ${valueKind(v)} as a size; write bytes or a number with K, M or G (e.g. 256M, 4G)`,
      field,
    );
  return Number(m[1]) * unit;
}

/** The fields of {@link MachineConfig}. */
const CONFIG_KEYS: readonly string[] = [
  'memory',
  'profile',
  'seed',
  'contents',
  'zones',
  'minFreeKbytes',
];

/**
 * Validates a config and fills in defaults, as {@link createMachine} does.
 * @param config the options
 * @returns the frozen config the machine is built from
 * @throws {@link MopsError} `E_CONFIG` naming the bad or unknown field and its allowed range
 */
export function resolveMachineConfig(config: MachineConfig): ResolvedMachineConfig {
  if (config === null || typeof config !== 'object')
    throw new MopsError('E_CONFIG', 'config must be an object with at least { memory }', 'config');
  // A misspelt option would silently leave its default.
  for (const key of Object.keys(config))
    if (!CONFIG_KEYS.includes(key))
      throw new MopsError(
        'E_CONFIG',
        `unknown option '${key}'; the options are ${CONFIG_KEYS.join(', ')}`,
        key,
      );
  const bytes = parseSize(config.memory);
  const range = `2 MiB to 64 GiB in multiples of 2 MiB (one pageblock)`;
  if (!Number.isFinite(bytes) || bytes <= 0)
    throw new MopsError(
      'E_CONFIG',
      `memory: ${config.memory} is not a size; use ${range}`,
      'memory',
    );
  if (bytes < MIN_MACHINE_BYTES || bytes > MAX_MACHINE_BYTES)
    throw new MopsError(
      'E_CONFIG',
      `memory: ${config.memory} is out of range; use ${range}`,
      'memory',
    );
  if (bytes % MIN_MACHINE_BYTES !== 0)
    throw new MopsError(
      'E_CONFIG',
      `memory: ${config.memory} is not a multiple of a pageblock (2 MiB); use ${range}`,
      'memory',
    );
  const seed = config.seed ?? 1;
  // The PRNG takes 32 bits: a larger seed would run as another one.
  if (!Number.isInteger(seed) || seed < -(2 ** 31) || seed > 2 ** 31 - 1)
    throw new MopsError(
      'E_CONFIG',
      `seed: ${valueKind(seed)} is not an integer from -2147483648 to 2147483647`,
      'seed',
    );
  const profile = getProfile(config.profile ?? DEFAULT_PROFILE);
  const nrPages = bytes >> PAGE_SHIFT === bytes / 4096 ? bytes / 4096 : Math.floor(bytes / 4096);
  const contents = config.contents ?? bytes <= 1024 ** 3;
  if (typeof contents !== 'boolean')
    throw new MopsError(
      'E_CONFIG',
      `contents: ${valueKind(contents)} is not true or false`,
      'contents',
    );
  const layout = config.zones ?? 'x86_64';
  let spans: readonly ZoneSpan[];
  if (typeof layout === 'string') spans = zoneLayout(layout, nrPages);
  else if (Array.isArray(layout)) {
    checkSpans(layout, nrPages);
    spans = layout.map((z) => Object.freeze({ ...z }));
  } else throw new MopsError('E_CONFIG', 'zones: give a layout name or an array of spans', 'zones');
  // Frozen: the resolved config never changes after the machine is built.
  return Object.freeze({ bytes, nrPages, profile, seed, contents, spans: Object.freeze(spans) });
}

/**
 * One emulated machine. Build it with {@link createMachine}; everything in it derives from
 * its config and seed, so the same config gives the same run.
 */
export class Machine {
  /** The machine's memory (pages, zones, counters). */
  readonly mem: Memory;
  /** The scheduler of its tasks. */
  readonly sched: Scheduler;
  /** The virtual clock. */
  readonly clock: Clock;
  /** The seeded PRNG for workloads and strategies. */
  readonly prng: Prng;
  /** The tracepoint bus. */
  readonly trace: TraceBus;
  /** The resolved config. */
  readonly config: ResolvedMachineConfig;
  /** The protocol profile. */
  readonly profile: Profile;
  private minFreeKb: number;
  /** Invariant checkers contributed by plugins, by name. */
  readonly invariantCheckers = new Map<string, InvariantChecker>();

  /**
   * Use {@link createMachine}, which validates the config and registers the machine's
   * services in its container.
   * @param config the validated config ({@link resolveMachineConfig})
   * @param minFreeKbytes vm.min_free_kbytes, or undefined to compute it as the kernel does
   */
  constructor(
    /**
     * The machine's own child of the tsyringe container: plugins register their services
     * here and users resolve them from it (`m.container.resolve(ZS_POOL)`).
     */
    readonly container: DependencyContainer,
    config: ResolvedMachineConfig,
    minFreeKbytes: number | undefined,
  ) {
    this.config = config;
    this.profile = config.profile;
    this.mem = new Memory(config.nrPages, config.contents, config.profile);
    this.trace = this.mem.trace;
    this.clock = new Clock();
    this.prng = new Prng(config.seed);
    this.sched = new Scheduler({
      seed: config.seed,
      onWarning: (kind, text) => this.mem.warn(kind, text),
      readLockRecursive: config.profile.lockdepReadLockRecursive,
      lockdepBracketedTitles: config.profile.lockdepBracketedTitles,
      mutexHandoff: config.profile.mutexHandoff,
      qrwlockWaitingAtOnce: config.profile.qrwlockWaitingAtOnce,
      mightSleepExpected: config.profile.mightSleepExpected,
      workqueueLeakRcu: config.profile.workqueueLeakRcu,
    });
    const sched = this.sched;
    this.mem.currentComm = () => taskComm((sched.kthread ?? sched.current)?.name ?? 'mops');
    initZones(this.mem, config.spans);
    this.minFreeKb = minFreeKbytes ?? defaultMinFreeKbytes(this.mem);
    setupWatermarks(this.mem, this.minFreeKb);
  }

  /**
   * vm.min_free_kbytes in force. Setting it is writing the sysctl: every zone's watermarks
   * and lowmem reserves are computed again (min_free_kbytes_sysctl_handler() →
   * setup_per_zone_wmarks()); a negative or non-integer value is a MopsError.
   * @returns the value, in kB
   */
  get minFreeKbytes(): number {
    return this.minFreeKb;
  }

  /** @param kbytes the new vm.min_free_kbytes, in kB */
  set minFreeKbytes(kbytes: number) {
    setupWatermarks(this.mem, kbytes);
    this.minFreeKb = kbytes;
  }

  /** Number of page frames. */
  get nrPages(): number {
    return this.config.nrPages;
  }

  /**
   * Runs `body` as a task (with any tasks already spawned) to completion; returns its result.
   * A kernel BUG raised on the way (an MmBug; a Deadlock or a Livelock excepted) halts the
   * machine, as those raised with a page dump already do. This is how code that may sleep
   * (`yield* lockPage(m, pfn)`, `yield* migratePages(m, ...)`, `yield* compactMemory(m)`)
   * gets run: `m.run(function* () { ... })`.
   * @param body a generator function: the task's code, given the scheduling points it
   *   yields
   * @returns what `body` returned
   * @throws {@link MopsError} `E_HALTED` when an earlier BUG halted the machine
   * @throws {@link MmBug} a kernel BUG on the way ({@link Deadlock} when every task is
   *   blocked, {@link Livelock} when the only task able to run spins at `cpu_relax` with
   *   nothing to end the spin), or whatever else `body` threw
   */
  run<T>(body: () => KernelGen<T>): T {
    this.mem.assertRunning();
    try {
      return this.sched.run(body);
    } catch (e) {
      haltOnBug(this.mem, e);
      throw e;
    }
  }

  /**
   * alloc_pages(gfp, order) with an owner name: the machine's shorthand for
   * {@link allocPages}, which also checks the order.
   * @param gfp the gfp mask ({@link GFP}, {@link __GFP} bits)
   * @param order log2 of the number of pages, 0..MAX_PAGE_ORDER
   * @param owner who owns the pages, as page dumps and invariant reports name it
   * @returns the first pfn, with refcount 1; -1 when the allocation failed
   * @throws {@link MopsError} `E_RANGE` for a bad order or gfp mask; `E_HALTED` on a halted
   *   machine
   */
  allocPages(gfp: number, order = 0, owner = 'kernel'): number {
    this.mem.assertRunning();
    checkOrder(order);
    return allocPages(this.mem, gfp, order, { owner: this.mem.owners.register(owner) });
  }

  /**
   * put_page(pfn): the machine's shorthand for `putPage(m.mem, pfn)`, also checking the pfn
   * and that the machine runs. Drops a reference; the last one frees the folio.
   * @param pfn any page of the folio
   * @throws {@link MopsError} `E_RANGE` for a pfn outside the machine; `E_HALTED` on a halted
   *   machine
   * @throws {@link MmBug} on a put with no reference left; the machine halts
   */
  putPage(pfn: number): void {
    this.mem.assertRunning();
    this.checkPfn(pfn);
    putPage(this.mem, pfn);
  }

  /**
   * __free_pages(pfn, order): the machine's shorthand for `freePages(m.mem, pfn, order)`,
   * also checking its arguments and that the machine runs.
   * @param pfn the first page of the block, as allocPages returned it
   * @param order the order it was allocated with
   * @throws {@link MopsError} `E_RANGE` for a pfn outside the machine or a bad order;
   *   `E_HALTED` on a halted machine
   */
  freePages(pfn: number, order = 0): void {
    this.mem.assertRunning();
    this.checkPfn(pfn);
    checkOrder(order);
    freePages(this.mem, pfn, order);
  }

  /**
   * Throws E_RANGE unless `pfn` is a page frame of this machine.
   * @param pfn the value to check
   * @throws {@link MopsError} `E_RANGE` for anything but an integer 0..nrPages-1
   */
  checkPfn(pfn: number): void {
    this.mem.checkPfn(pfn);
  }

  /**
   * Adds a plugin's checker to {@link checkInvariants}; a second use of a name replaces it.
   * @param name prefixes each violation the checker reports (e.g. `'zsmalloc'`)
   * @param check returns the violations found (empty when all is well)
   */
  registerInvariantChecker(name: string, check: InvariantChecker): void {
    this.invariantCheckers.set(name, check);
  }

  /** Pageblocks of the machine. */
  get nrPageblocks(): number {
    return Math.ceil(this.config.nrPages / pageblock_nr_pages);
  }
}

/**
 * Builds a machine: validates the config (a MopsError names any bad field and its allowed
 * range), creates its child container, lays out the zones and frees all memory to the
 * buddy allocator.
 * @param config the memory size and the optional profile, seed, contents, zones and
 *   min_free_kbytes
 * @param parent the container whose child the machine's is (default: tsyringe's root)
 * @returns the machine: a {@link Kctx} (`{ mem, sched }`) for the primitives that may sleep
 * @throws {@link MopsError} `E_CONFIG` naming the bad or unknown field and its allowed range
 */
export function createMachine(
  config: MachineConfig,
  parent: DependencyContainer = rootContainer,
): Machine {
  const resolved = resolveMachineConfig(config);
  const c = parent.createChildContainer();
  c.register(MACHINE_CONFIG, { useValue: resolved });
  const m = new Machine(c, resolved, config.minFreeKbytes);
  c.register(Machine, { useValue: m });
  c.register(Memory, { useValue: m.mem });
  c.register(Scheduler, { useValue: m.sched });
  c.register(Clock, { useValue: m.clock });
  c.register(TraceBus, { useValue: m.trace });
  installDirectCompaction(m);
  installKcompactdWakeup(m);
  return m;
}

/**
 * checkInvariants(machine): the memory invariants plus every registered plugin checker.
 * A checker that throws counts as a violation. It only reads: a halted machine can be
 * checked too. With no task live it also reports what only a finished run can show: an
 * isolated page on no list, a page left locked, a reference still held on a page the VM let
 * go of for good (migrated away, or put back after its owner released it).
 * @param m the machine (not `m.mem`)
 * @returns `ok`, and the violations found, each naming the pfn and the rule
 * @throws {@link MopsError} `E_USAGE` when `m` is not a machine
 */
export function checkInvariants(m: Machine): InvariantReport {
  checkMachine(m, 'checkInvariants');
  const quiescent = m.sched.liveTasks === 0;
  const violations = checkMemoryInvariants(
    m.mem,
    quiescent,
    (pfn) => pageMovableOps(m.mem, pfn) !== undefined,
  );
  // With no task left to drop them, references still held on migrated-away pages leaked.
  if (quiescent)
    for (const pfn of m.mem.migratedHeld)
      if (m.mem.pages.refcount[pfn] > 0)
        violations.push(
          `pfn ${hexPfn(pfn)}: migrated away or released by its owner, and the VM dropped its reference, but ${m.mem.pages.refcount[pfn]} reference(s) are still held and no task is left to drop them (a leaked reference, e.g. a migrate_page that did not put src)`,
        );
  for (const [name, check] of m.invariantCheckers) {
    try {
      for (const v of check()) violations.push(`${name}: ${v}`);
    } catch (e) {
      violations.push(`${name}: checker threw ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { ok: violations.length === 0, violations };
}

/**
 * Throws an MmBug listing the violations when {@link checkInvariants} fails.
 * @param m the machine
 * @throws {@link MmBug} `invariants violated (n)`, the violations as its dump
 */
export function assertInvariants(m: Machine): void {
  const r = checkInvariants(m);
  if (!r.ok)
    throw new MmBug(`invariants violated (${r.violations.length})`, r.violations.join('\n'));
}
