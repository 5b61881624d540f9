/**
 * The page allocator's sysctls as machine settings (mm/page_alloc.c):
 * vm.watermark_boost_factor and vm.defrag_mode.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import type { Memory } from '../memory/mem.js';

/** Sets vm.watermark_boost_factor (an integer ≥ 0; v4.8 has no such sysctl). */
export function setWatermarkBoostFactor(mem: Memory, factor: number): void {
  if (mem.profile.watermarkBoost === 'none')
    throw new MopsError(
      'E_USAGE',
      `vm.watermark_boost_factor does not exist in ${mem.profile.name} (watermark boosting came in 5.0)`,
      'watermarkBoostFactor',
    );
  if (!Number.isInteger(factor) || factor < 0 || factor > 0x7fffffff)
    throw new MopsError(
      'E_RANGE',
      `vm.watermark_boost_factor must be an integer 0..2147483647, got ${valueKind(factor)}`,
      'watermarkBoostFactor',
    );
  mem.watermarkBoostFactor = factor;
}

/** Sets vm.defrag_mode (0 or 1; the sysctl exists from 6.15, i.e. in v6.17). */
export function setDefragMode(mem: Memory, value: number): void {
  if (!mem.profile.hasDefragMode)
    throw new MopsError(
      'E_USAGE',
      `vm.defrag_mode does not exist in ${mem.profile.name} (it came in 6.15)`,
      'defragMode',
    );
  if (value !== 0 && value !== 1)
    throw new MopsError(
      'E_RANGE',
      `vm.defrag_mode must be 0 or 1, got ${valueKind(value)}`,
      'defragMode',
    );
  mem.defragMode = value === 1;
}
