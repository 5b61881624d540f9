import { describe, expect, it } from 'vitest';
import { MmBug, MopsError } from '../../src/errors.js';
import {
  type BlockPoint,
  Deadlock,
  DONE_POINT,
  type KernelGen,
  PF_MEMALLOC,
  Prng,
  Scheduler,
  type Task,
  type Yielded,
} from '../../src/sched/index.js';

/** A scheduling point followed by a trivial primitive, as kernel code writes it. */
function* pt(s: Scheduler, op: string, log?: string[]): KernelGen {
  if (s.preemptible) yield { op };
  log?.push(op);
}

function trace(s: Scheduler): string[] {
  const out: string[] = [];
  s.onStep = (t, p) => {
    out.push(`${t.name}:${p.op}`);
  };
  return out;
}

function expectMopsError(fn: () => unknown, code: string): MopsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MopsError);
    expect((e as MopsError).code).toBe(code);
    return e as MopsError;
  }
  throw new Error('expected a MopsError');
}

describe('Scheduler basics', () => {
  it('a lone task runs straight through with zero yields', () => {
    const s = new Scheduler();
    let yields = 0;
    s.onStep = () => {
      yields++;
    };
    let primitives = 0;
    function* leaf(): KernelGen<number> {
      if (s.preemptible) yield { op: 'folio_try_get' };
      primitives++;
      return 1;
    }
    function* mid(): KernelGen<number> {
      let n = 0;
      for (let i = 0; i < 100; i++) n += yield* leaf();
      return n;
    }
    const result = s.run(function* () {
      let n = 0;
      for (let i = 0; i < 10; i++) n += yield* mid();
      return n;
    });
    expect(result).toBe(1000);
    expect(primitives).toBe(1000);
    expect(yields).toBe(0);
    expect(s.steps).toBe(0);
  });

  it('preemptible is true iff more than one task is live, or in manual mode', () => {
    const s = new Scheduler();
    expect(s.preemptible).toBe(false);
    const a = s.spawn('a', function* () {
      yield* pt(s, 'x');
    });
    expect(s.preemptible).toBe(false);
    const b = s.spawn('b', function* () {
      yield* pt(s, 'y');
    });
    expect(s.preemptible).toBe(true);
    s.runToEnd(a);
    expect(a.state).toBe('done');
    expect(s.preemptible).toBe(false);
    s.manual = true;
    expect(s.preemptible).toBe(true);
    // b alone, but manual mode: its point is yielded.
    expect(s.step(b).op).toBe('y');
    s.manual = false;
    expect(s.preemptible).toBe(false);
    expect(s.step(b)).toBe(DONE_POINT);
    expect(s.preemptible).toBe(false);
  });

  it('a task spawned mid-run makes the running task preemptible from then on', () => {
    const s = new Scheduler();
    const log = trace(s);
    s.run(function* () {
      yield* pt(s, 'before');
      s.spawn('child', function* () {
        yield* pt(s, 'c1');
      });
      yield* pt(s, 'after');
    }, 'round-robin');
    expect(log).toEqual(['main:after', 'child:c1']);
  });

  it('current is the running task inside, undefined outside', () => {
    const s = new Scheduler();
    let seen: Task | undefined;
    const t = s.spawn('k', function* () {
      yield* pt(s, 'x');
      seen = s.current;
    });
    expect(s.current).toBeUndefined();
    s.runAll();
    expect(seen).toBe(t);
    expect(s.current).toBeUndefined();
  });

  it('spawn records name, id, cpu and flags', () => {
    const s = new Scheduler();
    const a = s.spawn('kcompactd0', function* () {}, { cpu: 3, flags: PF_MEMALLOC });
    const b = s.spawn('other', function* () {});
    expect([a.name, a.id, a.cpu, a.flags, a.state]).toEqual([
      'kcompactd0',
      1,
      3,
      PF_MEMALLOC,
      'runnable',
    ]);
    // The lowest CPU no live task runs on: kcompactd0 is on 3, CPU 0 is free.
    expect([b.id, b.cpu, b.flags]).toEqual([2, 0, 0]);
    expect(s.tasks).toEqual([a, b]);
    s.runAll();
    expect(s.tasks).toEqual([]);
  });
});

