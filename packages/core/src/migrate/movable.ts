/**
 * The owner side of the protocol and the movability predicates (spec §1.2, §1.5, §2.1):
 * defining movable_operations, publishing a page as movable in each era, releasing it,
 * and the v6.17 per-page-type registry.
 * @module
 */

import { bug } from '../debug/dump_page.js';
import { Errno, MopsError, valueKind } from '../errors.js';
import { type Memory, memoryExt } from '../memory/mem.js';
import { LOCKED, PAGE_MAPPING_FLAGS, PAGE_MAPPING_MOVABLE, PG, PGTY } from '../page/flags.js';
import type { AddressSpace, MaybeGen, MovableOperations } from './types.js';

/** A validated set of callbacks, with how each is to be called. */
export interface DefinedOps {
  /** The name given at definition (the plugin's, for messages). */
  readonly name: string;
  /** The callbacks. */
  readonly ops: MovableOperations;
  /** Whether isolatePage is a generator function. */
  readonly isolateGen: boolean;
  /** Whether migratePage is a generator function. */
  readonly migrateGen: boolean;
  /** Whether putbackPage is a generator function. */
  readonly putbackGen: boolean;
  /** The ops' {@link MIGRATE_PAGE_ALONE} entry, for a generator migratePage. */
  readonly migrateAlone: MigratePageAlone | undefined;
}

/** The form of a {@link MIGRATE_PAGE_ALONE} entry: migratePage's parameters and results. */
export type MigratePageAlone = (dst: number, src: number, mode: number) => MaybeGen<number>;

/**
 * Key of an optional entry a driver may add to movable_operations whose migratePage is a
 * generator function: a plain function the VM calls instead when the migrating task runs
 * alone. It must do what the generator's first step would, then return the result, or an
 * iterator the VM runs exactly as it runs the generator (its points go to the scheduler).
 */
export const MIGRATE_PAGE_ALONE: unique symbol = Symbol('migratePageAlone');

const defined = new WeakMap<object, DefinedOps>();
/** The `Memory.ext` key of the v6.17 registry: page type → ops (set_movable_ops). */
const REGISTRY = {};

const isGenFn = (f: unknown): boolean =>
  typeof f === 'function' && f.constructor?.name === 'GeneratorFunction';

const CALLBACKS: readonly [keyof MovableOperations, number][] = [
  ['isolatePage', 2],
  ['migratePage', 3],
  ['putbackPage', 1],
];

/**
 * Validates a driver's movable_operations and makes them usable with `__SetPageMovable`,
 * an address_space or `setMovableOps`. Each callback must be a function (plain or
 * generator) taking at most the kernel's parameters. Call it once per ops object, before the
 * first use; the same object stays usable on any number of machines.
 * @param name the driver's name, used in messages and reports (e.g. `'zsmalloc'`)
 * @param ops the driver's isolatePage, migratePage and putbackPage (and optionally a
 *   {@link MIGRATE_PAGE_ALONE} entry)
 * @returns `ops` itself, now defined
 * @throws {@link MopsError} `E_PLUGIN` naming the driver and the field: a callback missing,
 *   not a function, async, a class, or declaring more parameters than the kernel passes
 */
export function defineMovableOps(name: string, ops: MovableOperations): MovableOperations {
  if (ops === null || typeof ops !== 'object')
    throw new MopsError('E_PLUGIN', `${name}: movable_operations must be an object`, 'ops');
  for (const [field, arity] of CALLBACKS) {
    const f = (ops as unknown as Record<string, unknown>)[field];
    if (f === undefined)
      throw new MopsError(
        'E_PLUGIN',
        `${name}: movable_operations has no ${field} callback`,
        field,
      );
    if (typeof f !== 'function')
      throw new MopsError(
        'E_PLUGIN',
        `${name}: ${field} must be a function, got ${typeof f}`,
        field,
      );
    if (f.length > arity)
      throw new MopsError(
        'E_PLUGIN',
        `${name}: ${field} takes ${f.length} parameters; the kernel passes ${arity}`,
        field,
      );
    const kind = callbackKind(f);
    if (kind !== undefined)
      throw new MopsError(
        'E_PLUGIN',
        `${name}: ${field} is ${kind}; a callback runs to its end in the VM's call: give a plain function or a generator function`,
        field,
      );
  }
  defined.set(ops, {
    name,
    ops,
    isolateGen: isGenFn(ops.isolatePage),
    migrateGen: isGenFn(ops.migratePage),
    putbackGen: isGenFn(ops.putbackPage),
    migrateAlone: aloneEntry(name, ops),
  });
  return ops;
}

