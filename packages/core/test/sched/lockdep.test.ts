import { describe, expect, it } from 'vitest';
import { MmBug } from '../../src/errors.js';
import { GFP, lockPage, pageWaitKey, unlockPage } from '../../src/index.js';
import {
  Deadlock,
  type KernelGen,
  Mutex,
  RwLock,
  Scheduler,
  SpinLock,
} from '../../src/sched/index.js';
import { smallMachine } from '../helpers.js';

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('deadlock detection', () => {
  it('ABBA with two mutexes under step control → Deadlock naming both tasks and holders', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    const t1 = s.spawn('t1', function* () {
      yield* A.lock();
      yield* B.lock();
      B.unlock();
      A.unlock();
    });
    const t2 = s.spawn('t2', function* () {
      yield* B.lock();
      yield* A.lock();
      A.unlock();
      B.unlock();
    });
    s.runUntil(t1, (p) => p.op === 'mutex_lock' && p.lock === 'B'); // t1 holds A
    s.runUntil(t2, (p) => p.op === 'mutex_lock' && p.lock === 'A'); // t2 holds B
    expect(A.owner).toBe(t1);
    expect(B.owner).toBe(t2);
    expect(s.step(t1).op).toBe('block'); // t1 waits for B; t2 can still run
    const err = catchError(() => s.step(t2)); // t2 waits for A: nobody can run
    expect(err).toBeInstanceOf(Deadlock);
    expect(err).toBeInstanceOf(MmBug);
    const d = err as Deadlock;
    expect(d.name).toBe('Deadlock');
    expect(d.message).toContain(
      `task t1/1 (cpu 0) blocked on mutex_lock(B) [${B.key}], held by t2/2`,
    );
    expect(d.message).toContain(
      `task t2/2 (cpu 1) blocked on mutex_lock(A) [${A.key}], held by t1/1`,
    );
    expect(d.entries.map((e) => [e.task, e.holders])).toEqual([
      [t1, [t2]],
      [t2, [t1]],
    ]);
    // The states stay inspectable after the report.
    expect([t1.state, t2.state]).toEqual(['blocked', 'blocked']);
    expect(() => s.step(t1)).toThrow(/E_STATE|cannot step/);
    // lockdep saw the inversion at the moment t2 asked for A.
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['circular']);
  });

  it('runAll reports the same deadlock when the schedule reaches it', () => {
    let found = 0;
    for (let seed = 0; seed < 50; seed++) {
      const s = new Scheduler({ seed });
      const A = new Mutex(s, 'A');
      const B = new Mutex(s, 'B');
      const order = (x: Mutex, y: Mutex) =>
        function* (): KernelGen {
          yield* x.lock();
          yield* y.lock();
          y.unlock();
          x.unlock();
        };
      s.spawn('t1', order(A, B));
      s.spawn('t2', order(B, A));
      try {
        s.runAll('random');
      } catch (e) {
        expect(e).toBeInstanceOf(Deadlock);
        found++;
      }
      // Whether or not this seed deadlocked, lockdep flagged the inversion.
      expect(s.lockdep.reports.filter((r) => r.kind === 'circular')).toHaveLength(1);
    }
    expect(found).toBeGreaterThan(0);
    expect(found).toBeLessThan(50);
  });

  it('a mutex locked twice by the same task deadlocks and is reported as recursion', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'balloon_lock');
    const err = catchError(() =>
      s.run(function* () {
        yield* m.lock();
        yield* m.lock();
      }),
    );
    expect(err).toBeInstanceOf(Deadlock);
    expect((err as Deadlock).message).toContain('held by main/1');
    const [r] = s.lockdep.reports;
    expect(r.kind).toBe('recursive');
    expect(r.classes).toEqual(['balloon_lock']);
    expect(r.text).toContain('WARNING: possible recursive locking detected');
    expect(r.text).toContain('(the same lock)');
  });
});

