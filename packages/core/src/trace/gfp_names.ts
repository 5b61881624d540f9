/**
 * `show_gfp_flags()` (include/trace/events/mmflags.h): a gfp mask as ftrace prints it.
 * @module
 */

import { __GFP, GFP } from '../buddy/gfp.js';
import type { Profile } from '../profile.js';

const RECLAIM = __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM;
const HIGHUSER = GFP.USER | __GFP.HIGHMEM;
const TRANSHUGE_LIGHT =
  (GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOMEMALLOC | __GFP.NOWARN) & ~RECLAIM;

/** A `__def_gfpflag_names` table: masks and their names, in the order tried. */
export type GfpNameTable = readonly (readonly [mask: number, name: string])[];

/** The combinations every release lists first, most bits first (GFP_TEMPORARY aside). */
const COMBINATIONS: GfpNameTable = [
  [TRANSHUGE_LIGHT | __GFP.DIRECT_RECLAIM, 'GFP_TRANSHUGE'],
  [TRANSHUGE_LIGHT, 'GFP_TRANSHUGE_LIGHT'],
  [GFP.HIGHUSER_MOVABLE, 'GFP_HIGHUSER_MOVABLE'],
  [HIGHUSER, 'GFP_HIGHUSER'],
  [GFP.USER, 'GFP_USER'],
  [GFP.KERNEL, 'GFP_KERNEL'],
  [RECLAIM | __GFP.IO, 'GFP_NOFS'],
  [GFP.ATOMIC, 'GFP_ATOMIC'],
  [RECLAIM, 'GFP_NOIO'],
  [GFP.NOWAIT, 'GFP_NOWAIT'],
  [__GFP.DMA, 'GFP_DMA'],
];

/**
 * `__def_gfpflag_names` of 6.15+ (v6.17): the combinations, then `__GFP_RECLAIM`, then every
 * single bit in bit order (`TRACE_GFP_FLAGS`). Only the bits mops models appear (no
 * `__GFP_ACCOUNT`, `__GFP_NOFAIL`, …), with mops's bit values.
 */
export const GFP_FLAG_NAMES: GfpNameTable = [
  ...COMBINATIONS,
  [__GFP.DMA32, 'GFP_DMA32'],
  [RECLAIM, '__GFP_RECLAIM'],
  [__GFP.DMA, '__GFP_DMA'],
  [__GFP.HIGHMEM, '__GFP_HIGHMEM'],
  [__GFP.DMA32, '__GFP_DMA32'],
  [__GFP.MOVABLE, '__GFP_MOVABLE'],
  [__GFP.RECLAIMABLE, '__GFP_RECLAIMABLE'],
  [__GFP.HIGH, '__GFP_HIGH'],
  [__GFP.IO, '__GFP_IO'],
  [__GFP.FS, '__GFP_FS'],
  [__GFP.ZERO, '__GFP_ZERO'],
  [__GFP.DIRECT_RECLAIM, '__GFP_DIRECT_RECLAIM'],
  [__GFP.KSWAPD_RECLAIM, '__GFP_KSWAPD_RECLAIM'],
  [__GFP.NOWARN, '__GFP_NOWARN'],
  [__GFP.RETRY_MAYFAIL, '__GFP_RETRY_MAYFAIL'],
  [__GFP.NORETRY, '__GFP_NORETRY'],
  [__GFP.COMP, '__GFP_COMP'],
  [__GFP.NOMEMALLOC, '__GFP_NOMEMALLOC'],
  [__GFP.HARDWALL, '__GFP_HARDWALL'],
  [__GFP.THISNODE, '__GFP_THISNODE'],
];

/**
 * The hand-written single-bit part of the table before 6.15, in its order; `retry` is the
 * name of the retry bit (`__GFP_REPEAT` until 4.13, `__GFP_RETRY_MAYFAIL` after).
 */
