/**
 * `show_gfp_flags()` (include/trace/events/mmflags.h): a gfp mask as ftrace prints it.
 * @module
 */

import { __GFP, GFP } from '../buddy/gfp.js';

const RECLAIM = __GFP.DIRECT_RECLAIM | __GFP.KSWAPD_RECLAIM;
const HIGHUSER = GFP.USER | __GFP.HIGHMEM;
const TRANSHUGE_LIGHT =
  (GFP.HIGHUSER_MOVABLE | __GFP.COMP | __GFP.NOMEMALLOC | __GFP.NOWARN) & ~RECLAIM;

/**
 * `__def_gfpflag_names` in the kernel's order: combinations with most bits first, then the
 * single bits in `TRACE_GFP_FLAGS` order. Only the bits mops models appear (no
 * `__GFP_ACCOUNT`, `__GFP_NOFAIL`, …), with mops's bit values.
 */
export const GFP_FLAG_NAMES: readonly (readonly [mask: number, name: string])[] = [
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
  [__GFP.COMP, '__GFP_COMP'],
  [__GFP.NOMEMALLOC, '__GFP_NOMEMALLOC'],
  [__GFP.HARDWALL, '__GFP_HARDWALL'],
];

/**
 * show_gfp_flags(): `"none"` for 0, else the names of {@link GFP_FLAG_NAMES} whose bits are
 * all set, taken in table order and joined by `|` (trace_print_flags_seq()), then any bits
 * left over as `0x…`. E.g. `GFP_KERNEL|__GFP_COMP`.
 */
export function showGfpFlags(gfp: number): string {
  if (!gfp) return 'none';
  let flags = gfp >>> 0;
  const out: string[] = [];
  for (const [mask, name] of GFP_FLAG_NAMES) {
    if (flags === 0) break;
    if ((flags & mask) >>> 0 !== mask >>> 0) continue;
    out.push(name);
    flags = (flags & ~mask) >>> 0;
  }
  if (flags) out.push(`0x${flags.toString(16)}`);
  return out.join('|');
}