describe('task bodies that are not generator functions', () => {
  it.each([
    ['a plain function', () => 1, 'got a function returning 1'],
    ['an async function', async () => 1, 'got an async function'],
    ['no function', null, 'got null'],
  ])('%s is E_USAGE naming the task; nothing is spawned', (_what, body, message) => {
    const s = new Scheduler();
    const e = expectMopsError(() => s.run(body as never), 'E_USAGE');
    expect(e.message).toContain('task main: its body must be a generator function');
    expect(e.message).toContain(message);
    expect(s.run(() => pt(s, 'ok'))).toBeUndefined();
    expect(s.steps).toBe(0);
  });

  it('one refused on a CPU of its own leaves the CPU count as it was', () => {
    const s = new Scheduler();
    const before = s.nrCpus;
    expectMopsError(() => s.spawn('x', 42 as never, { cpu: 5000 }), 'E_USAGE');
    expect(s.nrCpus).toBe(before);
  });
});

describe('queue_work: worker tasks', () => {
  it('queued inside a task, the worker is created when the step ends and runs in the same run', () => {
    const s = new Scheduler();
    s.manual = true;
    const log: string[] = [];
    const main = s.spawn('main', function* () {
      s.queueWork('kworker/test', function* () {
        yield { op: 'work' };
        log.push('work');
      });
      log.push(`queued, tasks ${s.tasks.length}`);
      yield { op: 'after_queue' };
      log.push('main again');
    });
    s.step(main);
    expect(s.tasks.map((t) => t.name)).toEqual(['main', 'kworker/test']);
    s.runAll();
    expect(log).toEqual(['queued, tasks 1', 'main again', 'work']);
  });

  it('queued outside any task, the worker exists at once and waits for the next run', () => {
    const s = new Scheduler();
    let ran = false;
    s.queueWork('kworker/test', function* () {
      yield { op: 'work' };
      ran = true;
    });
    expect(s.tasks.map((t) => t.name)).toEqual(['kworker/test']);
    expect(ran).toBe(false);
    s.runAll();
    expect(ran).toBe(true);
  });
});

describe('strategies', () => {
  function twoTasks(s: Scheduler): void {
    // Manual mode: every point is yielded, even by the last task left.
    s.manual = true;
    s.spawn('A', function* () {
      yield* pt(s, 'a1');
      yield* pt(s, 'a2');
      yield* pt(s, 'a3');
    });
    s.spawn('B', function* () {
      yield* pt(s, 'b1');
      yield* pt(s, 'b2');
    });
  }

  it('without manual mode, the last live task runs its remaining points unyielded', () => {
    const s = new Scheduler();
    const log = trace(s);
    s.spawn('A', function* () {
      yield* pt(s, 'a1');
      yield* pt(s, 'a2');
      yield* pt(s, 'a3');
    });
    s.spawn('B', function* () {
      yield* pt(s, 'b1');
    });
    s.runAll('round-robin');
    // After b1, B finishes; A is alone and a3 is not a point any more.
    expect(log).toEqual(['A:a1', 'B:b1', 'A:a2']);
  });

  it('round-robin interleaves one point each in turn', () => {
    const s = new Scheduler();
    const log = trace(s);
    twoTasks(s);
    expect(s.runAll('round-robin')).toBe(5);
    expect(log).toEqual(['A:a1', 'B:b1', 'A:a2', 'B:b2', 'A:a3']);
  });

  it('run-to-completion runs the first task to its end, then the next', () => {
    const s = new Scheduler();
    const log = trace(s);
    twoTasks(s);
    s.runAll('run-to-completion');
    expect(log).toEqual(['A:a1', 'A:a2', 'A:a3', 'B:b1', 'B:b2']);
  });

  it('run-to-completion moves on when the running task blocks', () => {
    const s = new Scheduler();
    s.manual = true;
    const log = trace(s);
    let ready = false;
    s.spawn('waiter', function* () {
      yield* pt(s, 'w1');
      while (!ready) yield { op: 'block', key: 'q', what: 'ready' };
      yield* pt(s, 'w2');
    });
    s.spawn('waker', function* () {
      yield* pt(s, 'k1');
      ready = true;
      s.wake('q');
      yield* pt(s, 'k2');
    });
    s.runAll();
    expect(log).toEqual(['waiter:w1', 'waiter:block', 'waker:k1', 'waker:k2', 'waiter:w2']);
  });

  it('a custom PickNext strategy decides every step', () => {
    const s = new Scheduler();
    const log = trace(s);
    twoTasks(s);
    s.runAll((runnable) => runnable[runnable.length - 1]);
    expect(log).toEqual(['B:b1', 'B:b2', 'A:a1', 'A:a2', 'A:a3']);
  });

  it('random: the same seed replays the same trace; seeds differ', () => {
    function runSeed(seed: number): string[] {
      const s = new Scheduler({ seed });
      s.manual = true;
      const log = trace(s);
      for (const name of ['p', 'q', 'r']) {
        s.spawn(name, function* () {
          for (let i = 0; i < 5; i++) yield* pt(s, `${name}${i}`);
        });
      }
      s.runAll('random');
      return log;
    }
    const first = runSeed(42);
    expect(first).toHaveLength(15);
    expect(runSeed(42)).toEqual(first);
    const distinct = new Set<string>();
    for (let seed = 0; seed < 20; seed++) distinct.add(runSeed(seed).join(','));
    expect(distinct.size).toBeGreaterThan(10);
  });

  it('Prng is deterministic and roughly uniform', () => {
    const a = new Prng(7);
    const b = new Prng(7);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const x = a.below(4);
      expect(b.below(4)).toBe(x);
      counts[x]++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(850);
    expect(new Prng(8).nextU32()).not.toBe(new Prng(7).nextU32());
    const f = new Prng(0).float();
    expect(f).toBeGreaterThanOrEqual(0);
    expect(f).toBeLessThan(1);
  });
});