/** What makes `f` unusable as a callback (async, or a class), or undefined. */
function callbackKind(f: Function): string | undefined {
  const kind = f.constructor?.name;
  if (kind === 'AsyncFunction') return 'an async function';
  if (kind === 'AsyncGeneratorFunction') return 'an async generator function';
  if (/^class\b/.test(Function.prototype.toString.call(f))) return 'a class';
  return undefined;
}

function aloneEntry(name: string, ops: MovableOperations): MigratePageAlone | undefined {
  const f = (ops as { [MIGRATE_PAGE_ALONE]?: unknown })[MIGRATE_PAGE_ALONE];
  if (f === undefined) return undefined;
  if (typeof f !== 'function' || isGenFn(f) || !isGenFn(ops.migratePage))
    throw new MopsError(
      'E_PLUGIN',
      `${name}: the MIGRATE_PAGE_ALONE entry must be a plain function beside a generator migratePage`,
      'migratePage',
    );
  return f as MigratePageAlone;
}

/**
 * The definition record of `ops`.
 * @param ops a movable_operations passed through {@link defineMovableOps}
 * @returns the callbacks and how each is to be called
 * @throws {@link MopsError} `E_PLUGIN` when `ops` was never defined
 */
export function definedOps(ops: MovableOperations): DefinedOps {
  const d = defined.get(ops);
  if (!d)
    throw new MopsError(
      'E_PLUGIN',
      'movable_operations must be passed through defineMovableOps() before use',
      'ops',
    );
  return d;
}

/**
 * Makes a v4.8 address_space whose a_ops are the (defined) callbacks. `a_ops` may also be
 * partial, as the kernel allows: the mapping is PageMovable when it has `isolatePage` (what
 * 4.8's PageMovable() checks), but without all three callbacks the VM finds no ops to call
 * and isolation fails with a warning. Only v4.8's {@link __SetPageMovable} takes one.
 * @param name the driver's pseudo filesystem, e.g. `'balloon-kvm'`, `'zsmalloc'`
 * @param a_ops the callbacks; when all three are there, pass them through
 *   {@link defineMovableOps} first
 * @returns the address_space to pass to `__SetPageMovable` in v4.8
 */
export function makeAddressSpace(name: string, a_ops: Partial<MovableOperations>): AddressSpace {
  return { name, a_ops };
}

function requireLocked(mem: Memory, pfn: number, what: string): void {
  if (!(mem.pages.flags[pfn] & LOCKED)) notLocked(mem, pfn, what);
}

function notLocked(mem: Memory, pfn: number, what: string): never {
  bug(mem, `VM_BUG_ON_PAGE(!PageLocked(page)): ${what}`, pfn);
}

/**
 * __SetPageMovable(page, x) (v4.8–v6.3): publish a page as movable, under the page lock.
 * v4.8 takes the driver's address_space; v6.0/v6.3 its movable_operations. v6.17 has no
 * such function (use {@link SetPageMovableOps}).
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page to publish, locked by the caller (trylockPage or lockPage) and
 *   holding the driver's reference
 * @param target v4.8: the driver's address_space ({@link makeAddressSpace}); v6.0/v6.3: its
 *   movable_operations ({@link defineMovableOps})
 * @throws {@link MopsError} `E_PLUGIN` in v6.17, for a target of the wrong kind for the
 *   profile, or for movable_operations not passed through `defineMovableOps`
 * @throws {@link MmBug} `VM_BUG_ON_PAGE(!PageLocked(page))` when the page is not locked; the
 *   machine halts
 */
export function __SetPageMovable(
  mem: Memory,
  pfn: number,
  target: AddressSpace | MovableOperations,
): void {
  if (mem.profile.movableMarker !== 'mops') checkMovableTarget(mem, target);
  const mappings = mem.mappings;
  const handle = mappings.handleOf(target);
  if (mappings.getAux(handle) === undefined) registerMovableTarget(mem, handle, target);
  requireLocked(mem, pfn, '__SetPageMovable');
  mem.pages.mapping[pfn] = (handle << 2) | PAGE_MAPPING_MOVABLE;
}

