/**
 * The zsmalloc invariant checker: handles, objects, zspages and pages
 * agree, and every written object's bytes match the checksum recorded at its last write.
 * It holds at every scheduling point of every zsmalloc path, including the stretch of
 * zs_malloc between alloc_zspage and the insertion of the new zspage, whose pages are
 * allocated and counted in NR_ZSPAGES while the zspage is still private to the task.
 * @module
 */

import {
  hasPageType,
  hexPfn,
  ISOLATED,
  PAGE_SHIFT,
  PG,
  PGTY,
  page_has_movable_ops,
  ZS,
} from '@mops/core';
import { getFullnessGroup, NR_FULLNESS_GROUPS, ZS_HANDLE_SIZE } from './classes.js';
import { checksum, firstObjOffset, HANDLE_SLOTS, storedHandle } from './objects.js';
import type { ZsPool } from './pool.js';
import { type ZsRegistry, zspageOfPage } from './registry.js';
import type { Zspage } from './zspage.js';

const MAX = 50;

/** The sub-pages of a zspage, live or under construction, as its descriptor sets them up. */
function checkSubPages(pool: ZsPool, zs: Zspage, name: string, add: (s: string) => void): void {
  const mem = pool.mem;
  const p = mem.pages;
  const cls = zs.cls;
  if (zs.pages.length !== cls.pagesPerZspage)
    add(`${name}: ${zs.pages.length} pages, class needs ${cls.pagesPerZspage}`);
  zs.pages.forEach((pfn, k) => {
    if (p.priv[pfn] !== zs.id) add(`${name}: page ${hexPfn(pfn)} private is ${p.priv[pfn]}`);
    if (p.refcount[pfn] < 1) add(`${name}: page ${hexPfn(pfn)} has refcount ${p.refcount[pfn]}`);
    if (((p.flags[pfn] >>> PG.private) & 1) !== (k === 0 ? 1 : 0))
      add(`${name}: page ${hexPfn(pfn)} PG_private does not mark the first page`);
    if (pool.firstObjOffsetOf(pfn) !== firstObjOffset(k, cls.size))
      add(`${name}: page ${hexPfn(pfn)} first_obj_offset ${pool.firstObjOffsetOf(pfn)}`);
    if (pool.rules.pageType && !hasPageType(mem, pfn, PGTY.zsmalloc))
      add(`${name}: page ${hexPfn(pfn)} lacks the Zsmalloc page type`);
    if (zs.movable && !page_has_movable_ops(mem, pfn))
      add(`${name}: page ${hexPfn(pfn)} is not movable`);
  });
}

/** The allocated objects of a zspage, each holding a live handle that locates it. */
function countObjects(pool: ZsPool, zs: Zspage, name: string, add: (s: string) => void): number {
  const cls = zs.cls;
  let used = 0;
  for (let idx = 0; idx < cls.objsPerZspage; idx++) {
    const zoff = idx * cls.size;
    const pfn = zs.pages[zoff >>> PAGE_SHIFT];
    const handle = storedHandle(pool.bytes, zs, zoff);
    if (handle <= 0) continue;
    used++;
    const slot = pool.handles.slotOf(handle);
    if (slot < 0) {
      add(`${name}: object ${idx} holds handle ${handle}, which is not live`);
      continue;
    }
    if (pool.handles.pfn[slot] !== pfn || pool.handles.idx[slot] !== idx)
      add(
        `${name}: handle ${handle} locates ${hexPfn(pool.handles.pfn[slot])}/${pool.handles.idx[slot]}, object is at ${hexPfn(pfn)}/${idx}`,
      );
  }
  return used;
}

/**
 * With no task live, nothing is half done: each sub-page holds zsmalloc's reference, and
 * the VM's too while isolated; and (v4.8–v6.3) the zspage counts exactly the sub-pages the
 * VM has isolated (a page isolated twice, or a flag cleared behind the VM's back, shows).
 */
