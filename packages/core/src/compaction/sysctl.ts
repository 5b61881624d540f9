/**
 * The compaction sysctls as machine settings (kernel/sysctl.c, mm/compaction.c).
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import { DEFAULT_COMPACTION_PROACTIVENESS, DEFAULT_EXTFRAG_THRESHOLD } from './metrics.js';

function checkInt(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new MopsError(
      'E_RANGE',
      `vm.${name} must be an integer ${lo}..${hi}, got ${valueKind(v)}`,
      name,
    );
  return v;
}

/** vm.compaction_proactiveness, vm.extfrag_threshold, vm.compact_unevictable_allowed. */
export class CompactionSysctls {
  private proactiveness = DEFAULT_COMPACTION_PROACTIVENESS;
  private threshold = DEFAULT_EXTFRAG_THRESHOLD;
  private unevictable = 1;

  /**
   * @param onProactivenessWrite called after a write of a non-zero proactiveness
   * @param withoutProactive the name of a release without proactive compaction (v4.8), if
   * the machine runs one
   */
  constructor(
    private readonly onProactivenessWrite?: () => void,
    private readonly withoutProactive?: string,
  ) {
    if (withoutProactive !== undefined) this.proactiveness = 0;
  }

  /**
   * vm.compaction_proactiveness (0..100, default 20). Writing a non-zero value asks
   * kcompactd for a proactive check at once (6.x).
   *
   * A release without proactive compaction (v4.8, before 5.9) has no such sysctl: it reads
   * 0, proactive compaction off, which is how that release behaves; writing 0 is accepted
   * (so that code zeroing it runs under every profile) and any other value is `E_USAGE`.
   */
  get compactionProactiveness(): number {
    return this.proactiveness;
  }
  set compactionProactiveness(v: number) {
    const name = 'compaction_proactiveness';
    if (this.withoutProactive !== undefined && v !== 0)
      throw new MopsError(
        'E_USAGE',
        `vm.${name} does not exist in ${this.withoutProactive} (proactive compaction came in 5.9), got ${valueKind(v)}; only 0, proactive compaction off, may be written`,
        name,
      );
    this.proactiveness = checkInt(name, v, 0, 100);
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
