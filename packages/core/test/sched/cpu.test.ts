import { describe, expect, it } from 'vitest';
import { MopsError } from '../../src/errors.js';
import {
  Deadlock,
  type KernelGen,
  RwLock,
  Scheduler,
  SpinLock,
  type Task,
} from '../../src/sched/index.js';

const SEEDS = 200;

/**
 * `holder` takes a spinlock and yields three points inside it; `other` records, at each of
 * its points, whether the holder was inside. Returns how many seeds saw `other` run inside.
 */
function interleavedInside(cpuOfOther: number, lock: 'spin' | 'rwlock' = 'spin'): number {
  let seen = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const s = new Scheduler({ seed });
    const spin = new SpinLock(s, 'L');
    const rw = new RwLock(s, 'R');
    let inside = false;
    let ranInside = false;
    s.spawn(
      'holder',
      function* () {
        if (lock === 'spin') yield* spin.lock();
        else yield* rw.writeLock();
        inside = true;
        for (let i = 0; i < 3; i++) yield { op: 'work' };
        inside = false;
        if (lock === 'spin') spin.unlock();
        else rw.writeUnlock();
      },
      { cpu: 0 },
    );
    s.spawn(
      'other',
      function* () {
        for (let i = 0; i < 6; i++) {
          if (inside) ranInside = true;
          yield { op: 'work' };
        }
      },
      { cpu: cpuOfOther },
    );
    s.runAll('random');
    if (ranInside) seen++;
  }
  return seen;
}