describe('lockdep', () => {
  it('reports an ABBA inversion although the run did not deadlock, with both chains', () => {
    const texts: string[] = [];
    const s = new Scheduler({ onWarning: (kind, text) => kind === 'lockdep' && texts.push(text) });
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    s.spawn('t1', function* () {
      yield* A.lock();
      yield* B.lock();
      B.unlock();
      A.unlock();
    });
    s.spawn('t2', function* () {
      yield* B.lock();
      yield* A.lock();
      A.unlock();
      B.unlock();
    });
    s.runAll('run-to-completion'); // t1 finishes before t2 starts: no deadlock
    expect(s.tasks).toEqual([]);
    expect(s.lockdep.reports).toHaveLength(1);
    const r = s.lockdep.reports[0];
    expect(r.kind).toBe('circular');
    expect(r.classes).toEqual(['A', 'B']);
    expect(r.chains).toEqual([
      { task: 't2/2', held: ['B'], acquired: 'A', op: 'mutex_lock' },
      { task: 't1/1', held: ['A'], acquired: 'B', op: 'mutex_lock' },
    ]);
    expect(texts).toEqual([r.text]);
    expect(r.text).toContain('WARNING: possible circular locking dependency detected');
    expect(r.text).toContain('t2/2 is trying to acquire lock:');
    expect(r.text).toContain('t1/1: mutex_lock(B) while holding A');
    expect(r.text).toContain('t2/2: mutex_lock(A) while holding B');
    expect(r.text).toContain('*** DEADLOCK ***');
    expect(s.lockdep.dependsOn('A', 'B')).toBe(true);
    expect(s.lockdep.dependsOn('B', 'A')).toBe(true);
  });

  it.each([true, false])(
    'a recursive read_lock in an ABBA: v4.8 lockdep stores no read-triggered dependency and reports nothing; 5.10 on it does (readLockRecursive %s)',
    (recursive) => {
      const s = new Scheduler({ readLockRecursive: recursive });
      const A = new RwLock(s, 'A');
      const B = new SpinLock(s, 'B');
      s.spawn('t1', function* () {
        yield* A.readLock();
        yield* B.lock();
        B.unlock();
        A.readUnlock();
      });
      s.spawn('t2', function* () {
        yield* B.lock();
        yield* A.readLock();
        A.readUnlock();
        B.unlock();
      });
      s.runAll('run-to-completion');
      expect(s.tasks).toEqual([]);
      // check_prev_add() before 5.10: "we dont store read-triggered dependencies".
      expect(s.lockdep.dependsOn('A', 'B')).toBe(!recursive);
      expect(s.lockdep.dependsOn('B', 'A')).toBe(!recursive);
      expect(s.lockdep.reports.map((r) => r.kind)).toEqual(recursive ? [] : ['circular']);
    },
  );

  it('v4.8: no dependency is taken from a held recursive read, so a write of R under A then A under read_lock(R) is not reported', () => {
    const s = new Scheduler({ readLockRecursive: true });
    const A = new Mutex(s, 'A');
    const R = new RwLock(s, 'R');
    s.spawn('t1', function* () {
      yield* A.lock();
      yield* R.writeLock();
      R.writeUnlock();
      A.unlock();
    });
    s.spawn('t2', function* () {
      yield* R.readLock();
      yield* A.lock();
      A.unlock();
      R.readUnlock();
    });
    s.runAll('run-to-completion');
    expect(s.lockdep.dependsOn('A', 'R')).toBe(true);
    expect(s.lockdep.dependsOn('R', 'A')).toBe(false);
    expect(s.lockdep.reports).toEqual([]);
  });

  it('reports once per class pair', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    const nest = (x: Mutex, y: Mutex) =>
      function* (): KernelGen {
        yield* x.lock();
        yield* y.lock();
        y.unlock();
        x.unlock();
      };
    for (let i = 0; i < 3; i++) {
      s.run(nest(A, B));
      s.run(nest(B, A));
    }
    expect(s.lockdep.reports).toHaveLength(1);
  });

  it('classes, not instances: two instances of one class share the order', () => {
    const s = new Scheduler();
    const a1 = new Mutex(s, 'class_a');
    const a2 = new Mutex(s, 'class_a');
    const b = new SpinLock(s, 'class_b');
    s.run(function* () {
      yield* a1.lock();
      yield* b.lock();
      b.unlock();
      a1.unlock();
    });
    s.run(function* () {
      yield* b.lock();
      // a mutex under a spinlock is also a sleep-in-atomic
      yield* a2.lock();
      a2.unlock();
      b.unlock();
    });
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['circular']);
    expect(s.lockdep.reports[0].classes).toEqual(['class_a', 'class_b']);
    expect(s.warnings.map((w) => w.kind)).toEqual(['sleep_in_atomic', 'lockdep']);
  });

  it('finds a three-lock cycle and lists the whole existing path', () => {
    const s = new Scheduler();
    const [A, B, C] = ['A', 'B', 'C'].map((n) => new Mutex(s, n));
    const nest = (x: Mutex, y: Mutex) =>
      function* (): KernelGen {
        yield* x.lock();
        yield* y.lock();
        y.unlock();
        x.unlock();
      };
    s.run(nest(A, B));
    s.run(nest(B, C));
    expect(s.lockdep.reports).toEqual([]);
    s.run(nest(C, A));
    const [r] = s.lockdep.reports;
    expect(r.kind).toBe('circular');
    expect(r.classes).toEqual(['A', 'B', 'C']);
    expect(r.chains.map((c) => `${c.held.at(-1)}->${c.acquired}`)).toEqual([
      'C->A',
      'A->B',
      'B->C',
    ]);
    expect(r.text).toContain('-> #2 (C):');
    expect(r.text).toContain('-> #1 (B):');
    expect(r.text).toContain('-> #0 (A):');
    expect(r.text).toContain('lock(B);'); // CPU1 holds B, the class before C in the cycle
  });

  it('trylock adds no dependency into the trylocked class', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    s.run(function* () {
      yield* A.lock();
      if (B.trylock()) B.unlock();
      A.unlock();
    });
    s.run(function* () {
      yield* B.lock();
      yield* A.lock();
      A.unlock();
      B.unlock();
    });
    expect(s.lockdep.reports).toEqual([]);
    expect(s.lockdep.dependsOn('A', 'B')).toBe(false);
    expect(s.lockdep.dependsOn('B', 'A')).toBe(true);
  });

  it('two locks of one class nested without a subclass are reported; with one they are not', () => {
    const s = new Scheduler();
    const x = new Mutex(s, 'zspage_lock');
    const y = new Mutex(s, 'zspage_lock');
    s.run(function* () {
      yield* x.lock();
      yield* y.lock(1); // mutex_lock_nested(&y, SINGLE_DEPTH_NESTING)
      expect(s.current?.heldClasses).toEqual(['zspage_lock', 'zspage_lock/1']);
      y.unlock();
      x.unlock();
    });
    expect(s.lockdep.reports).toEqual([]);
    s.run(function* () {
      yield* x.lock();
      yield* y.lock();
      y.unlock();
      x.unlock();
    });
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['recursive']);
    expect(s.lockdep.reports[0].text).toContain('missing lock nesting notation');
  });

  it('a task that ends holding a lock is reported', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'leaked');
    s.run(function* () {
      yield* m.lock();
    });
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['held_at_exit']);
    expect(s.lockdep.reports[0].text).toContain('(leaked)');
  });

  it('disabled lockdep records nothing but still tracks holders', () => {
    const s = new Scheduler();
    s.lockdep.enabled = false;
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    s.run(function* () {
      yield* A.lock();
      yield* B.lock();
      expect(s.lockdep.holders(B.key)).toEqual([s.current]);
      B.unlock();
      A.unlock();
    });
    s.run(function* () {
      yield* B.lock();
      yield* A.lock();
      A.unlock();
      B.unlock();
    });
    expect(s.lockdep.reports).toEqual([]);
  });
});

