import { describe, expect, it } from 'vitest';
import { MmBug, MopsError } from '../../src/errors.js';
import { createMachine, giveWay } from '../../src/index.js';
import {
  CPU_RELAX,
  cpuRelax,
  isCpuRelax,
  type KernelGen,
  Livelock,
  Mutex,
  Scheduler,
  SpinLock,
  type Strategy,
  type Task,
} from '../../src/sched/index.js';

/** A scheduling point followed by a trivial primitive, as kernel code writes it. */
function* pt(s: Scheduler, op: string): KernelGen {
  if (s.preemptible) yield { op };
}

/** Bound on the rounds of every spin below: a spin that never ends fails instead of hanging. */
const ROUNDS = 10_000;

/**
 * A spin-wait on `flag.set`, as a driver writes one: each failed round ends at cpu_relax.
 * Returns the number of rounds that failed; throws after {@link ROUNDS} of them.
 */
function spinOn(s: Scheduler, flag: { set: boolean }, pfn?: number): () => KernelGen<number> {
  return function* () {
    let rounds = 0;
    for (;;) {
      yield* pt(s, 'load_flag');
      if (flag.set) return rounds;
      if (++rounds > ROUNDS) throw new Error(`spun ${ROUNDS} rounds`);
      yield* cpuRelax(pfn, 'flag clear: repeat');
    }
  };
}

/** Every step as `name:op`. */
function trace(s: Scheduler): string[] {
  const out: string[] = [];
  s.onStep = (t, p) => {
    out.push(`${t.name}:${p.op}`);
  };
  return out;
}

const NAMED: readonly Strategy[] = ['run-to-completion', 'round-robin', 'random'];

describe('the spin-wait point', () => {
  it('cpuRelax yields one cpu_relax point, even from a task running alone', () => {
    expect([...cpuRelax()]).toEqual([{ op: CPU_RELAX }]);
    expect([...cpuRelax(3, 'frozen')]).toEqual([{ op: 'cpu_relax', pfn: 3, note: 'frozen' }]);
    expect(isCpuRelax({ op: 'cpu_relax' })).toBe(true);
    expect(isCpuRelax({ op: 'folio_try_get' })).toBe(false);
  });
});

describe('giveWay: who may run after a step that ended at cpu_relax', () => {
  function three(): Task[] {
    const s = new Scheduler();
    return ['a', 'b', 'c'].map((n) => s.spawn(n, spinOn(s, { set: false })));
  }

  it('the others, in runq order, put in the buffer given', () => {
    const [a, b, c] = three();
    const buf: Task[] = [c, c, c, c];
    expect(giveWay([a, b, c], b, 1, buf)).toBe(buf);
    expect(buf).toEqual([a, c]);
    // However many rounds the spinner ran: another task may change what it waits for.
    expect(giveWay([a, b, c], a, 5, buf)).toEqual([b, c]);
    // A spinner no longer pickable (blocked, held off its CPU) takes nothing away.
    expect(giveWay([a, c], b, 3, buf)).toEqual([a, c]);
  });

  it('alone: the spinner once more, then undefined (a Livelock is due), thrown by nobody', () => {
    const [a] = three();
    const runq = [a];
    const buf: Task[] = [];
    expect(giveWay(runq, a, 1, buf)).toBe(runq);
    expect(buf).toEqual([]);
    expect(giveWay(runq, a, 2, buf)).toBeUndefined();
    expect(giveWay(runq, a, 7, buf)).toBeUndefined();
  });
});

