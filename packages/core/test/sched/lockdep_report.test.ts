import { describe, expect, it } from 'vitest';
import { PROFILE_NAMES } from '../../src/profile.js';
import { type KernelGen, Mutex, PF_KTHREAD, Scheduler, SpinLock } from '../../src/sched/index.js';
import { smallMachine } from '../helpers.js';

/** A task that takes `x` then `y` and drops both. */
const nest = (x: Mutex, y: Mutex) =>
  function* (): KernelGen {
    yield* x.lock();
    yield* y.lock();
    y.unlock();
    x.unlock();
  };

/** The first three lines of each report kind, run on a scheduler. */
function titles(s: Scheduler): Record<string, string[]> {
  const A = new Mutex(s, 'A');
  const B = new Mutex(s, 'B');
  s.run(nest(A, B));
  s.run(nest(B, A)); // circular
  const x = new Mutex(s, 'same');
  const y = new Mutex(s, 'same');
  s.run(nest(x, y)); // recursive
  s.run(function* () {
    if (s.preemptible) yield { op: 'up' };
    s.lockdep.release(s.current, 'sem:x#1'); // unbalanced
  });
  const leaked = new Mutex(s, 'leaked');
  s.run(function* () {
    yield* leaked.lock(); // held_at_exit
  });
  const out: Record<string, string[]> = {};
  for (const r of s.lockdep.reports) out[r.kind] = r.text.split('\n').slice(0, 3);
  return out;
}

