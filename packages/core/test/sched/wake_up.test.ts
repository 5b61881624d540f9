import { describe, expect, it } from 'vitest';
import {
  type KernelGen,
  Scheduler,
  type Task,
  WQ_CUSTOM,
  WQ_DONE,
  WQ_EXCLUSIVE,
} from '../../src/sched/index.js';

const KEY = 'wq:test';

/** A task that sleeps once on KEY with the given entry flags and records what it saw. */
function sleeper(s: Scheduler, flags: number, seen: Map<string, number>, name: string) {
  return s.spawn(name, function* (): KernelGen {
    const me = s.current as Task;
    me.nextWaitFlags = flags;
    yield { op: 'block', key: KEY, what: `sleep ${name}` };
    seen.set(name, me.waitFlags);
  });
}

/** Spawn sleepers named by their flags ('s' shared, 'x' exclusive) and park them all. */
function park(s: Scheduler, kinds: string, seen: Map<string, number>): Task[] {
  s.spawn('idle', function* (): KernelGen {
    yield { op: 'idle' }; // live until the end: parking every sleeper is no deadlock
  });
  const tasks = [...kinds].map((k, i) =>
    sleeper(s, k === 'x' ? WQ_EXCLUSIVE : 0, seen, `${k}${i}`),
  );
  for (const t of tasks) s.step(t);
  return tasks;
}

describe('Scheduler.wakeUp (__wake_up_common)', () => {
  it('wakes in queue order up to the first exclusive waiter with nrExclusive 1', () => {
    const s = new Scheduler();
    s.manual = true;
    const seen = new Map<string, number>();
    const [s0, x1, s2, x3] = park(s, 'sxsx', seen);
    expect(s.wakeUp(KEY, 1)).toBe(2);
    expect([s0.state, x1.state, s2.state, x3.state]).toEqual([
      'runnable',
      'runnable',
      'blocked',
      'blocked',
    ]);
    expect(s.hasWaiters(KEY)).toBe(true);
    expect(s.wakeUp(KEY, 1)).toBe(2); // the rest kept their places
    expect(s.hasWaiters(KEY)).toBe(false);
    s.runAll();
    expect(seen.get('x1')).toBe(WQ_EXCLUSIVE);
    expect(seen.get('s0')).toBe(0);
  });

  it('nrExclusive 0 wakes every waiter', () => {
    const s = new Scheduler();
    s.manual = true;
    const seen = new Map<string, number>();
    park(s, 'xxs', seen);
    expect(s.wakeUp(KEY, 0)).toBe(3);
    expect(s.hasWaiters(KEY)).toBe(false);
  });

  it('a wake function skips (0), stops (<0) and may set flags on the woken task', () => {
    const s = new Scheduler();
    s.manual = true;
    const seen = new Map<string, number>();
    const [x0, s1, x2, x3] = park(s, 'xsxx', seen);
    // Skip the first, wake the shared one, stop at the third: x0 and x2, x3 stay queued.
    const calls: string[] = [];
    const n = s.wakeUp(KEY, 1, (t) => {
      calls.push(t.name);
      if (t === x0) return 0;
      if (t === x2) return -1;
      return 1;
    });
    expect(n).toBe(1);
    expect(calls).toEqual(['x0', 's1', 'x2']);
    expect([x0.state, s1.state, x2.state, x3.state]).toEqual([
      'blocked',
      'runnable',
      'blocked',
      'blocked',
    ]);
    // Queue order is kept: the next walk starts with x0.
    const n2 = s.wakeUp(KEY, 1, (t) => {
      t.waitFlags |= WQ_DONE;
      return 1;
    });
    expect(n2).toBe(1);
    expect(x0.state).toBe('runnable');
    expect(x2.state).toBe('blocked');
    s.runToEnd(x0);
    expect(seen.get('x0')).toBe(WQ_EXCLUSIVE | WQ_DONE);
    s.wake(KEY);
    s.runAll();
  });

  it('entry flags are taken at the block and reset for the next one', () => {
    const s = new Scheduler();
    s.manual = true;
    const t = s.spawn('t', function* (): KernelGen {
      const me = s.current as Task;
      me.nextWaitFlags = WQ_EXCLUSIVE | WQ_CUSTOM;
      yield { op: 'block', key: KEY, what: 'first' };
      yield { op: 'block', key: KEY, what: 'second' };
    });
    s.spawn('other', function* (): KernelGen {
      yield { op: 'x' };
    });
    s.step(t);
    expect(t.waitFlags).toBe(WQ_EXCLUSIVE | WQ_CUSTOM);
    expect(t.nextWaitFlags).toBe(0);
    s.wakeUp(KEY, 1);
    s.step(t);
    expect(t.waitFlags).toBe(0);
    s.wakeUp(KEY, 1);
    s.runAll();
  });
});