describe('runAll: a spinner gives way to the task it waits for', () => {
  it('run-to-completion runs the task that sets the flag, then the spinner', () => {
    const s = new Scheduler();
    const flag = { set: false };
    const log = trace(s);
    const spin = s.spawn('spinner', spinOn(s, flag));
    s.spawn('setter', function* () {
      yield* pt(s, 'a');
      yield* pt(s, 'b');
      flag.set = true;
    });
    s.runAll('run-to-completion');
    expect(spin.state).toBe('done');
    expect(spin.result).toBe(1);
    // The spinner's last round runs alone: it yields nothing.
    expect(log).toEqual(['spinner:load_flag', 'spinner:cpu_relax', 'setter:a', 'setter:b']);
  });

  it('run-to-completion: the other task runs until it blocks, then the spinner resumes', () => {
    const s = new Scheduler();
    const flag = { set: false };
    const log = trace(s);
    // The spinner sees the flag, then wakes the setter, which blocked after setting it.
    const spin = s.spawn('spinner', function* () {
      const rounds = yield* spinOn(s, flag)();
      yield* pt(s, 'wake');
      s.wake('ack');
      return rounds;
    });
    const setter = s.spawn('setter', function* () {
      yield* pt(s, 'set');
      flag.set = true;
      yield { op: 'block', key: 'ack', what: 'the spinner seeing the flag' };
      yield* pt(s, 'after');
    });
    s.runAll();
    expect(spin.result).toBe(1);
    expect(setter.state).toBe('done');
    expect(log).toEqual([
      'spinner:load_flag',
      'spinner:cpu_relax',
      'setter:set',
      'setter:block',
      'spinner:load_flag',
      'spinner:wake',
    ]);
  });

  it('run-to-completion: a spinner after the setter by id waits for it alike', () => {
    const s = new Scheduler();
    const flag = { set: false };
    // The first task waits for the third; the second runs its turn in between.
    const spin = s.spawn('spinner', spinOn(s, flag));
    const middle = s.spawn('middle', function* () {
      yield* pt(s, 'm');
      return 'middle';
    });
    s.spawn('setter', function* () {
      yield* pt(s, 's');
      flag.set = true;
    });
    expect(s.runAll()).toBeGreaterThan(0);
    expect(middle.result).toBe('middle');
    expect(spin.result).toBe(2);
  });

  it('Machine.run: a driver spinning on a flag its worker sets finishes', () => {
    const m = createMachine({ memory: '4M', profile: 'v6.3' });
    const flag = { set: false };
    const rounds = m.run(function* () {
      m.sched.spawn('worker', function* () {
        yield* pt(m.sched, 'work');
        flag.set = true;
      });
      return yield* spinOn(m.sched, flag)();
    });
    expect(rounds).toBe(1);
    expect(m.mem.halted).toBeUndefined();
  });

  it.each(['round-robin', 'random'] as const)(
    '%s never runs the spinner right after its cpu_relax while another task may run',
    (strategy) => {
      for (let seed = 1; seed <= 20; seed++) {
        const s = new Scheduler({ seed });
        const flag = { set: false };
        const steps: { task: Task; op: string; others: number }[] = [];
        s.onStep = (t, p) => {
          steps.push({ task: t, op: p.op, others: s.pickable().filter((o) => o !== t).length });
        };
        const spin = s.spawn('spinner', spinOn(s, flag));
        s.spawn('worker', function* () {
          for (let i = 0; i < 20; i++) yield* pt(s, `w${i}`);
          flag.set = true;
        });
        s.runAll(strategy);
        expect(spin.state).toBe('done');
        // The spinner does not wait out the worker's 20 points twice over.
        expect(spin.result as number).toBeLessThanOrEqual(21);
        for (let i = 0; i + 1 < steps.length; i++) {
          const { task, op, others } = steps[i];
          if (op === CPU_RELAX && others > 0) expect(steps[i + 1].task).not.toBe(task);
        }
      }
    },
  );
});

