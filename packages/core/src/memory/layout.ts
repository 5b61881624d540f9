/**
 * Zone layouts: which pfns each zone spans (arch/x86/mm/init.c zone_sizes_init).
 * @module
 */

import { MopsError } from '../errors.js';
import { MAX_NR_ZONES, ZONE, ZONE_NAMES } from './constants.js';

/** One zone's span and holes, as the machine builder consumes it. */
export interface ZoneSpan {
  /** Zone index (`ZONE.*`). */
  readonly idx: number;
  /** First pfn. */
  readonly startPfn: number;
  /** Pages spanned. */
  readonly spanned: number;
  /** Pages present (the rest of the span are holes, from its end backwards). */
  readonly present: number;
}

/** The layouts mops knows. */
export type ZoneLayoutName = 'x86_64' | 'normal-only';

/** Layout names, for error messages. */
export const ZONE_LAYOUTS: readonly ZoneLayoutName[] = ['x86_64', 'normal-only'];

const DMA_END = 4096; // 16 MiB
const DMA32_END = 1 << 20; // 4 GiB

/**
 * x86-64: DMA below 16 MiB (pfn 0 is firmware-reserved, so DMA starts at pfn 1), DMA32
 * below 4 GiB, Normal above; memory is contiguous from pfn 0. `normal-only` puts every page
 * in one Normal zone starting at pfn 0 (small synthetic machines for scenario tests). As in
 * the kernel for such a zone, its zeroed cached free-scanner position (pfn 0) lies inside
 * it, so the first compaction that starts from the cached positions (kcompactd, direct
 * compaction below SYNC_FULL) finds the scanners met and only resets them.
 */
export function zoneLayout(name: string, nrPages: number): ZoneSpan[] {
  if (name === 'normal-only') {
    return [{ idx: ZONE.NORMAL, startPfn: 0, spanned: nrPages, present: nrPages }];
  }
  if (name !== 'x86_64')
    throw new MopsError(
      'E_CONFIG',
      `zones: unknown zone layout '${name}'; choose one of ${ZONE_LAYOUTS.join(', ')}`,
      'zones',
    );
  const spans: ZoneSpan[] = [];
  const dmaEnd = Math.min(nrPages, DMA_END);
  spans.push({ idx: ZONE.DMA, startPfn: 1, spanned: dmaEnd - 1, present: dmaEnd - 1 });
  if (nrPages > DMA_END) {
    const end = Math.min(nrPages, DMA32_END);
    spans.push({
      idx: ZONE.DMA32,
      startPfn: DMA_END,
      spanned: end - DMA_END,
      present: end - DMA_END,
    });
  }
  if (nrPages > DMA32_END)
    spans.push({
      idx: ZONE.NORMAL,
      startPfn: DMA32_END,
      spanned: nrPages - DMA32_END,
      present: nrPages - DMA32_END,
    });
  return spans;
}

/** Checks a span list: indices valid, ordered, not overlapping, within `nrPages`. */
export function checkSpans(spans: readonly ZoneSpan[], nrPages: number): void {
  let end = 0;
  for (const s of spans) {
    if (s.idx < 0 || s.idx >= MAX_NR_ZONES)
      throw new MopsError('E_CONFIG', `zones: zone index ${s.idx} is not 0..4`, 'zones');
    if (s.startPfn < end || s.startPfn + s.spanned > nrPages || s.present > s.spanned)
      throw new MopsError(
        'E_CONFIG',
        `zones: zone ${ZONE_NAMES[s.idx]} [${s.startPfn}, +${s.spanned}) overlaps another zone or leaves the machine`,
        'zones',
      );
    end = s.startPfn + s.spanned;
  }
}