describe('tasks sharing a CPU (preemptible kernel)', () => {
  it('a task on the same CPU never runs while the other holds a spinlock', () => {
    expect(interleavedInside(1)).toBeGreaterThan(SEEDS / 4); // own CPUs: they interleave
    expect(interleavedInside(0)).toBe(0);
  });

  it('holding a rwlock_t for write keeps the CPU too', () => {
    expect(interleavedInside(1, 'rwlock')).toBeGreaterThan(SEEDS / 4);
    expect(interleavedInside(0, 'rwlock')).toBe(0);
  });

  it('outside atomic sections tasks of one CPU interleave (they are preempted)', () => {
    const s = new Scheduler();
    const order: string[] = [];
    for (const name of ['a', 'b'])
      s.spawn(
        name,
        function* () {
          for (let i = 0; i < 2; i++) {
            order.push(name);
            yield { op: 'work' };
          }
        },
        { cpu: 3 },
      );
    s.runAll('round-robin');
    expect(order).toEqual(['a', 'b', 'a', 'b']);
  });

  it('pickable() is runnable itself while every task has its own CPU', () => {
    const s = new Scheduler();
    s.spawn('a', function* () {});
    s.spawn('b', function* () {});
    expect(s.pickable()).toBe(s.runnable);
    s.spawn('c', function* () {}, { cpu: 0 });
    expect(s.pickable()).not.toBe(s.runnable);
    expect(s.pickable()).toEqual(s.runnable);
  });

  it('stepping a task kept off its CPU is an E_STATE error naming the holder and its lock', () => {
    const s = new Scheduler();
    const L = new SpinLock(s, 'zone->lock');
    const a = s.spawn(
      'a',
      function* () {
        yield* L.lock();
        yield { op: 'work' };
        L.unlock();
      },
      { cpu: 0 },
    );
    const b = s.spawn('b', function* () {}, { cpu: 0 });
    s.step(a); // the spin_lock point
    s.step(a); // takes the lock, yields 'work'
    expect(s.pickable()).toEqual([a]);
    expect(s.cpuHolderOf(b)).toBe(a);
    let err: unknown;
    try {
      s.step(b);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MopsError);
    expect((err as MopsError).code).toBe('E_STATE');
    expect((err as MopsError).message).toContain('cpu 0 is held by a/1 (holding zone->lock');
    s.step(a); // unlocks and ends
    expect(s.cpuHolderOf(b)).toBeUndefined();
    s.step(b);
    expect(b.state).toBe('done');
  });

  it('a task spinning for a lock keeps its CPU until it has taken the lock', () => {
    const s = new Scheduler();
    const L = new SpinLock(s, 'L');
    const log: string[] = [];
    const owner = s.spawn(
      'owner',
      function* () {
        yield* L.lock();
        yield { op: 'work' };
        L.unlock();
        log.push('owner unlocked');
      },
      { cpu: 1 },
    );
    const spinner = s.spawn(
      'spinner',
      function* () {
        yield* L.lock();
        log.push('spinner locked');
        L.unlock();
      },
      { cpu: 0 },
    );
    const bystander = s.spawn(
      'bystander',
      function* () {
        yield { op: 'work' };
        log.push('bystander ran');
      },
      { cpu: 0 },
    );
    s.step(owner);
    s.step(owner); // holds L
    s.step(spinner);
    s.step(spinner); // spins: blocked, on its CPU
    expect(spinner.state).toBe('blocked');
    expect(s.cpuHolderOf(bystander)).toBe(spinner);
    expect(s.pickable()).toEqual([owner]);
    s.step(owner); // unlocks, wakes the spinner, ends
    // Woken, the spinner still holds CPU 0 until it runs and takes the lock.
    expect(s.pickable()).toEqual([spinner]);
    s.runAll('random');
    expect(log).toEqual(['owner unlocked', 'spinner locked', 'bystander ran']);
  });

  it('a lockup on one CPU is reported as a Deadlock naming the CPU and its holder', () => {
    const warnings: string[] = [];
    const s = new Scheduler({ onWarning: (kind) => warnings.push(kind) });
    const L = new SpinLock(s, 'pool->lock');
    // a sleeps holding L (a bug: sleep in atomic), b on the same CPU spins for L, c wakes a:
    // a is runnable but b spins on CPU 0 with preemption off.
    const a = s.spawn(
      'a',
      function* () {
        yield* L.lock();
        yield { op: 'block', key: 'wq', what: 'wait_event(wq)' };
        L.unlock();
      },
      { cpu: 0 },
    );
    const b = s.spawn(
      'b',
      function* () {
        yield* L.lock();
        L.unlock();
      },
      { cpu: 0 },
    );
    const c = s.spawn('c', function* () {
      yield { op: 'wake_up' };
      s.wake('wq');
    });
    s.step(a);
    s.step(a); // a sleeps in atomic
    s.step(b);
    s.step(b); // b spins for L on CPU 0
    s.step(c);
    let err: unknown;
    try {
      s.step(c);
    } catch (e) {
      err = e;
    }
    expect(warnings).toContain('sleep_in_atomic');
    expect(err).toBeInstanceOf(Deadlock);
    const d = err as Deadlock;
    expect(d.message).toContain('no live task can run');
    const starved = d.entries.find((e) => e.task === a);
    expect(starved?.key).toBe('cpu:0');
    expect(starved?.holders).toEqual([b]);
    expect(d.dump).toContain('cpu 0 is held by b/2 (spinning in spin_lock(pool->lock))');
    const spinning = d.entries.find((e) => e.task === b);
    expect(spinning?.holders).toEqual([a]); // lockdep: a holds pool->lock
  });

  it('a bad CPU number is an E_RANGE error and spawns nothing', () => {
    const s = new Scheduler();
    for (const cpu of [-1, 1.5, Number.NaN]) {
      let err: unknown;
      try {
        s.spawn('t', function* () {}, { cpu });
      } catch (e) {
        err = e;
      }
      expect((err as MopsError).code).toBe('E_RANGE');
    }
    expect(s.tasks).toEqual([]);
  });

  it('a custom strategy may only pick a task that may run', () => {
    const s = new Scheduler();
    const L = new SpinLock(s, 'L');
    const tasks: Task[] = [];
    const body = function* (): KernelGen {
      yield* L.lock();
      yield { op: 'work' };
      L.unlock();
    };
    tasks.push(s.spawn('a', body, { cpu: 0 }), s.spawn('b', body, { cpu: 0 }));
    let calls = 0;
    expect(() =>
      s.runAll(() => {
        calls++;
        // Steps a into its critical section, then insists on b.
        return calls <= 2 ? tasks[0] : tasks[1];
      }),
    ).toThrow(/strategy picked b\/2, which is held off cpu 0/);
  });
});