function checkIsolation(pool: ZsPool, zs: Zspage, name: string, add: (s: string) => void): void {
  const p = pool.mem.pages;
  let isolated = 0;
  for (const pfn of zs.pages) {
    const iso = (p.flags[pfn] & ISOLATED) !== 0;
    if (iso) isolated++;
    const want = iso ? 2 : 1;
    if (p.refcount[pfn] !== want)
      add(
        `${name}: page ${hexPfn(pfn)} has refcount ${p.refcount[pfn]} with no task live, where zsmalloc's reference${iso ? " and the VM's isolation reference make" : ' makes'} ${want}`,
      );
  }
  if (pool.rules.countsIsolated && zs.isolated !== isolated)
    add(`${name}: isolated count ${zs.isolated}, but the VM has isolated ${isolated} of its pages`);
}

function checkZspage(
  pool: ZsPool,
  zs: Zspage,
  add: (s: string) => void,
  quiescent: boolean,
): number {
  const cls = zs.cls;
  const name = `zspage ${zs.id} (class ${cls.index})`;
  checkSubPages(pool, zs, name, add);
  if (quiescent) checkIsolation(pool, zs, name, add);
  const used = countObjects(pool, zs, name, add);
  if (used !== zs.inuse) add(`${name}: inuse ${zs.inuse}, ${used} objects allocated`);
  const fg = getFullnessGroup(zs.inuse, cls.objsPerZspage);
  if (zs.listed >= 0 && zs.listed !== fg) add(`${name}: on list ${zs.listed}, belongs on ${fg}`);
  // The group recorded in the zspage names its list (the kernel finds the list by it),
  // except inside the class lock, where the list changes before the record does.
  if (zs.listed >= 0 && zs.fullness !== zs.listed && !cls.lock.locked)
    add(`${name}: records fullness group ${zs.fullness} but is on list ${zs.listed}`);
  if (
    zs.listed < 0 &&
    !zs.compacting &&
    !zs.freeing &&
    !(pool.rules.isolateTakesOffList && zs.isolated > 0)
  )
    add(`${name}: off every fullness list without reason`);
  if (zs.isolated < 0 || zs.isolated > cls.pagesPerZspage)
    add(`${name}: isolated count ${zs.isolated}`);
  return used;
}

/**
 * A zspage under construction: alloc_zspage set up its pages, and the allocating
 * zs_malloc has yet to take the class lock to insert it. Until then it is the task's own:
 * no object, on no list, in no count but NR_ZSPAGES, not movable, unknown to the id table.
 */
function checkBuilding(reg: ZsRegistry, pool: ZsPool, zs: Zspage, add: (s: string) => void): void {
  const mem = pool.mem;
  const name = `zspage ${zs.id} (class ${zs.cls.index}, under construction)`;
  if (reg.zspages[zs.id] !== undefined)
    add(
      `${name}: id ${zs.id} is registered to ${reg.zspages[zs.id] === zs ? 'it' : 'another zspage'}`,
    );
  checkSubPages(pool, zs, name, add);
  for (const pfn of zs.pages)
    if (page_has_movable_ops(mem, pfn)) add(`${name}: page ${hexPfn(pfn)} is already movable`);
  const used = countObjects(pool, zs, name, add);
  if (used !== 0 || zs.inuse !== 0) add(`${name}: inuse ${zs.inuse}, ${used} objects allocated`);
  if (zs.listed >= 0) add(`${name}: on list ${zs.listed}`);
  if (zs.movable || zs.compacting || zs.freeing || zs.destroyed || zs.isolated !== 0)
    add(`${name}: marked as if other paths had reached it`);
}

/**
 * The violations of every pool of a machine (empty when all agree). With `checksums`
 * false the object bytes are not hashed (a cheaper check for every scheduling point).
 */
