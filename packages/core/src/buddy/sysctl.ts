/**
 * The page allocator's sysctls as machine settings (mm/page_alloc.c):
 * vm.watermark_boost_factor and vm.defrag_mode.
 * @module
 */

import { MopsError, valueKind } from '../errors.js';
import type { Memory } from '../memory/mem.js';

/**
 * Sets vm.watermark_boost_factor (an integer ≥ 0; v4.8 has no such sysctl).
 * @param mem the machine's memory (`m.mem`)
 * @param factor the cap on a zone's watermark boost, in 1/10000 of its high watermark
 *   (15000: 150 %); 0 turns boosting off
 * @throws {@link MopsError} `E_USAGE` in v4.8; `E_RANGE` for a value outside
 *   0..2147483647
 */
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

/**
 * Sets vm.defrag_mode (0 or 1; the sysctl exists from 6.15, i.e. in v6.17).
 * @param mem the machine's memory (`m.mem`)
 * @param value 1 to keep allocations from falling back into other migratetypes' pageblocks
 *   until reclaim and compaction failed; 0 for the default
 * @throws {@link MopsError} `E_USAGE` before v6.17; `E_RANGE` for a value other than 0 or 1
 */
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
