/**
 * zsmalloc state shared by every pool of one machine: zspages by id (the value sub-pages
 * keep in `private`), per-page descriptor fields, and the movable_ops registered once per
 * machine, as `zs_init` registers them once per kernel.
 * @module
 */

import {
  __SetPageMovable,
  type AddressSpace,
  type Machine,
  MopsError,
  type MovableOperations,
  makeAddressSpace,
  memoryExt,
  PGTY,
  SetPageMovableOps,
  setMovableOps,
} from '@mops/core';
import { makeZsMovableOps } from './migration.js';
import type { Bytes } from './objects.js';
import type { ZsMistakes } from './options.js';
import type { ZsPool } from './pool.js';
import { type ZsRules, zsRules } from './rules.js';
import type { Zspage } from './zspage.js';

/** How often each movable_ops callback was entered (for tests and reports). */
export interface ZsCallbackCounts {
  /** zs_page_isolate calls. */
  isolate: number;
  /** zs_page_migrate calls. */
  migrate: number;
  /** zs_page_putback calls. */
  putback: number;
}

/** Per-machine zsmalloc state. */
export interface ZsRegistry {
  /** The machine. */
  readonly machine: Machine;
  /**
   * Live zspages by id (index 0 unused): those zs_malloc has inserted into their class,
   * under the class lock, and __free_zspage has not destroyed yet.
   */
  readonly zspages: (Zspage | undefined)[];
  /**
   * Zspages under construction: alloc_zspage made them and the allocating zs_malloc has
   * not inserted them yet. They are private to that task (on no list, not counted, not
   * movable), but their pages are allocated and counted in NR_ZSPAGES.
   */
  readonly building: Set<Zspage>;
  /**
   * Sub-pages a zs_page_migrate has moved whose NR_ZSPAGES count has not followed them yet
   * (dst → src): the kernel moves the count after dropping the locks.
   */
  readonly zoneMoves: Map<number, number>;
  /**
   * v4.8 (rule `zoneStatFollows` off): by zone index, how far NR_ZSPAGES is from the pages
   * zspages hold in the zone, after migrations that left the count behind.
   */
  readonly zoneDrift: Map<number, number>;
  /** Ids free for reuse. */
  readonly freeIds: number[];
  /** first_obj_offset by pfn, where the page type word does not hold it (v4.8–v6.3). */
  readonly firstObj: Int32Array;
  /** Page bytes and huge-object handles. */
  readonly bytes: Bytes;
  /** Page owner id `'zsmalloc'`. */
  readonly owner: number;
  /** The movable_ops. */
  readonly ops: MovableOperations;
  /** The v4.8 address_space of the "zsmalloc" pseudo filesystem. */
  readonly space: AddressSpace;
  /** Pools of the machine. */
  readonly pools: ZsPool[];
  /** Callback counts. */
  readonly calls: ZsCallbackCounts;
  /** What the profile lets the callbacks observe. */
  readonly rules: ZsRules;
  /** Callback mistakes switched on by a pool's options (race scenarios only). */
  readonly mistakes: ZsMistakes;
  /** A fresh zspage id. */
  newId(): number;
  /** SetZsPageMovable for one locked sub-page, per profile. */
  publish(pfn: number): void;
}

/** The `Memory.ext` key of a machine's zsmalloc state. */
const REGISTRY = {};

/**
 * get_zspage(page): the zspage whose sub-page `pfn` is (`private` holds its id), if any. A
 * zspage under construction is not found: no path but its allocating zs_malloc reaches its
 * pages before they are inserted and published movable.
 */
export function zspageOfPage(reg: ZsRegistry, pfn: number): Zspage | undefined {
  const id = reg.machine.mem.pages.priv[pfn];
  return id > 0 ? reg.zspages[id] : undefined;
}

/** The zsmalloc state of a machine, created (and the movable_ops registered) on first use. */
export function registryOf(machine: Machine): ZsRegistry {
  return memoryExt(machine.mem, REGISTRY, () => newRegistry(machine));
}

/** A machine's zsmalloc state, with its movable_ops registered. */
function newRegistry(machine: Machine): ZsRegistry {
  const mem = machine.mem;
  const contents = mem.pages.contents as Uint8Array;
  const nr = machine.nrPages;
  const zspages: (Zspage | undefined)[] = [undefined];
  const building = new Set<Zspage>();
  const zoneMoves = new Map<number, number>();
  const zoneDrift = new Map<number, number>();
  const freeIds: number[] = [];
  const calls: ZsCallbackCounts = { isolate: 0, migrate: 0, putback: 0 };
  const mistakes: ZsMistakes = {};
  const rules = zsRules(machine.profile);
  const partial = {
    machine,
    zspages,
    building,
    zoneMoves,
    zoneDrift,
    freeIds,
    calls,
    mistakes,
    rules,
  } as unknown as ZsRegistry;
  const ops = makeZsMovableOps(partial);
  const space = makeAddressSpace('zsmalloc', ops);
  const marker = machine.profile.movableMarker;
  if (marker === 'page_type') {
    const rc = setMovableOps(mem, ops, PGTY.zsmalloc);
    if (rc !== 0)
      throw new MopsError(
        'E_PLUGIN',
        `zsmalloc: set_movable_ops(PGTY_zsmalloc) returned ${rc}; another driver registered Zsmalloc pages`,
        'movable_ops',
      );
  }
  return Object.assign(partial, {
    firstObj: new Int32Array(nr),
    bytes: {
      u8: contents,
      // byteLength may be 2^32 (a 4 GiB machine): divide, a `>>> 2` would wrap it to 0.
      u32: new Uint32Array(
        contents.buffer,
        contents.byteOffset,
        Math.floor(contents.byteLength / 4),
      ),
      hugeHandle: new Float64Array(nr),
    },
    owner: mem.owners.register('zsmalloc'),
    ops,
    space,
    pools: [],
    newId(): number {
      const id = freeIds.pop();
      if (id !== undefined) return id;
      zspages.push(undefined);
      return zspages.length - 1;
    },
    publish(pfn: number): void {
      if (marker === 'page_type') SetPageMovableOps(mem, pfn);
      else __SetPageMovable(mem, pfn, marker === 'address_space' ? space : ops);
    },
  });
}
