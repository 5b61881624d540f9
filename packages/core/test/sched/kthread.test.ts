/**
 * Scheduler.asKthread: code run as a kernel thread for the trace keeps one pid per name,
 * shows on a CPU no live task holds, and leaves nothing behind.
 */
import { describe, expect, it } from 'vitest';
import { createMachine, traceRecorder } from '../../src/index.js';

describe('asKthread', () => {
  it('one pid per name, a free CPU, preemption on; the context ends with the call', () => {
    const m = createMachine({ memory: '16M', profile: 'v6.3' });
    const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
    const fire = () =>
      m.trace.fire('mm_compaction_wakeup_kcompactd', { nid: 0, order: 2, highest_zoneidx: 1 });
    const t = m.sched.spawn('worker', function* () {
      yield { op: 'x' };
      m.sched.asKthread('kswapd0', fire);
      fire();
    });
    m.sched.runToEnd(t);
    expect(m.sched.asKthread('kswapd0', () => 7)).toBe(7);
    m.sched.asKthread('kswapd0', fire);
    rec.stop();
    const ctx = rec.lines.map((l) => /^\s*(\S+-\d+)\s+\[(\d{3})\]/.exec(l)?.slice(1).join(' '));
    expect(ctx).toEqual([
      `kswapd0-${t.id + 1} 001`,
      `worker-${t.id} 000`,
      `kswapd0-${t.id + 1} 000`,
    ]);
    expect(m.sched.kthread).toBeUndefined();
    // A throw ends the context too.
    expect(() =>
      m.sched.asKthread('kswapd0', () => {
        throw new Error('x');
      }),
    ).toThrow('x');
    expect(m.sched.kthread).toBeUndefined();
  });

  it('shows on a CPU the machine has (#P): with every CPU held, the highest', () => {
    const m = createMachine({ memory: '16M', profile: 'v6.3' });
    const rec = traceRecorder(m, { events: ['mm_compaction_wakeup_kcompactd'] });
    const a = m.sched.spawn('a', function* () {
      yield { op: 'x' };
      m.sched.asKthread('kswapd0', () =>
        m.trace.fire('mm_compaction_wakeup_kcompactd', { nid: 0, order: 2, highest_zoneidx: 1 }),
      );
    });
    m.sched.spawn('b', function* () {
      yield { op: 'y' };
    });
    m.sched.runAll('round-robin');
    rec.stop();
    expect(a.cpu).toBe(0);
    expect(rec.lines[0]).toMatch(/^\s*kswapd0-\d+\s+\[001\]/);
    expect(m.sched.nrCpus).toBe(2);
    expect(rec.text()).toMatch(/#P:2\n/);
  });
});