describe('lockdep report texts', () => {
  it('v4.8 titles are bracketed INFO/BUG lines between rules of that era', () => {
    const m = smallMachine('4M', { profile: 'v4.8' });
    expect(m.sched.lockdep.bracketedTitles).toBe(true);
    expect(titles(m.sched)).toEqual({
      circular: [
        '='.repeat(54),
        '[ INFO: possible circular locking dependency detected ]',
        '-'.repeat(55),
      ],
      recursive: ['='.repeat(45), '[ INFO: possible recursive locking detected ]', '-'.repeat(45)],
      unbalanced: ['='.repeat(37), '[ BUG: bad unlock balance detected! ]', '-'.repeat(37)],
      held_at_exit: [
        '='.repeat(48),
        '[ BUG: lock held when returning to user space! ]',
        '-'.repeat(48),
      ],
    });
  });

  it.each(PROFILE_NAMES.filter((p) => p !== 'v4.8'))('%s titles are WARNING lines', (profile) => {
    const m = smallMachine('4M', { profile });
    expect(m.sched.lockdep.bracketedTitles).toBe(false);
    expect(titles(m.sched)).toEqual({
      circular: [
        '='.repeat(54),
        'WARNING: possible circular locking dependency detected',
        '-'.repeat(54),
      ],
      recursive: ['='.repeat(44), 'WARNING: possible recursive locking detected', '-'.repeat(44)],
      unbalanced: ['='.repeat(37), 'WARNING: bad unlock balance detected!', '-'.repeat(37)],
      held_at_exit: [
        '='.repeat(48),
        'WARNING: lock held when returning to user space!',
        '-'.repeat(48),
      ],
    });
  });

  it.each(PROFILE_NAMES)(
    '%s: a kernel thread (PF_KTHREAD) that exits holding a lock still has locks held; it does not return to user space',
    (profile) => {
      const m = smallMachine('4M', { profile });
      const s = m.sched;
      s.runToEnd(
        s.spawn(
          'kcompactd0',
          function* (): KernelGen {
            yield* new Mutex(s, 'drv->lock').lock();
          },
          { flags: PF_KTHREAD },
        ),
      );
      const [a] = s.lockdep.reports;
      const title =
        profile === 'v4.8'
          ? ['='.repeat(37), '[ BUG: kcompactd0/1 still has locks held! ]', '-'.repeat(37)]
          : ['='.repeat(36), 'WARNING: kcompactd0/1 still has locks held!', '-'.repeat(36)];
      expect(a.kind).toBe('held_at_exit');
      expect(a.text.split('\n').slice(0, 4)).toEqual([...title, '1 lock held by kcompactd0/1:']);
      expect(a.text).not.toContain('leaving the kernel');
    },
  );

  it.each(PROFILE_NAMES)(
    '%s: a work item that comes back holding a lock, or with preemption off, is the workqueue’s BUG, not an exit; with lockdep off only the preempt count shows',
    (profile) => {
      const m = smallMachine('4M', { profile });
      const s = m.sched;
      const mx = new Mutex(s, 'drv->work_mutex');
      const sp = new SpinLock(s, 'drv->work_lock');
      s.queueWork('kworker/0:1', function* drv_work_fn(): KernelGen {
        yield* mx.lock();
      });
      s.queueWork('kworker/0:2', () => sp.lock(), 'drv_other_fn');
      s.runAll();
      s.lockdep.enabled = false;
      s.queueWork('kworker/0:3', () => new SpinLock(s, 'x').lock(), 'drv_quiet_fn');
      s.queueWork('kworker/0:4', () => new Mutex(s, 'y').lock(), 'drv_unseen_fn');
      s.runAll();
      expect(s.lockdep.reports).toEqual([]);
      const texts = s.warnings.filter((w) => w.kind === 'workqueue_leak').map((w) => w.text);
      const v69 = profile === 'v6.17';
      const head = (comm: string, pid: number, preempt: number, locks: number, fn: string) =>
        v69
          ? [
              `BUG: workqueue leaked atomic, lock or RCU: ${comm}[${pid}]`,
              `     preempt=0x0000000${preempt} lock=0->${locks} RCU=0->0 workfn=${fn}`,
            ]
          : [
              `BUG: workqueue leaked lock or atomic: ${comm}/0x0000000${preempt}/${pid}`,
              `     last function: ${fn}`,
            ];
      expect(texts.map((t) => t.split('\n'))).toEqual([
        [
          ...head('kworker/0:1', 1, 0, 1, 'drv_work_fn'),
          '1 lock held by kworker/0:1/1:',
          ` #0: (drv->work_mutex) [${mx.key}] {write}`,
        ],
        [
          ...head('kworker/0:2', 2, 1, 1, 'drv_other_fn'),
          '1 lock held by kworker/0:2/2:',
          ` #0: (drv->work_lock) [${sp.key}] {write}`,
        ],
        [...head('kworker/0:3', 3, 1, 0, 'drv_quiet_fn'), 'INFO: lockdep is turned off.'],
      ]);
    },
  );

  it('an ABBA lists the existing chain in reverse order, from the held class down to #0, the new one', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    s.run(nest(A, B));
    s.run(nest(B, A));
    const [r] = s.lockdep.reports;
    expect(r.text).toContain(
      [
        'which lock already depends on the new lock.',
        '',
        '',
        'the existing dependency chain (in reverse order) is:',
        '',
        '-> #1 (B):',
        '       main/1: mutex_lock(B) while holding A',
        '',
        '-> #0 (A):',
        '       main/2: mutex_lock(A) while holding B',
        '',
        'other info that might help us debug this:',
        '',
        ' Possible unsafe locking scenario:',
        '',
      ].join('\n'),
    );
    expect(r.text).not.toContain('closes the cycle');
    expect(r.text).not.toContain('Chain exists of:');
  });

  it('a cycle of three classes prints "Chain exists of" new --> parent --> held before the scenario', () => {
    const s = new Scheduler();
    const [A, B, C] = ['A', 'B', 'C'].map((n) => new Mutex(s, n));
    s.run(nest(A, B));
    s.run(nest(B, C));
    s.run(nest(C, A));
    const [r] = s.lockdep.reports;
    const lines = r.text.split('\n');
    const at = lines.indexOf('-> #2 (C):');
    expect(lines.slice(at, at + 9)).toEqual([
      '-> #2 (C):',
      '       main/2: mutex_lock(C) while holding B',
      '',
      '-> #1 (B):',
      '       main/1: mutex_lock(B) while holding A',
      '',
      '-> #0 (A):',
      '       main/3: mutex_lock(A) while holding C',
      '',
    ]);
    expect(r.text).toContain(
      [
        'other info that might help us debug this:',
        '',
        'Chain exists of:',
        '  A --> B --> C',
        '',
        ' Possible unsafe locking scenario:',
        '',
        '       CPU0                    CPU1',
        '       ----                    ----',
        '  lock(C);',
        '                               lock(B);',
        '                               lock(C);',
        '  lock(A);',
      ].join('\n'),
    );
  });

  it('a recursive lock of the same instance also says "May be due to missing lock nesting notation"', () => {
    const s = new Scheduler();
    s.run(function* () {
      if (s.preemptible) yield { op: 'up' };
      s.lockdep.acquire(s.current, 'sem', 'sem:x#1', 0, 'down');
      s.lockdep.acquire(s.current, 'sem', 'sem:x#1', 0, 'down');
      s.lockdep.release(s.current, 'sem:x#1');
      s.lockdep.release(s.current, 'sem:x#1');
    });
    const [r] = s.lockdep.reports;
    expect(r.kind).toBe('recursive');
    expect(r.text).toContain(' (sem) [sem:x#1] (the same lock)');
    expect(r.text).toContain(
      [
        ' *** DEADLOCK ***',
        '',
        ' May be due to missing lock nesting notation',
        '',
        '1 lock held by main/1:',
      ].join('\n'),
    );
  });

  it('bad unlock balance: "other info that might help us debug this:" precedes "no locks held by"', () => {
    const s = new Scheduler();
    s.run(function* () {
      if (s.preemptible) yield { op: 'up' };
      s.lockdep.release(s.current, 'sem:x#1');
    });
    const [r] = s.lockdep.reports;
    expect(r.text.split('\n').slice(3)).toEqual([
      'main/1 is trying to release lock (sem:x#1) at:',
      'but there are no more locks to release!',
      '',
      'other info that might help us debug this:',
      'no locks held by main/1.',
    ]);
  });
});