describe('who holds a shared CPU', () => {
  it('a task that slept holding a spinlock gave its CPU up: woken, it waits for the task now on it', () => {
    const warnings: string[] = [];
    const s = new Scheduler({ onWarning: (kind) => warnings.push(kind) });
    const S1 = new SpinLock(s, 'S1');
    const S2 = new SpinLock(s, 'S2');
    const log: string[] = [];
    const a = s.spawn(
      'a',
      function* () {
        yield* S1.lock();
        yield { op: 'block', key: 'wq', what: 'wait_event(wq)' }; // a bug: sleeps in atomic
        log.push('a resumed');
        S1.unlock();
      },
      { cpu: 0 },
    );
    const b = s.spawn(
      'b',
      function* () {
        yield* S2.lock();
        yield { op: 'work' };
        log.push('b in S2');
        yield { op: 'work' };
        S2.unlock();
        log.push('b unlocked');
      },
      { cpu: 0 },
    );
    const c = s.spawn('c', function* () {
      yield { op: 'wake_up' };
      s.wake('wq');
    });
    s.step(a);
    s.step(a); // a sleeps holding S1: cpu 0 is free
    expect(a.cpuHeld).toBe(false);
    s.step(b);
    s.step(b); // b holds S2 on cpu 0
    s.step(c);
    s.step(c); // wakes a: runnable, S1 held, but b is on cpu 0 with preemption off
    expect(s.cpuHolderOf(a)).toBe(b);
    expect(s.pickable()).toEqual([b]);
    s.runAll('random');
    expect(log).toEqual(['b in S2', 'b unlocked', 'a resumed']);
    expect(warnings).toEqual(['sleep_in_atomic', 'scheduling_while_atomic']);
  });

  it('a default CPU is a CPU of its own, the lowest no live task runs on, given ones included', () => {
    const s = new Scheduler();
    const a = s.spawn('a', function* () {}, { cpu: 1 });
    const b = s.spawn('b', function* () {});
    const c = s.spawn('c', function* () {});
    expect([a.cpu, b.cpu, c.cpu]).toEqual([1, 0, 2]);
    expect(s.pickable()).toBe(s.runnable); // nobody shares
  });

  it('a work item queued by a task runs on that task’s CPU (per-CPU workqueue)', () => {
    const s = new Scheduler();
    const L = new SpinLock(s, 'L');
    let inside = false;
    let workerRanInside = false;
    let workerCpu = -1;
    s.spawn(
      'queuer',
      function* () {
        yield* L.lock();
        inside = true;
        s.queueWork('kworker', function* () {
          workerCpu = s.current?.cpu ?? -1;
          if (inside) workerRanInside = true;
          yield { op: 'work' };
          if (inside) workerRanInside = true;
        });
        for (let i = 0; i < 4; i++) yield { op: 'work' };
        inside = false;
        L.unlock();
      },
      { cpu: 5 },
    );
    s.spawn('other', function* () {
      yield { op: 'work' };
    });
    s.runAll('round-robin');
    expect(workerCpu).toBe(5);
    expect(workerRanInside).toBe(false);
  });

  it('a spawn refused for a bad CPU uses up no task id', () => {
    const s = new Scheduler();
    expect(() => s.spawn('bad', function* () {}, { cpu: -3 })).toThrow(/cpu must be/);
    const t = s.spawn('t', function* () {});
    expect([t.id, t.cpu]).toEqual([1, 0]);
  });
});