describe('step control', () => {
  it('runUntil stops before the announced primitive executes', () => {
    const s = new Scheduler();
    s.manual = true;
    const ref = { count: 0 };
    const t = s.spawn('t', function* () {
      yield* pt(s, 'prepare');
      if (s.preemptible) yield { op: 'atomic_inc', pfn: 0x12 };
      ref.count++;
      yield* pt(s, 'after');
    });
    const p = s.runUntil(t, (q) => q.op === 'atomic_inc');
    expect(p).toEqual({ op: 'atomic_inc', pfn: 0x12 });
    expect(t.lastPoint).toBe(p);
    expect(ref.count).toBe(0);
    expect(s.step(t).op).toBe('after');
    expect(ref.count).toBe(1);
    expect(s.step(t)).toBe(DONE_POINT);
    expect(t.state).toBe('done');
  });

  it('runUntil fails with E_STATE when the task ends without a match', () => {
    const s = new Scheduler();
    s.manual = true;
    const t = s.spawn('t', function* () {
      yield* pt(s, 'only');
    });
    expectMopsError(() => s.runUntil(t, (p) => p.op === 'never'), 'E_STATE');
    expect(t.state).toBe('done');
  });

  it('runToEnd returns the result; stepping a finished task is E_STATE', () => {
    const s = new Scheduler();
    s.manual = true;
    const t = s.spawn('t', function* () {
      yield* pt(s, 'a');
      return 42;
    });
    expect(s.runToEnd(t)).toBe(42);
    expect(t.result).toBe(42);
    expectMopsError(() => s.step(t), 'E_STATE');
  });

  it('stepping a blocked task is a MopsError E_STATE naming the wait', () => {
    const s = new Scheduler();
    const t = s.spawn('sleeper', function* () {
      yield { op: 'block', key: 'wq', what: 'the wait queue' };
    });
    s.spawn('other', function* () {
      yield* pt(s, 'x');
    });
    const p = s.step(t) as BlockPoint;
    expect(p.op).toBe('block');
    expect(t.state).toBe('blocked');
    expect(t.blockedOn).toEqual({ op: 'block', key: 'wq', what: 'the wait queue' });
    const e = expectMopsError(() => s.step(t), 'E_STATE');
    expect(e.message).toContain('sleeper/1');
    expect(e.message).toContain('the wait queue');
    expect(s.wake('wq')).toBe(1);
    expect(s.step(t)).toBe(DONE_POINT);
  });

  it('the scheduler cannot be driven from inside a task', () => {
    const s = new Scheduler();
    const t = s.spawn('t', function* () {
      yield* pt(s, 'x');
      s.runAll();
    });
    expectMopsError(() => s.step(t), 'E_STATE');
    expect(t.state).toBe('failed');
  });
});