const handBits = (retry: string): GfpNameTable => [
  [__GFP.HIGHMEM, '__GFP_HIGHMEM'],
  [__GFP.DMA32, 'GFP_DMA32'],
  [__GFP.HIGH, '__GFP_HIGH'],
  [__GFP.IO, '__GFP_IO'],
  [__GFP.FS, '__GFP_FS'],
  [__GFP.NOWARN, '__GFP_NOWARN'],
  [__GFP.RETRY_MAYFAIL, retry],
  [__GFP.NORETRY, '__GFP_NORETRY'],
  [__GFP.COMP, '__GFP_COMP'],
  [__GFP.ZERO, '__GFP_ZERO'],
  [__GFP.NOMEMALLOC, '__GFP_NOMEMALLOC'],
  [__GFP.HARDWALL, '__GFP_HARDWALL'],
  [__GFP.THISNODE, '__GFP_THISNODE'],
  [__GFP.RECLAIMABLE, '__GFP_RECLAIMABLE'],
  [__GFP.MOVABLE, '__GFP_MOVABLE'],
  [RECLAIM, '__GFP_RECLAIM'],
  [__GFP.DIRECT_RECLAIM, '__GFP_DIRECT_RECLAIM'],
  [__GFP.KSWAPD_RECLAIM, '__GFP_KSWAPD_RECLAIM'],
];

/** `__def_gfpflag_names` of v4.14–v6.14 (v6.0, v6.3). */
export const GFP_FLAG_NAMES_V6_0: GfpNameTable = [
  ...COMBINATIONS,
  ...handBits('__GFP_RETRY_MAYFAIL'),
];

/** v4.8's table: GFP_TEMPORARY (GFP_KERNEL | __GFP_RECLAIMABLE) after GFP_USER. */
export const GFP_FLAG_NAMES_V4_8: GfpNameTable = [
  ...COMBINATIONS.slice(0, 5),
  [GFP.KERNEL | __GFP.RECLAIMABLE, 'GFP_TEMPORARY'],
  ...COMBINATIONS.slice(5),
  ...handBits('__GFP_REPEAT'),
];

/** mops's __GFP bits and the ___GFP_* values v4.8's include/linux/gfp.h gives them. */
const V4_8_BITS: readonly (readonly [number, number])[] = [
  [__GFP.DMA, 0x01],
  [__GFP.HIGHMEM, 0x02],
  [__GFP.DMA32, 0x04],
  [__GFP.MOVABLE, 0x08],
  [__GFP.RECLAIMABLE, 0x10],
  [__GFP.HIGH, 0x20],
  [__GFP.IO, 0x40],
  [__GFP.FS, 0x80],
  [__GFP.NOWARN, 0x200],
  [__GFP.RETRY_MAYFAIL, 0x400], // ___GFP_REPEAT
  [__GFP.NORETRY, 0x1000],
  [__GFP.COMP, 0x4000],
  [__GFP.ZERO, 0x8000],
  [__GFP.NOMEMALLOC, 0x10000],
  [__GFP.HARDWALL, 0x20000],
  [__GFP.THISNODE, 0x40000],
  [__GFP.DIRECT_RECLAIM, 0x400000],
  [__GFP.KSWAPD_RECLAIM, 0x2000000],
];

/**
 * A gfp mask as v4.8 stores it: the same flags in that release's bit layout, for the
 * tracepoints that print the raw mask there (`gfp_mask=0x%x`). E.g. GFP_HIGHUSER_MOVABLE is
 * `0x24200ca`.
 */
export function gfpMaskV4_8(gfp: number): number {
  let out = 0;
  for (const [bit, v48] of V4_8_BITS) if (gfp & bit) out |= v48;
  return out >>> 0;
}

const TABLES = {
  'v4.8': GFP_FLAG_NAMES_V4_8,
  'v6.0': GFP_FLAG_NAMES_V6_0,
  'v6.15': GFP_FLAG_NAMES,
};

/**
 * show_gfp_flags(): `"none"` for 0, else the names of the release's table (`profile.gfpNames`;
 * {@link GFP_FLAG_NAMES} without a profile) whose bits are all set, taken in table order and
 * joined by `|` (trace_print_flags_seq()), then any bits left over as `0x…`. E.g.
 * `GFP_KERNEL|__GFP_COMP`.
 */
export function showGfpFlags(gfp: number, profile?: Pick<Profile, 'gfpNames'>): string {
  if (!gfp) return 'none';
  let flags = gfp >>> 0;
  const out: string[] = [];
  for (const [mask, name] of profile ? TABLES[profile.gfpNames] : GFP_FLAG_NAMES) {
    if (flags === 0) break;
    if ((flags & mask) >>> 0 !== mask >>> 0) continue;
    out.push(name);
    flags = (flags & ~mask) >>> 0;
  }
  if (flags) out.push(`0x${flags.toString(16)}`);
  return out.join('|');
}
