/**
 * Zone layouts: which pfns each zone spans (arch/x86/mm/init.c zone_sizes_init).
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
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

/**
 * Checks a span list: an array of spans with integer fields, zone indices valid and
 * increasing, spans not overlapping and within `nrPages`, `present` within the span, and
 * some memory present. Throws E_CONFIG naming `zones`.
 */
export function checkSpans(spans: readonly ZoneSpan[], nrPages: number): void {
  const bad = (why: string): never => {
    throw new MopsError('E_CONFIG', `zones: ${why}`, 'zones');
  };
  if (!Array.isArray(spans))
    bad(`expected a layout name or an array of zone spans, got ${valueKind(spans)}`);
  let end = 0;
  let idx = -1;
  let present = 0;
  for (const [i, s] of spans.entries()) {
    if (typeof s !== 'object' || s === null)
      bad(`span ${i} must be { idx, startPfn, spanned, present }, got ${valueKind(s)}`);
    for (const f of ['idx', 'startPfn', 'spanned', 'present'] as const)
      if (!Number.isInteger(s[f]) || s[f] < 0)
        bad(`span ${i}: ${f} must be a non-negative integer, got ${valueKind(s[f])}`);
    if (s.idx >= MAX_NR_ZONES) bad(`zone index ${s.idx} is not 0..${MAX_NR_ZONES - 1}`);
    if (s.idx <= idx)
      bad(
        `zone ${ZONE_NAMES[s.idx]} comes after zone ${ZONE_NAMES[idx]}: spans go by increasing zone index, each zone once`,
      );
    if (s.startPfn < end || s.startPfn + s.spanned > nrPages || s.present > s.spanned)
      bad(
        `zone ${ZONE_NAMES[s.idx]} [${s.startPfn}, +${s.spanned}) with ${s.present} present overlaps another zone, leaves the machine, or has more pages present than spanned`,
      );
    end = s.startPfn + s.spanned;
    idx = s.idx;
    present += s.present;
  }
  if (present === 0) bad('no zone has any page present');
}
