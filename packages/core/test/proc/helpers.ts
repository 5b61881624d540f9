import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { buddyOrder, freeListType, PageBuddy, pageIsBuddy } from '../../src/buddy/free_area.js';
import { MopsError, type MopsErrorCode } from '../../src/errors.js';
import type { Machine } from '../../src/machine.js';
import {
  MAX_PAGE_ORDER,
  MIGRATE,
  MIGRATE_PCPTYPES,
  MIGRATE_TYPES,
  pageblock_order,
} from '../../src/memory/constants.js';

/** The sample /proc files of a Linux 6.18 machine, copied into the repo. */
export const FIXTURES = new URL('./fixtures/', import.meta.url);

/** A fixture's text. */
export function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

/**
 * Whether free blocks of types `a` and `b` merge at pageblock order and above: v4.8 merges
 * any two but Isolate, 6.x only the per-CPU types (migratetype_is_mergeable()).
 */
function mergeable(m: Machine, a: number, b: number): boolean {
  if (a === b) return true;
  if (m.mem.profile.mergeableTypes === 'not_isolate')
    return a !== MIGRATE.ISOLATE && b !== MIGRATE.ISOLATE;
  return a < MIGRATE_PCPTYPES && b < MIGRATE_PCPTYPES;
}

/**
 * Checks the buddy allocator's state of every populated zone: free blocks lie inside the
 * zone, sit on the list of their pageblock's type, have no free buddy of the same order
 * they would merge with, their pages have refcount 0, and the counters agree with the blocks found. Returns the
 * problems found (empty when all is well).
 */
export function buddyProblems(m: Machine): string[] {
  const mem = m.mem;
  const p = mem.pages;
  const out: string[] = [];
  for (const z of mem.populatedZones) {
    const end = z.zoneStartPfn + z.presentPages;
    const lists = new Int32Array(z.nrFreeList.length);
    let freePages = 0;
    for (let pfn = z.zoneStartPfn; pfn < end; ) {
      if (!PageBuddy(mem, pfn)) {
        pfn++;
        continue;
      }
      const order = buddyOrder(mem, pfn);
      const mt = freeListType(mem, pfn);
      const size = 1 << order;
      if (pfn & (size - 1)) out.push(`${z.name}: block ${pfn} of order ${order} is misaligned`);
      if (pfn + size > end) out.push(`${z.name}: block ${pfn} of order ${order} leaves the zone`);
      if (mem.pageblockMigratetype(pfn) !== mt)
        out.push(
          `${z.name}: block ${pfn} on list ${mt}, pageblock type ${mem.pageblockMigratetype(pfn)}`,
        );
      const buddy = pfn ^ size;
      if (
        order < MAX_PAGE_ORDER &&
        z.spans(buddy) &&
        pageIsBuddy(mem, buddy, order) &&
        (order < pageblock_order || mergeable(m, mt, freeListType(mem, buddy)))
      )
        out.push(`${z.name}: blocks ${pfn} and ${buddy} of order ${order} are free buddies`);
      for (let i = 0; i < size; i++)
        if (p.refcount[pfn + i] !== 0) out.push(`${z.name}: free pfn ${pfn + i} has a refcount`);
      for (let i = 1; i < size; i++)
        if (PageBuddy(mem, pfn + i)) out.push(`${z.name}: free block inside block ${pfn}`);
      lists[order * MIGRATE_TYPES + mt]++;
      // NR_FREE_PAGES leaves out the Isolate lists.
      if (mt !== MIGRATE.ISOLATE) freePages += size;
      pfn += size;
    }
    if (freePages !== z.nrFreePages)
      out.push(`${z.name}: ${freePages} free pages found, counter says ${z.nrFreePages}`);
    for (let i = 0; i < lists.length; i++)
      if (lists[i] !== z.nrFreeList[i])
        out.push(`${z.name}: list ${i} has ${lists[i]} blocks, counter says ${z.nrFreeList[i]}`);
  }
  return out;
}

/** Pageblock order, re-exported for tests that lay out blocks by hand. */
export const PB_ORDER = pageblock_order;

/**
 * Splits a fixed-width line into fields: after `prefix` characters, `n` fields of `width`
 * characters each followed by one space. Returns the trimmed fields, or throws when a field
 * is not right-aligned digits (with an optional `>`) or a separator is not a space.
 */
export function fixedFields(line: string, prefix: number, width: number, n: number): string[] {
  if (line.length !== prefix + n * (width + 1))
    throw new Error(
      `line has ${line.length} characters, expected ${prefix + n * (width + 1)}: '${line}'`,
    );
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const at = prefix + k * (width + 1);
    const field = line.slice(at, at + width);
    if (!/^ *>?\d+$/.test(field) && !/^ *[A-Za-z]+$/.test(field))
      throw new Error(`field ${k} '${field}' is not right-aligned in '${line}'`);
    if (line[at + width] !== ' ') throw new Error(`no space after field ${k} in '${line}'`);
    out.push(field.trim());
  }
  return out;
}

/**
 * Runs `fn`, expecting a MopsError with `code` whose message matches `re`; returns it.
 * Anything else (no error, a TypeError) fails the test.
 */
export function expectMopsError(fn: () => unknown, code: MopsErrorCode, re: RegExp): MopsError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof MopsError))
    throw new Error(`expected MopsError ${code}, got ${String(err)}`);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(re);
  return err;
}
