/**
 * The virtual clock: jiffies at HZ = 250. Nothing in the emulated world reads real time.
 * @module
 */

import { MopsError, valueKind } from './errors.js';

/** Ticks per second (CONFIG_HZ). */
export const HZ = 250;

/** A machine's virtual clock. */
export class Clock {
  /** Ticks since boot. */
  jiffies = 0;

  /** Advances the clock by `ticks`, a non-negative integer (time does not go back). */
  tick(ticks = 1): void {
    if (!Number.isSafeInteger(ticks) || ticks < 0)
      throw new MopsError(
        'E_RANGE',
        `the clock advances by a non-negative integer of jiffies, got ${valueKind(ticks)}`,
        'ticks',
      );
    this.jiffies += ticks;
  }

  /** msecs_to_jiffies(), rounding up. */
  static msecsToJiffies(ms: number): number {
    return Math.ceil((ms * HZ) / 1000);
  }

  /** Milliseconds since boot. */
  get msecs(): number {
    return (this.jiffies * 1000) / HZ;
  }
}