describe('runAll: a spinner no other task can help is a Livelock', () => {
  it.each(NAMED)('%s: a lone spinner runs one more round alone, then Livelock', (strategy) => {
    const s = new Scheduler();
    const flag = { set: false };
    const rounds: number[] = [];
    const log = trace(s);
    const spin = s.spawn('spinner', function* () {
      const n = yield* spinOn(s, flag, 0x1f)();
      rounds.push(n);
    });
    let err: unknown;
    try {
      s.runAll(strategy);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Livelock);
    const e = err as Livelock;
    expect(e).toBeInstanceOf(MmBug);
    expect(e.name).toBe('Livelock');
    expect(e.kind).toBe('livelock');
    expect(e.spinner).toBe(spin);
    expect(e.entries).toEqual([]);
    expect(e.reason).toBe(
      'spinner/1 spins at cpu_relax pfn=0x1f (flag clear: repeat) and no other task can run (no other task is live)',
    );
    expect(e.dump).toBe(
      [
        'INFO: task spinner/1 (cpu 0) spins at cpu_relax pfn=0x1f (flag clear: repeat): a round of its loop run alone failed again, and no other task can run to change what it waits for',
        'no other task is live: nothing can end the spin',
      ].join('\n'),
    );
    // Alone, nothing is preemptible: only the two cpu_relax points are yielded.
    expect(log).toEqual(['spinner:cpu_relax', 'spinner:cpu_relax']);
    expect(spin.state).toBe('runnable');
  });

  it('a spinner whose only partner sleeps: the report lists the sleeper and the locks held', () => {
    const s = new Scheduler();
    const flag = { set: false };
    const mtx = new Mutex(s, 'drv_lock');
    s.spawn('spinner', function* () {
      yield* mtx.lock();
      yield* spinOn(s, flag, 7)();
      mtx.unlock();
    });
    s.spawn('sleeper', function* () {
      yield* pt(s, 'start');
      yield { op: 'block', key: 'never', what: 'a wait queue nobody wakes' };
      flag.set = true;
    });
    let err: unknown;
    try {
      s.runAll('round-robin');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Livelock);
    const e = err as Livelock;
    expect(e.reason).toBe(
      'spinner/1 spins at cpu_relax pfn=0x7 (flag clear: repeat) and no other task can run (1 other live: sleeper/2 blocked)',
    );
    expect(e.dump.split('\n').slice(0, 3)).toEqual([
      'INFO: task spinner/1 (cpu 0) spins at cpu_relax pfn=0x7 (flag clear: repeat): a round of its loop run alone failed again, and no other task can run to change what it waits for',
      '  holding drv_lock',
      'INFO: task sleeper/2 (cpu 1) blocked on a wait queue nobody wakes [never], no task holds it or can wake it',
    ]);
    expect(e.entries.map((x) => x.task.name)).toEqual(['sleeper']);
    expect(e.message).toBe(`${e.reason}\n${e.dump}`);
  });

  it('Machine.run throws the Livelock and leaves the machine running', () => {
    const m = createMachine({ memory: '4M', profile: 'v6.3' });
    expect(() => m.run(spinOn(m.sched, { set: false }))).toThrow(Livelock);
    expect(m.mem.halted).toBeUndefined();
  });

  it('a spinner whose one round alone succeeds is no livelock', () => {
    // The setter sets the flag and ends between the spinner's test and its cpu_relax: the
    // one more round the spinner then runs alone sees the flag.
    const s = new Scheduler();
    const flag = { set: false };
    const log = trace(s);
    const spin = s.spawn('spinner', function* () {
      let rounds = 0;
      for (;;) {
        yield* pt(s, 'load_flag');
        const seen = flag.set;
        yield* pt(s, 'test');
        if (seen) return rounds;
        if (++rounds > ROUNDS) throw new Error(`spun ${ROUNDS} rounds`);
        yield* cpuRelax();
      }
    });
    s.spawn('setter', function* () {
      yield* pt(s, 'set');
      flag.set = true;
    });
    s.runAll('round-robin');
    expect(spin.result).toBe(1);
    expect(log).toEqual(['spinner:load_flag', 'setter:set', 'spinner:test', 'spinner:cpu_relax']);
  });
});

describe('runAll: strategies left to the caller, and bad strategies', () => {
  it('a PickNext strategy is given the spinner too, and decides alone', () => {
    const s = new Scheduler();
    const flag = { set: false };
    const offered: string[][] = [];
    s.spawn('spinner', spinOn(s, flag));
    s.spawn('setter', function* () {
      yield* pt(s, 'set');
      flag.set = true;
    });
    s.runAll((runq) => {
      offered.push(runq.map((t) => t.name));
      // Prefer the spinner while it is runnable: it spins until the bound below.
      return runq.find((t) => t.name === 'setter' && offered.length > 3) ?? runq[0];
    });
    expect(offered.slice(0, 3)).toEqual([
      ['spinner', 'setter'],
      ['spinner', 'setter'],
      ['spinner', 'setter'],
    ]);
  });

  it('an unknown strategy is E_USAGE', () => {
    const s = new Scheduler();
    s.spawn('t', function* () {
      yield* pt(s, 'x');
    });
    let err: unknown;
    try {
      s.runAll('fifo' as Strategy);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MopsError);
    expect((err as MopsError).code).toBe('E_USAGE');
    expect((err as MopsError).message).toBe(
      `runAll: strategy must be 'run-to-completion', 'round-robin', 'random' or a function, got "fifo"`,
    );
  });
});