export function checkZsmalloc(reg: ZsRegistry, checksums = true): string[] {
  const out: string[] = [];
  const add = (s: string): void => {
    if (out.length < MAX) out.push(s);
  };
  const mem = reg.machine.mem;
  const quiescent = reg.machine.sched.liveTasks === 0;
  // NR_ZSPAGES as the zspages' pages say it should be, by zone index.
  const zonePages = new Map<number, number>();
  const countPage = (pfn: number, delta: number): void => {
    const z = mem.zoneOf(pfn).idx;
    zonePages.set(z, (zonePages.get(z) ?? 0) + delta);
  };
  for (const pool of reg.pools) {
    let pages = 0;
    const perClass = new Map<number, { n: number; used: number; groups: Int32Array }>();
    for (const zs of reg.zspages) {
      if (!zs || zs.pool !== pool) continue;
      if (zs.destroyed) add(`zspage ${zs.id}: destroyed but still registered`);
      pages += zs.pages.length;
      for (const pfn of zs.pages) countPage(pfn, 1);
      const used = checkZspage(pool, zs, add, quiescent);
      let c = perClass.get(zs.cls.index);
      if (!c) {
        c = { n: 0, used: 0, groups: new Int32Array(NR_FULLNESS_GROUPS) };
        perClass.set(zs.cls.index, c);
      }
      c.n++;
      c.used += used;
      if (zs.listed >= 0) c.groups[zs.listed]++;
    }
    for (const [dst, src] of reg.zoneMoves) {
      if (zspageOfPage(reg, dst)?.pool !== pool) continue;
      // Counted in src's zone until the migration swaps the references.
      countPage(dst, -1);
      countPage(src, 1);
    }
    for (const zs of reg.building) {
      if (zs.pool !== pool) continue;
      for (const pfn of zs.pages) countPage(pfn, 1);
      checkBuilding(reg, pool, zs, add);
    }
    if (pages !== pool.pagesAllocated)
      add(`pool ${pool.name}: pages_allocated ${pool.pagesAllocated}, zspages hold ${pages}`);
    for (const cls of pool.classes) {
      const c = perClass.get(cls.index);
      if (!c) {
        if (cls.objAllocated !== 0 || cls.objUsed !== 0)
          add(
            `class ${cls.index}: no zspage, obj_allocated ${cls.objAllocated} obj_used ${cls.objUsed}`,
          );
        for (let fg = 0; fg < NR_FULLNESS_GROUPS; fg++)
          if (cls.heads[fg] !== null || cls.groupCount[fg] !== 0)
            add(`class ${cls.index}: list ${fg} is not empty but no zspage is registered`);
        continue;
      }
      if (cls.objAllocated !== c.n * cls.objsPerZspage)
        add(`class ${cls.index}: obj_allocated ${cls.objAllocated}, ${c.n} zspages`);
      if (cls.objUsed !== c.used)
        add(`class ${cls.index}: obj_used ${cls.objUsed}, ${c.used} objects allocated`);
      for (let fg = 0; fg < NR_FULLNESS_GROUPS; fg++) {
        let n = 0;
        for (let zs = cls.heads[fg]; zs !== null; zs = zs.next) {
          n++;
          if (zs.listed !== fg)
            add(`class ${cls.index}: zspage ${zs.id} on list ${fg} says ${zs.listed}`);
          if (n > reg.zspages.length) break;
        }
        if (n !== cls.groupCount[fg] || n !== c.groups[fg])
          add(`class ${cls.index}: list ${fg} holds ${n}, counted ${cls.groupCount[fg]}`);
      }
    }
    const h = pool.handles;
    for (const slot of h.liveSlots()) {
      const pfn = h.pfn[slot];
      const handle = h.gen[slot] * HANDLE_SLOTS + slot;
      const zs = pool.zspageOf(pfn);
      if (!zs || zs.pool !== pool) {
        add(`handle ${handle}: page ${hexPfn(pfn)} belongs to no zspage of pool ${pool.name}`);
        continue;
      }
      const cls = zs.cls;
      const idx = h.idx[slot];
      const zoff = idx * cls.size;
      if (idx >= cls.objsPerZspage || zs.pages[zoff >>> PAGE_SHIFT] !== pfn) {
        add(`handle ${handle}: object ${idx} does not start in page ${hexPfn(pfn)}`);
        continue;
      }
      const held = storedHandle(pool.bytes, zs, zoff);
      if (held !== handle) add(`handle ${handle}: its object's header holds ${held}`);
      if (checksums && h.written[slot]) {
        const sum = checksum(pool.bytes, zs, zoff + (cls.huge ? 0 : ZS_HANDLE_SIZE), h.size[slot]);
        if (sum !== h.sum[slot])
          add(`handle ${handle}: object bytes do not match the checksum of its last write`);
      }
    }
  }
  for (const zone of mem.populatedZones) {
    const want = (zonePages.get(zone.idx) ?? 0) + (reg.zoneDrift.get(zone.idx) ?? 0);
    if (zone.stat[ZS.nr_zspages] !== want)
      add(`zone ${zone.name}: nr_zspages ${zone.stat[ZS.nr_zspages]}, zspages hold ${want}`);
  }
  return out;
}
