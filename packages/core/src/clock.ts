/**
 * The virtual clock: jiffies at HZ = 250. Nothing in the emulated world reads real time.
 * @module
 */

/** Ticks per second (CONFIG_HZ). */
export const HZ = 250;

/** A machine's virtual clock. */
export class Clock {
  /** Ticks since boot. */
  jiffies = 0;

  /** Advances the clock by `ticks`. */
  tick(ticks = 1): void {
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
