/**
 * The CPU a task gets without `SpawnOptions.cpu`: the lowest one no live task runs on, as a
 * kernel's tasks run on CPUs below num_online_cpus() however many were created before.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import { type KernelGen, Scheduler } from '../../src/sched/index.js';

/** A body yielding `n` points. */
function points(n: number): () => KernelGen<void> {
  return function* () {
    for (let i = 0; i < n; i++) yield { op: 'work' };
  };
}

describe('default CPUs', () => {
  it('tasks run one after another all run on CPU 0', () => {
    const s = new Scheduler();
    const seen: [number, number][] = [];
    for (let i = 0; i < 3; i++)
      s.run(function* () {
        yield { op: 'work' };
        const t = s.current;
        seen.push([t?.id ?? -1, t?.cpu ?? -1]);
      });
    expect(seen).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    expect(s.nrCpus).toBe(1);
  });

  it("a machine's runs, one after another, all run on CPU 0", () => {
    const m = createMachine({ memory: '8M' });
    const cpus = [1, 2, 3].map(() =>
      m.run(function* () {
        yield { op: 'work' };
        return m.sched.current?.cpu;
      }),
    );
    expect(cpus).toEqual([0, 0, 0]);
  });

  it('live tasks get CPUs 0, 1, 2, none shared', () => {
    const s = new Scheduler();
    const ts = ['a', 'b', 'c'].map((n) => s.spawn(n, points(2)));
    expect(ts.map((t) => t.cpu)).toEqual([0, 1, 2]);
    expect(s.pickable()).toBe(s.runnable); // nobody shares a CPU
    expect(s.nrCpus).toBe(3);
    s.runAll('round-robin');
  });

  it('a task that ends frees its CPU for the next, the lowest free first', () => {
    const s = new Scheduler();
    const [a, b, c] = ['a', 'b', 'c'].map((n) => s.spawn(n, points(2)));
    s.runToEnd(b);
    expect(b.state).toBe('done');
    const d = s.spawn('d', points(1));
    expect(d.cpu).toBe(1);
    s.runToEnd(a);
    s.runToEnd(c);
    // CPUs 0 and 2 are free again; d holds 1.
    const e = s.spawn('e', points(1));
    const f = s.spawn('f', points(1));
    expect([e.cpu, f.cpu]).toEqual([0, 2]);
    expect(s.pickable()).toBe(s.runnable);
    s.runAll();
    // nrCpus keeps the highest CPU ever had.
    expect(s.nrCpus).toBe(3);
    expect(s.spawn('g', points(0)).cpu).toBe(0);
  });

  it('a failed task frees its CPU too', () => {
    const s = new Scheduler();
    const a = s.spawn('a', function* () {
      yield { op: 'work' };
      throw new Error('boom');
    });
    const b = s.spawn('b', points(3));
    expect(() => s.runToEnd(a)).toThrow('boom');
    expect(a.state).toBe('failed');
    expect(s.spawn('c', points(0)).cpu).toBe(0);
    expect(b.cpu).toBe(1);
    s.runAll();
  });

  it('a work item queued from outside tasks takes the lowest free CPU', () => {
    const s = new Scheduler();
    s.spawn('a', points(1), { cpu: 0 });
    s.spawn('b', points(1), { cpu: 2 });
    let cpu = -1;
    s.queueWork('kworker', function* () {
      yield { op: 'work' };
      cpu = s.current?.cpu ?? -1;
    });
    s.runAll();
    expect(cpu).toBe(1);
    expect(s.nrCpus).toBe(3);
  });

  it('an explicit CPU is kept as given, and counts in nrCpus', () => {
    const s = new Scheduler();
    expect(s.nrCpus).toBe(0);
    const a = s.spawn('a', points(1), { cpu: 7 });
    expect(a.cpu).toBe(7);
    expect(s.nrCpus).toBe(8);
    s.runAll();
  });
});