/** The checks of {@link __SetPageMovable} for the v4.8 and v6.17 markers. */
function checkMovableTarget(mem: Memory, target: AddressSpace | MovableOperations): void {
  const marker = mem.profile.movableMarker;
  if (marker === 'page_type')
    throw new MopsError(
      'E_PLUGIN',
      `__SetPageMovable does not exist in ${mem.profile.name}; set the page type and call SetPageMovableOps`,
      '__SetPageMovable',
    );
  if (marker !== 'address_space') return;
  if (!isObject(target) || !('a_ops' in target)) notATarget(mem, target);
  if (!isObject(target.a_ops))
    throw new MopsError(
      'E_PLUGIN',
      `${mem.profile.name}: __SetPageMovable takes an address_space whose a_ops hold the callbacks (makeAddressSpace), got a_ops ${valueKind(target.a_ops)}`,
      '__SetPageMovable',
    );
}

function isObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

function notATarget(mem: Memory, target: unknown): never {
  const got = isObject(target) ? 'an object without a_ops' : valueKind(target);
  throw new MopsError(
    'E_PLUGIN',
    `${mem.profile.name}: __SetPageMovable takes ${mem.profile.movableMarker === 'address_space' ? 'an address_space (makeAddressSpace)' : 'a movable_operations (defineMovableOps)'}, got ${got}`,
    '__SetPageMovable',
  );
}

/** The first {@link __SetPageMovable} with `target`: validate it and attach its callbacks. */
function registerMovableTarget(
  mem: Memory,
  handle: number,
  target: AddressSpace | MovableOperations,
): void {
  if (mem.profile.movableMarker === 'mops') {
    if (!isObject(target)) notATarget(mem, target);
    if ('a_ops' in target)
      throw new MopsError(
        'E_PLUGIN',
        `${mem.profile.name}: __SetPageMovable takes a movable_operations`,
        '__SetPageMovable',
      );
    mem.mappings.setAux(handle, definedOps(target as MovableOperations));
  } else {
    const a = (target as AddressSpace).a_ops;
    mem.mappings.setAux(
      handle,
      a.isolatePage && a.migratePage && a.putbackPage ? definedOps(a as MovableOperations) : null,
    );
  }
}

/**
 * __ClearPageMovable(page) (v4.8–v6.3): the owner releases its page. Keeps the MOVABLE tag
 * and clears the pointer, so the VM can still tell a non-LRU page it must not call back
 * for. Requires the page lock and PageMovable. Does not exist in v6.17 (S25). A driver calls
 * it on the source page in migrate_page, and on a page it frees while owning it.
 *
 * The owner-release rule (spec §4.1): the owner may free its page at any time, even while
 * the VM holds it isolated: under the page lock it calls __ClearPageMovable, then drops its
 * own references. It never sets or clears the isolated flag and never touches `lru` while
 * the page is isolated: the VM, finding the page released (`__PageMovable` still true,
 * `PageMovable` false), neither migrates it nor calls putback_page for it, and its
 * isolation reference is the last. In v6.17 there is no release (§4.3): an owner that
 * drops an isolated page keeps its movable_ops and makes its callbacks do what the core
 * would have: zsmalloc's migrate_page returns 0 leaving `dst` untouched, its putback_page
 * does nothing.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page to give up, locked by the caller and PageMovable
 * @throws {@link MopsError} `E_PLUGIN` in v6.17
 * @throws {@link MmBug} when the page is not locked or not PageMovable; the machine halts
 */
export function __ClearPageMovable(mem: Memory, pfn: number): void {
  if (mem.profile.movableMarker === 'page_type') noClearPageMovable(mem);
  requireLocked(mem, pfn, '__ClearPageMovable');
  if (!pageMovableLocked(mem, pfn)) bug(mem, 'VM_BUG_ON_PAGE(!PageMovable(page))', pfn);
  mem.pages.mapping[pfn] = PAGE_MAPPING_MOVABLE;
}

function noClearPageMovable(mem: Memory): never {
  throw new MopsError(
    'E_PLUGIN',
    `${mem.profile.name} has no __ClearPageMovable: movability is sticky until the page is freed`,
    '__ClearPageMovable',
  );
}

/**
 * __PageMovable(page) (v4.8–v6.3): the tag alone, lockless; may be a false positive (a page
 * its owner released keeps the tag). v6.17 has no tag: use {@link page_has_movable_ops}.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page, locked or not
 * @returns whether `mapping` carries the PAGE_MAPPING_MOVABLE tag
 */
