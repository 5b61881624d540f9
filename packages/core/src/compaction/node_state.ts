/**
 * Per-machine (per-node) compaction state: the sysctls, kcompactd's pending request and
 * the flags the kswapd stand-in sets (pgdat's compaction fields).
 * @module
 */

import { checkMachine } from '../errors.js';
import type { Machine } from '../machine.js';
import { memoryExt } from '../memory/mem.js';
import { CompactionSysctls } from './sysctl.js';

/** Per-machine compaction state: sysctls, kcompactd and the kswapd stand-in. */
export class CompactionState {
  /** The sysctls. */
  readonly sysctl: CompactionSysctls;
  /** proactive_compact_trigger: a proactiveness write asked for a check now (6.x). */
  proactiveTrigger = false;
  /** kswapd is running (ends proactive runs with PARTIAL_SKIPPED). */
  kswapdRunning = false;
  /**
   * kcompactd_max_order: the largest order requested by wakeups, 0 when none is pending.
   * wakeup_kcompactd() records it even when it then declines to wake kcompactd.
   */
  kcompactdMaxOrder = 0;
  /**
   * wakeup_kcompactd() woke kcompactd (wake_up_interruptible(): some zone was suitable);
   * kcompactd does its work item on the next kcompactdRun. A request recorded without a
   * wakeup waits for a later wakeup or (6.x) the end of kcompactd's timed sleep.
   */
  kcompactdWoken = false;
  /**
   * kcompactd_highest_zoneidx: the tightest zone limit requested by wakeups (the lowest);
   * the highest populated zone (pgdat->nr_zones - 1) when none is.
   */
  kcompactdHighestZoneidx: number;
  /** Jiffies of the next proactive check. */
  nextProactiveCheck = 0;
  /**
   * kcompactd is in its wait (it entered it at boot): a wakeup finds it on the wait queue,
   * and going back to the wait (with the mm_compaction_kcompactd_sleep tracepoint) happens
   * only after something woke it.
   */
  kcompactdAsleep = true;
  /**
   * Its wait has a timeout: 6.x with compaction_proactiveness above 0 when it went to sleep
   * (MAX_SCHEDULE_TIMEOUT otherwise; v4.8 never has one). Undefined for the wait it entered
   * at boot: the sysctl as the first kcompactdRun finds it decides (settings made before
   * count as boot settings).
   */
  kcompactdTimed: boolean | undefined = undefined;

  /** pgdat->nr_zones - 1: the highest populated zone. */
  readonly topZoneidx: number;

  constructor(m: Machine) {
    this.sysctl = new CompactionSysctls(
      () => this.triggerProactive(m),
      m.profile.compaction.proactive === 'none' ? m.profile.name : undefined,
    );
    const zones = m.mem.populatedZones;
    this.topZoneidx = zones.length ? zones[zones.length - 1].idx : 0;
    this.kcompactdHighestZoneidx = this.topZoneidx;
  }

  /** compaction_proactiveness_sysctl_handler(): wake kcompactd for a proactive check. */
  private triggerProactive(m: Machine): void {
    if (m.profile.compaction.proactive === 'none' || this.proactiveTrigger) return;
    this.proactiveTrigger = true;
    const trace = m.mem.trace;
    if (m.profile.compaction.proactiveWriteTraced && trace.enabled.mm_compaction_wakeup_kcompactd) {
      trace.fire('mm_compaction_wakeup_kcompactd', {
        nid: 0,
        order: -1,
        highest_zoneidx: this.topZoneidx,
      });
    }
  }
}

/** Whether kcompactd going to sleep now waits with a timeout (see kcompactdTimed). */
export function kcompactdWaitTimed(m: Machine, st: CompactionState): boolean {
  return m.profile.compaction.proactive !== 'none' && st.sysctl.compactionProactiveness !== 0;
}

/** The `Memory.ext` key of a machine's compaction state. */
const STATE = {};

/**
 * The compaction state of a machine (its sysctls, kcompactd's pending request and timers),
 * created on first use.
 * @param m the machine (not `m.mem`)
 * @returns the machine's one compaction state
 * @throws {@link MopsError} `E_USAGE` when `m` is not a machine
 */
export function compactionState(m: Machine): CompactionState {
  checkMachine(m, 'compactionState');
  return memoryExt(m.mem, STATE, () => new CompactionState(m));
}
