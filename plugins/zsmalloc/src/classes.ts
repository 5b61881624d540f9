/**
 * zsmalloc size classes for 4 KiB pages (spec §7.1; zsmalloc-by-profile §1): class sizes
 * from 32 bytes in steps of 16 up to PAGE_SIZE, a chain of at most eight pages chosen for
 * the least waste, merged classes, the huge-class boundary and the fullness groups.
 * @module
 */

import { PAGE_SIZE } from '@mops/core';

/** ZS_HANDLE_SIZE: bytes of the handle kept at the start of every non-huge object. */
export const ZS_HANDLE_SIZE = 8;
/** ZS_MIN_ALLOC_SIZE. */
export const ZS_MIN_ALLOC_SIZE = 32;
/** ZS_MAX_ALLOC_SIZE. */
export const ZS_MAX_ALLOC_SIZE = PAGE_SIZE;
/** CLASS_BITS: the class delta is PAGE_SIZE >> CLASS_BITS. */
export const CLASS_BITS = 8;
/** ZS_SIZE_CLASS_DELTA: 16 bytes for 4 KiB pages. */
export const ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS;
/** ZS_SIZE_CLASSES: number of class indices (255). */
export const ZS_SIZE_CLASSES =
  Math.ceil((ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE) / ZS_SIZE_CLASS_DELTA) + 1;
/** CONFIG_ZSMALLOC_CHAIN_SIZE (default 8): most pages a zspage chains. */
export const ZS_MAX_PAGES_PER_ZSPAGE = 8;

/** ZS_INUSE_RATIO_0: the group of empty zspages. */
export const ZS_INUSE_RATIO_0 = 0;
/** ZS_INUSE_RATIO_10: the first partly used group (0-9 %). */
export const ZS_INUSE_RATIO_10 = 1;
/** ZS_INUSE_RATIO_99: the last partly used group (90-99 %). */
export const ZS_INUSE_RATIO_99 = 10;
/** ZS_INUSE_RATIO_100: the group of full zspages. */
export const ZS_INUSE_RATIO_100 = 11;
/** NR_FULLNESS_GROUPS. */
export const NR_FULLNESS_GROUPS = 12;

/**
 * One distinct size class (`struct size_class`, without its lock and lists, which the pool
 * adds). Merged indices point at the class of the next larger distinct index.
 */
export interface SizeClassSpec {
  /** The class index (`class->index`): the largest index of its merged run. */
  readonly index: number;
  /** Object size in bytes, handle included. */
  readonly size: number;
  /** Pages per zspage. */
  readonly pagesPerZspage: number;
  /** Objects per zspage. */
  readonly objsPerZspage: number;
  /** A zspage of this class holds one object in one page (`ZsHugePage`). */
  readonly huge: boolean;
}

/** The class table of a pool. */
export interface ClassTable {
  /** Distinct classes, smallest first. */
  readonly classes: readonly SizeClassSpec[];
  /** For each of the ZS_SIZE_CLASSES indices, its position in {@link classes}. */
  readonly byIndex: Uint16Array;
  /**
   * zs_huge_class_size(): requests of this many bytes or more land in the huge class.
   * @see mm/zsmalloc.c zs_huge_class_size()
   */
  readonly hugeClassSize: number;
}

/**
 * calculate_zspage_chain_size(): a power-of-two size uses one page; otherwise the first
 * chain length (1..8) with the strictly smallest waste.
 * @see mm/zsmalloc.c calculate_zspage_chain_size()
 */
export function calculateZspageChainSize(size: number): number {
  if ((size & (size - 1)) === 0) return 1;
  let minWaste = Number.POSITIVE_INFINITY;
  let chain = 1;
  for (let i = 1; i <= ZS_MAX_PAGES_PER_ZSPAGE; i++) {
    const waste = (i * PAGE_SIZE) % size;
    if (waste < minWaste) {
      minWaste = waste;
      chain = i;
    }
  }
  return chain;
}

/**
 * The class setup of zs_create_pool(): indices from the largest down; an index whose
 * (pages, objects) per zspage equal those of the last class created shares that class.
 * @see mm/zsmalloc.c zs_create_pool()
 */
export function buildClassTable(): ClassTable {
  const out: SizeClassSpec[] = [];
  // Position of each index's class in `out`, which is built largest first.
  const desc = new Int32Array(ZS_SIZE_CLASSES);
  let prev: SizeClassSpec | undefined;
  let hugeClassSize = 0;
  for (let i = ZS_SIZE_CLASSES - 1; i >= 0; i--) {
    const size = Math.min(ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE);
    const pagesPerZspage = calculateZspageChainSize(size);
    const objsPerZspage = Math.floor((pagesPerZspage * PAGE_SIZE) / size);
    // The first class from the top that is not huge sets the boundary; zs_malloc adds the
    // handle size before the class lookup, hence the adjustment.
    if (pagesPerZspage !== 1 && objsPerZspage !== 1 && hugeClassSize === 0)
      hugeClassSize = size - (ZS_HANDLE_SIZE - 1);
    if (prev && prev.pagesPerZspage === pagesPerZspage && prev.objsPerZspage === objsPerZspage) {
      desc[i] = out.length - 1;
      continue;
    }
    prev = {
      index: i,
      size,
      pagesPerZspage,
      objsPerZspage,
      huge: pagesPerZspage === 1 && objsPerZspage === 1,
    };
    out.push(prev);
    desc[i] = out.length - 1;
  }
  out.reverse();
  const byIndex = new Uint16Array(ZS_SIZE_CLASSES);
  for (let i = 0; i < ZS_SIZE_CLASSES; i++) byIndex[i] = out.length - 1 - desc[i];
  return { classes: out, byIndex, hugeClassSize };
}

/**
 * get_size_class_index(size): the class index of an allocation that already includes the
 * handle size.
 * @see mm/zsmalloc.c get_size_class_index()
 */
export function getSizeClassIndex(size: number): number {
  const idx =
    size > ZS_MIN_ALLOC_SIZE ? Math.ceil((size - ZS_MIN_ALLOC_SIZE) / ZS_SIZE_CLASS_DELTA) : 0;
  return Math.min(idx, ZS_SIZE_CLASSES - 1);
}

/**
 * get_fullness_group(): 0 for an empty zspage, 11 for a full one, otherwise the 10 % band
 * of its in-use ratio plus one (half-open bands: 0-9 % is group 1, 90-99 % group 10).
 * @see mm/zsmalloc.c get_fullness_group()
 */
export function getFullnessGroup(inuse: number, objsPerZspage: number): number {
  if (inuse === 0) return ZS_INUSE_RATIO_0;
  if (inuse >= objsPerZspage) return ZS_INUSE_RATIO_100;
  return Math.floor(Math.floor((100 * inuse) / objsPerZspage) / 10) + 1;
}

/** Column titles of the fullness groups 1..11 in the debugfs `classes` file. */
export const FULLNESS_NAMES: readonly string[] = [
  '0%',
  '10%',
  '20%',
  '30%',
  '40%',
  '50%',
  '60%',
  '70%',
  '80%',
  '90%',
  '99%',
  '100%',
];