describe('the page lock and lockdep', () => {
  // As in the kernel, PG_locked has no lockdep map: lockdep neither orders it against other
  // locks nor knows who holds one, and the page records no owner.

  it('a deadlock through a page lock says the page lock records no owner', () => {
    const m = smallMachine();
    const s = m.sched;
    const k = { mem: m.mem, sched: s };
    const pfn = m.allocPages(GFP.KERNEL, 0);
    const mu = new Mutex(s, 'balloon_lock');
    const t1 = s.spawn('compactor', function* () {
      yield* lockPage(k, pfn);
      yield* mu.lock();
      mu.unlock();
      unlockPage(k, pfn);
    });
    const t2 = s.spawn('balloon', function* () {
      yield* mu.lock();
      yield* lockPage(k, pfn);
      unlockPage(k, pfn);
      mu.unlock();
    });
    s.runUntil(t1, (p) => p.op === 'mutex_lock');
    s.runUntil(t2, (p) => p.op === 'lock_page');
    s.step(t1);
    const d = catchError(() => s.step(t2)) as Deadlock;
    expect(d).toBeInstanceOf(Deadlock);
    const hex = `0x${pfn.toString(16)}`;
    expect(d.message).toContain(
      `blocked on lock_page pfn ${hex} [${pageWaitKey(pfn)}], PG_locked of pfn ${hex}: page locks record no owner`,
    );
    expect(d.message).not.toContain('no task holds it');
    expect(d.message).toContain('Page locks record no owner and lockdep does not track them');
    expect(d.message).toContain('blocked on mutex_lock(balloon_lock)');
    expect(d.message).toContain('held by balloon/2');
    const page = d.entries.find((e) => e.task === t2);
    expect(page?.holders).toEqual([]);
    // No lockdep record of PG_locked: no dependency, no report, no held lock.
    expect(t1.heldClasses).toEqual([]);
    expect(s.lockdep.dependencies()).toEqual([]);
    expect(s.lockdep.reports).toEqual([]);
  });

  it('a wait that is not a page lock and has no holder still says nobody can wake it', () => {
    const s = new Scheduler();
    s.spawn('waiter', function* () {
      yield { op: 'block', key: 'wq:kcompactd_wait', what: 'kcompactd_wait' };
    });
    const d = catchError(() => s.runAll()) as Deadlock;
    expect(d.message).toContain('[wq:kcompactd_wait], no task holds it or can wake it');
    expect(d.message).not.toContain('Page locks');
  });
});

describe('lockdep records', () => {
  it('a lock released by a task other than its holder leaves no stale holder', () => {
    const s = new Scheduler();
    const t1 = s.spawn('locker', function* () {
      s.lockdep.acquire(s.current, 'sem', 'sem:x#1', 0, 'down');
      if (s.preemptible) yield { op: 'hold' };
    });
    const t2 = s.spawn('releaser', function* () {
      if (s.preemptible) yield { op: 'up' };
      s.lockdep.release(s.current, 'sem:x#1');
    });
    s.runUntil(t1, (p) => p.op === 'hold');
    expect(s.lockdep.holders('sem:x#1')).toEqual([t1]);
    s.runToEnd(t2);
    expect(t1.heldKeys).toEqual([]);
    s.runToEnd(t1);
    expect(s.lockdep.reports).toEqual([]);
  });

  it('releasing a lock nobody holds is a bad unlock balance report', () => {
    const s = new Scheduler();
    s.run(function* () {
      if (s.preemptible) yield { op: 'up' };
      s.lockdep.release(s.current, 'sem:x#1');
    });
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['unbalanced']);
    expect(s.lockdep.reports[0].text).toContain('bad unlock balance detected');
  });
});