export function __PageMovable(mem: Memory, pfn: number): boolean {
  return (mem.pages.mapping[pfn] & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_MOVABLE;
}

/**
 * PageMovable(page) (v4.8–v6.3), with the page locked: tagged and still pointing at its
 * owner (v4.8: at an address_space whose a_ops have isolate_page). False once the owner
 * called __ClearPageMovable.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page, locked by the caller
 * @returns whether the page is still published by its owner
 * @throws {@link MmBug} when the page is not locked; the machine halts
 */
export function PageMovable(mem: Memory, pfn: number): boolean {
  requireLocked(mem, pfn, 'PageMovable');
  return pageMovableLocked(mem, pfn);
}

/**
 * {@link PageMovable} for a caller that has just checked that `pfn` is locked: the same
 * answer, without the check.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page, locked
 * @returns whether the page is still published by its owner
 */
export function pageMovableLocked(mem: Memory, pfn: number): boolean {
  const m = mem.pages.mapping[pfn];
  if ((m & PAGE_MAPPING_FLAGS) !== PAGE_MAPPING_MOVABLE) return false;
  const obj = mem.mappings.get<AddressSpace | MovableOperations>(m >>> 2);
  if (!obj) return false;
  return mem.profile.movableMarker !== 'address_space' || spaceIsMovable(obj);
}

/** v4.8: `mapping` points at an address_space whose a_ops have isolate_page. */
function spaceIsMovable(obj: AddressSpace | MovableOperations): boolean {
  return 'a_ops' in obj && typeof obj.a_ops.isolatePage === 'function';
}

/**
 * page_has_movable_ops(page): v6.17 — PG_movable_ops set and the page type Offline or
 * Zsmalloc, stable until free; earlier profiles — the tag (`__PageMovable`, its predecessor).
 * Lockless.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page
 * @returns whether the page has (or, before v6.17, claims) movable_ops
 */
export function page_has_movable_ops(mem: Memory, pfn: number): boolean {
  return mem.profile.movableMarker !== 'page_type'
    ? (mem.pages.mapping[pfn] & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_MOVABLE
    : hasMovableOpsType(mem, pfn);
}

/** v6.17 page_has_movable_ops(): PG_movable_ops and a movable page type. */
function hasMovableOpsType(mem: Memory, pfn: number): boolean {
  if (!(mem.pages.flags[pfn] & (1 << PG.movable_ops))) return false;
  const t = mem.pages.type[pfn] >>> 24;
  return t === PGTY.offline || t === PGTY.zsmalloc;
}

/**
 * SetPageMovableOps(page) (v6.17): mark a page of type Offline or Zsmalloc as having
 * movable_ops. Sticky: nothing clears it but freeing the page. The ops come from
 * {@link setMovableOps}, registered per page type.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page, already of type Offline or Zsmalloc ({@link setPageType})
 * @throws {@link MopsError} `E_PLUGIN` before v6.17 (use `__SetPageMovable`), or when the
 *   page type is not Offline or Zsmalloc
 */
export function SetPageMovableOps(mem: Memory, pfn: number): void {
  if (mem.profile.movableMarker !== 'page_type')
    throw new MopsError(
      'E_PLUGIN',
      `SetPageMovableOps does not exist in ${mem.profile.name}; use __SetPageMovable`,
      'SetPageMovableOps',
    );
  const t = mem.pages.type[pfn] >>> 24;
  if (t !== PGTY.offline && t !== PGTY.zsmalloc)
    throw new MopsError(
      'E_PLUGIN',
      'SetPageMovableOps: set the page type (Offline or Zsmalloc) first',
      'SetPageMovableOps',
    );
  mem.pages.flags[pfn] |= 1 << PG.movable_ops;
}

/**
 * There is no ClearPageMovableOps: once a page has movable_ops, neither the flag nor the
 * page type may change until it is freed (spec §4.3, S25).
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page, named in the message
 * @throws {@link MopsError} `E_PLUGIN`, always
 */
export function ClearPageMovableOps(mem: Memory, pfn: number): never {
  throw new MopsError(
    'E_PLUGIN',
    mem.profile.movableMarker === 'page_type'
      ? `pfn 0x${pfn.toString(16)}: PG_movable_ops cannot be cleared; it stays until the page is freed (${mem.profile.name})`
      : `ClearPageMovableOps does not exist in ${mem.profile.name}; its owner gives a page up with __ClearPageMovable under the page lock`,
    'ClearPageMovableOps',
  );
}

/**
 * set_movable_ops(ops, type) (v6.17): register the ops for a page type. 0 on success;
 * -EBUSY when ops are already registered and `ops` is non-null; -EINVAL for a type other
 * than Offline or Zsmalloc. `null` unregisters. Earlier profiles have no such call.
 * A plugin's register calls it; an install refused with -EBUSY fails the install.
 * @param mem the machine's memory (`m.mem`)
 * @param ops the driver's movable_operations ({@link defineMovableOps}), or null to
 *   unregister the type's ops
 * @param pgty the page type whose pages get these ops: `PGTY.offline` or `PGTY.zsmalloc`
 * @returns 0 on success; {@link Errno}.EBUSY (-16) when the type already has ops;
 *   Errno.EINVAL (-22) for another page type
 * @throws {@link MopsError} `E_PLUGIN` before v6.17 (publish each page with
 *   `__SetPageMovable`), or for ops not passed through `defineMovableOps`
 */
export function setMovableOps(mem: Memory, ops: MovableOperations | null, pgty: number): number {
  if (mem.profile.movableMarker !== 'page_type')
    throw new MopsError(
      'E_PLUGIN',
      `set_movable_ops does not exist in ${mem.profile.name}; publish each page with __SetPageMovable`,
      'setMovableOps',
    );
  if (pgty !== PGTY.offline && pgty !== PGTY.zsmalloc) return Errno.EINVAL;
  const reg = memoryExt(mem, REGISTRY, () => new Map<number, DefinedOps>());
  if (ops === null) {
    reg.delete(pgty);
    return 0;
  }
  if (reg.has(pgty)) {
    memoryExt(mem, REFUSED, () => [] as RefusedOps[]).push({ pgty, taken: reg.get(pgty)?.name });
    return Errno.EBUSY;
  }
  reg.set(pgty, definedOps(ops));
  return 0;
}

/**
 * The page types with movable_ops registered on a machine (v6.17), and their ops: a copy.
 * @param mem the machine's memory (`m.mem`)
 * @returns a new map from page type to ops (empty before v6.17)
 */
export function registeredMovableOps(mem: Memory): Map<number, DefinedOps> {
  return new Map((mem.ext.get(REGISTRY) as Map<number, DefinedOps> | undefined) ?? []);
}

/**
 * After a failed plugin install took its set_movable_ops() back: the ops of a page type
 * some page still carries (PG_movable_ops, published before the failure) are registered
 * again, since page_movable_ops() of that page must find them.
 * @param mem the machine's memory (`m.mem`)
 * @param registered the registrations before they were taken back
 *   ({@link registeredMovableOps})
 */
export function keepPublishedOps(mem: Memory, registered: ReadonlyMap<number, DefinedOps>): void {
  if (registered.size === 0) return;
  const { type, flags } = mem.pages;
  const reg = memoryExt(mem, REGISTRY, () => new Map<number, DefinedOps>());
  for (const [pgty, ops] of registered) {
    if (reg.has(pgty)) continue;
    for (let pfn = 0; pfn < mem.nrPages; pfn++)
      if (type[pfn] >>> 24 === pgty && flags[pfn] & (1 << PG.movable_ops)) {
        reg.set(pgty, ops);
        break;
      }
  }
}

/** A set_movable_ops() call refused with -EBUSY: the page type and who holds it. */
export interface RefusedOps {
  /** The page type asked for (a {@link PGTY} value). */
  readonly pgty: number;
  /** The name of the driver whose ops the type had, if known. */
  readonly taken: string | undefined;
}

/** The `Memory.ext` key of the set_movable_ops() calls refused on a machine (oldest first). */
const REFUSED = {};

/**
 * The set_movable_ops() calls refused with -EBUSY on a machine so far.
 * @param mem the machine's memory (`m.mem`)
 * @returns each refused call's page type and the driver holding it, oldest first
 */
export function refusedMovableOps(mem: Memory): readonly RefusedOps[] {
  return (mem.ext.get(REFUSED) as RefusedOps[] | undefined) ?? [];
}

/**
 * page_movable_ops(page): the callbacks of a movable page, or undefined. v4.8: the a_ops of
 * the page's address_space; v6.0/v6.3: the ops `mapping` points to; v6.17: the ops
 * registered for the page's type.
 * @param mem the machine's memory (`m.mem`)
 * @param pfn the page (the answer is stable only with the page locked, or in v6.17)
 * @returns the ops' definition record, or undefined when the page has none
 */
export function pageMovableOps(mem: Memory, pfn: number): DefinedOps | undefined {
  if (mem.profile.movableMarker === 'page_type') return registeredOps(mem, pfn);
  return mem.mappings.getAux<DefinedOps>(mem.pages.mapping[pfn] >>> 2) ?? undefined;
}

/** v6.17 page_movable_ops(): the ops registered for the page's type. */
function registeredOps(mem: Memory, pfn: number): DefinedOps | undefined {
  const reg = mem.ext.get(REGISTRY) as Map<number, DefinedOps> | undefined;
  return reg?.get(mem.pages.type[pfn] >>> 24);
}