describe('runAll: tasks that never yield cpu_relax run as before', () => {
  /**
   * Three tasks on two CPUs sharing a mutex and a spinlock, one sleeping until another wakes
   * it. The schedules below are those runAll gave before spin-waits were known to it.
   */
  function workload(strategy: Strategy, seed: number): { n: number; log: string } {
    const s = new Scheduler({ seed });
    const log = trace(s);
    const mtx = new Mutex(s, 'm');
    const sp = new SpinLock(s, 'sp');
    s.spawn('a', function* () {
      for (let i = 0; i < 3; i++) {
        yield* mtx.lock();
        yield* pt(s, 'a_in');
        mtx.unlock();
      }
    });
    s.spawn(
      'b',
      function* () {
        yield* pt(s, 'b0');
        yield { op: 'block', key: 'q', what: 'q' };
        for (let i = 0; i < 2; i++) {
          yield* sp.lock();
          yield* pt(s, 'b_in');
          sp.unlock();
        }
      },
      { cpu: 1 },
    );
    s.spawn(
      'c',
      function* () {
        for (let i = 0; i < 3; i++) {
          yield* mtx.lock();
          yield* sp.lock();
          yield* pt(s, 'c_in');
          sp.unlock();
          mtx.unlock();
        }
        s.wake('q');
      },
      { cpu: 1 },
    );
    const n = s.runAll(strategy);
    return { n, log: log.join(' ') };
  }

  it.each([
    [
      'run-to-completion',
      17,
      'a:mutex_lock a:a_in a:mutex_lock a:a_in a:mutex_lock a:a_in b:b0 b:block c:mutex_lock c:spin_lock c:c_in c:mutex_lock c:spin_lock c:c_in c:mutex_lock c:spin_lock c:c_in',
    ],
    [
      'round-robin',
      22,
      'a:mutex_lock b:b0 c:mutex_lock a:a_in b:block c:block a:mutex_lock c:spin_lock a:block c:c_in c:mutex_lock a:a_in c:block a:mutex_lock c:spin_lock a:block c:c_in c:mutex_lock a:a_in c:block c:spin_lock c:c_in',
    ],
    [
      'random/1',
      24,
      'b:b0 c:mutex_lock c:spin_lock b:block a:mutex_lock c:c_in a:block c:mutex_lock c:spin_lock a:block c:c_in c:mutex_lock c:block a:a_in a:mutex_lock c:spin_lock c:c_in a:a_in a:mutex_lock b:spin_lock b:b_in b:spin_lock b:b_in a:a_in',
    ],
    [
      'random/2',
      22,
      'b:b0 c:mutex_lock c:spin_lock b:block a:mutex_lock c:c_in a:block c:mutex_lock c:spin_lock c:c_in c:mutex_lock c:spin_lock a:block c:c_in a:a_in b:spin_lock a:mutex_lock b:b_in b:spin_lock b:b_in a:a_in a:mutex_lock',
    ],
    [
      'random/3',
      23,
      'c:mutex_lock b:b0 b:block c:spin_lock c:c_in a:mutex_lock a:block c:mutex_lock c:spin_lock c:c_in a:block c:mutex_lock c:block a:a_in a:mutex_lock c:spin_lock c:c_in a:a_in a:mutex_lock b:spin_lock b:b_in b:spin_lock b:b_in',
    ],
  ] as const)('%s: the same schedule', (name, n, log) => {
    const [strategy, seed] = name.split('/');
    expect(workload(strategy as Strategy, Number(seed ?? 1))).toEqual({ n, log });
  });
});
