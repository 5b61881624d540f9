/**
 * `@mops/zsmalloc`: a zsmalloc-like allocator plugin. Objects of 1..4096 bytes are packed
 * into zspages (chains of order-0 pages) whose sub-pages the VM can migrate through
 * zsmalloc's movable_operations, while zs_compact moves objects between zspages
 * (spec §7, §4.1, §4.3).
 *
 * ```ts
 * import { createMachine, installPlugin } from '@mops/core';
 * import { plugin as zsmallocPlugin, ZS_POOL, type ZsPool } from '@mops/zsmalloc';
 *
 * const m = createMachine({ memory: '64M', profile: 'v6.3', contents: true });
 * installPlugin(m, zsmallocPlugin);
 * const pool = m.container.resolve<ZsPool>(ZS_POOL);
 * const h = pool.zsMalloc(100);
 * pool.objWrite(h, new Uint8Array(100).fill(7));
 * pool.zsFree(h);
 * ```
 * @module
 */

import { type Machine, type MopsPlugin, registerProcView } from '@mops/core';
import { checkZsmalloc } from './check.js';
import { HANDLE_SLOTS } from './objects.js';
import type { ZsPoolOptions } from './options.js';
import { ZsPool } from './pool.js';
import { registryOf } from './registry.js';
import { classesView, mmStatView } from './stats.js';

export type { ZsObjMapping } from './access.js';
export * from './classes.js';
export { zsCanCompact, zsCompactTask } from './compaction.js';
export { drive } from './drive.js';
export { findGetZspage, ZS_DEFAULT_GFP } from './malloc.js';
export { zsPageIsolate, zsPageMigrate, zsPagePutback } from './migration.js';
export {
  type Bytes,
  HANDLE_SLOTS,
  HandleTable,
  MAX_POOLS,
  OBJ_ALLOCATED_TAG,
  OBJ_TAG_BITS,
} from './objects.js';
export type { ZsMistakes, ZsPoolOptions } from './options.js';
export { ZsPool } from './pool.js';
export { registryOf, type ZsCallbackCounts, type ZsRegistry } from './registry.js';
export { type ZsRules, zsRules } from './rules.js';
export {
  registerZsmallocScenarios,
  zsmallocFreeVsMigrate,
  zsmallocReadVsMigrate,
  zsmallocScenarios,
} from './scenarios.js';
export { classesView, mmStatView } from './stats.js';
export { SizeClass, Zspage, ZspageLock } from './zspage.js';
export { checkZsmalloc };

/** DI token of the pool the plugin creates in a machine's child container. */
export const ZS_POOL: unique symbol = Symbol('mops.zsmalloc.pool');

/**
 * zs_create_pool(name): a pool on `machine`, with the machine's zsmalloc invariant checker
 * (`'zsmalloc'`, covering every pool) registered. `options` is checked first: something
 * other than an object, an unknown option, or a value of the wrong kind is a
 * MopsError('E_USAGE') whose `field` names the option and whose message names the value
 * given; no pool is made then.
 * @see mm/zsmalloc.c zs_create_pool()
 */
export function createZsPool(machine: Machine, options: ZsPoolOptions = {}): ZsPool {
  const pool = new ZsPool(machine, options);
  const reg = registryOf(machine);
  machine.registerInvariantChecker('zsmalloc', () => checkZsmalloc(reg));
  return pool;
}

/**
 * How the conformance suite (`@mops/testkit`, `mops check-plugin`) makes zsmalloc pages:
 * objects of 3600 bytes, which span pages, until `n` sub-pages are in use.
 */
export const conformance = {
  /** Fills the machine's pool until at least `n` sub-pages hold objects; returns them. */
  populate(machine: Machine, n: number): number[] {
    const pool = machine.container.resolve<ZsPool>(ZS_POOL);
    const pages = new Set<number>();
    const data = new Uint8Array(3600);
    for (let key = 0; pages.size < n; key++) {
      data.fill(key & 0xff);
      const h = pool.zsMalloc(3600);
      if (h <= 0) break;
      pool.objWrite(h, data);
      for (const pfn of pool.zspageOf(pool.handles.pfn[pool.checkHandle(h, 'populate')])?.pages ??
        [])
        pages.add(pfn);
    }
    return [...pages];
  },
  /**
   * Gives up page `pfn` as zsmalloc's users do: zs_free of every object on its zspage.
   * v6.0–v6.17 then destroy the zspage at once (v6.17 clearing only the zspage pointer of
   * a sub-page the VM holds isolated), v4.8 once its last isolated sub-page is put back.
   * Returns the zspage's sub-pages.
   */
  release(machine: Machine, pfn: number): number[] {
    const pool = machine.container.resolve<ZsPool>(ZS_POOL);
    const zs = pool.zspageOf(pfn);
    if (!zs) return [pfn];
    const handles: number[] = [];
    for (const slot of pool.handles.liveSlots())
      if (pool.zspageOf(pool.handles.pfn[slot]) === zs)
        handles.push(pool.handles.gen[slot] * HANDLE_SLOTS + slot);
    const pages = [...zs.pages];
    for (const h of handles) pool.zsFree(h);
    return pages;
  },
};

/**
 * The plugin: creates pool `zram0`, registers it under {@link ZS_POOL} and adds the text
 * views `zsmalloc/classes` and `zram/mm_stat`.
 */
export const plugin: MopsPlugin = {
  manifest: {
    name: '@mops/zsmalloc',
    version: '0.1.0',
    profiles: ['v4.8', 'v6.0', 'v6.3', 'v6.17'],
    description: 'zsmalloc-like allocator with page migration and its own compaction',
    needsContents: true,
  },
  register(container, machine) {
    const pool = createZsPool(machine, { name: 'zram0' });
    container.register(ZS_POOL, { useValue: pool });
    registerProcView(machine, 'zsmalloc/classes', () => classesView(pool));
    registerProcView(machine, 'zram/mm_stat', () => mmStatView(pool));
  },
};
export default plugin;