describe('wake', () => {
  it('wakes every waiter on the key (wake-all); waiters re-check their condition', () => {
    const s = new Scheduler();
    const log = trace(s);
    let tokens = 0;
    const got: string[] = [];
    const waiters = ['w1', 'w2', 'w3'].map((name) =>
      s.spawn(name, function* () {
        while (tokens === 0) yield { op: 'block', key: 'tokens', what: 'a token' };
        tokens--;
        got.push(name);
      }),
    );
    const [w1, w2, w3] = waiters;
    const producer = s.spawn('producer', function* () {
      for (let i = 0; i < 3; i++) {
        if (s.preemptible) yield { op: 'produce' };
        tokens++;
        s.wake('tokens');
      }
    });
    for (const w of waiters) s.step(w);
    expect(waiters.map((w) => w.state)).toEqual(['blocked', 'blocked', 'blocked']);
    expect(s.hasWaiters('tokens')).toBe(true);
    expect(s.runnable).toEqual([producer]);
    s.step(producer); // announces the first produce
    s.step(producer); // produces one token and wakes all three
    expect(s.hasWaiters('tokens')).toBe(false);
    expect(s.runnable).toEqual([w1, w2, w3, producer]);
    expect(s.step(w2)).toBe(DONE_POINT); // w2 takes the token
    expect(s.step(w1).op).toBe('block'); // w1 finds none and sleeps again
    expect(w1.state).toBe('blocked');
    expect(s.hasWaiters('tokens')).toBe(true);
    expect(got).toEqual(['w2']);
    expect(s.wake('nobody-waits-here')).toBe(0);
    log.length = 0;
    s.runAll('round-robin');
    // Round-robin from id 1: w3 finds no token and sleeps; the producer makes one and wakes
    // w1 and w3; w1 (lower id, first in turn) takes it; w3 sleeps again; the last token
    // goes to w3.
    expect(got).toEqual(['w2', 'w1', 'w3']);
    expect(log).toEqual(['w3:block', 'producer:produce', 'w3:block']);
  });

  it('wake of an unknown key is a no-op', () => {
    const s = new Scheduler();
    expect(s.wake('nobody')).toBe(0);
    expect(s.hasWaiters('nobody')).toBe(false);
  });
});

describe('errors and deadlocks', () => {
  it('an exception marks the task failed and runAll rethrows it', () => {
    const s = new Scheduler();
    const boom = new MmBug('VM_BUG_ON_PAGE(PageTail(page))', 'page:0000 pfn:0x10');
    const bad = s.spawn('bad', function* () {
      yield* pt(s, 'a');
      throw boom;
    });
    const good = s.spawn('good', function* () {
      yield* pt(s, 'b');
      yield* pt(s, 'c');
    });
    expect(() => s.runAll('round-robin')).toThrow(boom);
    expect(bad.state).toBe('failed');
    expect(bad.error).toBe(boom);
    expect(good.state).toBe('runnable');
    expect(s.tasks).toEqual([good]);
    s.runAll();
    expect(good.state).toBe('done');
  });

  it('run rethrows its own task error', () => {
    const s = new Scheduler();
    expect(() =>
      s.run(function* () {
        yield* pt(s, 'x');
        throw new Error('oops');
      }),
    ).toThrow('oops');
  });

  it('a single task blocking on something nobody can release is a deadlock', () => {
    const s = new Scheduler();
    let err: unknown;
    try {
      s.run(function* () {
        yield { op: 'block', key: 'never', what: 'wait_for_completion(&done)' };
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Deadlock);
    expect(err).toBeInstanceOf(MmBug);
    const d = err as Deadlock;
    expect(d.entries).toHaveLength(1);
    expect(d.message).toContain('main/1');
    expect(d.message).toContain('wait_for_completion(&done)');
    expect(d.message).toContain('no task holds it');
  });

  it('a step that ends the last runnable task while others sleep reports a deadlock', () => {
    const s = new Scheduler();
    const sleeper = s.spawn('sleeper', function* () {
      yield { op: 'block', key: 'completion', what: 'wait_for_completion(&c)' };
    });
    const forgetful = s.spawn('forgetful', function* () {
      yield* pt(s, 'work');
      // forgets complete(&c)
    });
    s.step(sleeper);
    expect(s.step(forgetful).op).toBe('work');
    expect(() => s.step(forgetful)).toThrow(Deadlock);
    expect(forgetful.state).toBe('done');
    expect(sleeper.state).toBe('blocked');
  });

  it('a strategy picking a task that is not runnable is E_STATE', () => {
    const s = new Scheduler();
    const a = s.spawn('a', function* () {
      yield { op: 'block', key: 'k', what: 'k' };
    });
    s.spawn('b', function* () {
      yield* pt(s, 'x');
    });
    s.step(a);
    expectMopsError(() => s.runAll(() => a), 'E_STATE');
  });
});

describe('task bookkeeping', () => {
  it('records lastPoint and per-task steps', () => {
    const s = new Scheduler();
    s.manual = true;
    const points: Yielded[] = [];
    s.onStep = (_t, p) => {
      points.push(p);
    };
    const t = s.spawn('t', function* () {
      yield* pt(s, 'one');
      yield* pt(s, 'two');
    });
    s.runAll();
    expect(t.steps).toBe(2);
    expect(t.lastPoint?.op).toBe('two');
    expect(points.map((p) => p.op)).toEqual(['one', 'two']);
  });
});
