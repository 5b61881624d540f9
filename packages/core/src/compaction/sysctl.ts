/**
 * The compaction sysctls as machine settings (kernel/sysctl.c, mm/compaction.c).
 * @module
 */

import { MopsError } from '../errors.js';
import { DEFAULT_COMPACTION_PROACTIVENESS, DEFAULT_EXTFRAG_THRESHOLD } from './metrics.js';

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new MopsError('E_RANGE', `vm.${name} must be an integer ${lo}..${hi}, got ${v}`, name);
  return v;
}

/** vm.compaction_proactiveness, vm.extfrag_threshold, vm.compact_unevictable_allowed. */
export class CompactionSysctls {
  private proactiveness = DEFAULT_COMPACTION_PROACTIVENESS;
  private threshold = DEFAULT_EXTFRAG_THRESHOLD;
  private unevictable = 1;

  /** @param onProactivenessWrite called after a write of a non-zero proactiveness */
  constructor(private readonly onProactivenessWrite?: () => void) {}

  /**
   * vm.compaction_proactiveness (0..100, default 20). Writing a non-zero value asks
   * kcompactd for a proactive check at once (6.x).
   */
  get compactionProactiveness(): number {
    return this.proactiveness;
  }
  set compactionProactiveness(v: number) {
    this.proactiveness = checkInt('compaction_proactiveness', v, 0, 100);
    if (v !== 0) this.onProactivenessWrite?.();
  }

  /** vm.extfrag_threshold (0..1000, default 500). */
  get extfragThreshold(): number {
    return this.threshold;
  }
  set extfragThreshold(v: number) {
    this.threshold = checkInt('extfrag_threshold', v, 0, 1000);
  }

  /** vm.compact_unevictable_allowed (0 or 1, default 1). */
  get compactUnevictableAllowed(): number {
    return this.unevictable;
  }
  set compactUnevictableAllowed(v: number) {
    this.unevictable = checkInt('compact_unevictable_allowed', v, 0, 1);
  }
}
