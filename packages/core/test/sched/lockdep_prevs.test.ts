import { describe, expect, it } from 'vitest';
import { Mutex, RwLock, Scheduler, SpinLock } from '../../src/sched/index.js';

/** The recorded edges as `from->to` strings. */
function edges(s: Scheduler): string[] {
  return s.lockdep.dependencies().map(([from, to]) => `${from}->${to}`);
}

describe('lockdep: check_prevs_add() takes a dependency from the newest held locks only', () => {
  it('nested locks get an edge from the newest held one, not from every held one', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    const C = new Mutex(s, 'C');
    s.run(function* () {
      yield* A.lock();
      yield* B.lock();
      yield* C.lock();
      C.unlock();
      B.unlock();
      A.unlock();
    });
    expect(edges(s)).toEqual(['A->B', 'B->C']);
    // A reaches C through B.
    expect(s.lockdep.dependsOn('A', 'C')).toBe(true);
  });

  it('a cycle closed through an older held lock is reported once, against the newest held one', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const B = new Mutex(s, 'B');
    const X = new Mutex(s, 'X');
    s.run(function* () {
      yield* A.lock();
      yield* B.lock();
      B.unlock();
      A.unlock();
      yield* B.lock();
      yield* X.lock();
      yield* A.lock();
      A.unlock();
      X.unlock();
      B.unlock();
    });
    expect(s.lockdep.reports).toHaveLength(1);
    const r = s.lockdep.reports[0];
    expect(r.kind).toBe('circular');
    expect(r.classes).toEqual(['A', 'B', 'X']);
    expect(r.text).toContain('but task is already holding lock:\n (X)\n');
    expect(r.text).toContain('-> #0 (A):\n       main/1: mutex_lock(A) while holding B, X');
    expect(edges(s)).not.toContain('B->A');
  });

  it('the walk goes on through trylocked locks to the first lock not taken by trylock', () => {
    const s = new Scheduler();
    const A = new Mutex(s, 'A');
    const T = new Mutex(s, 'T');
    const B = new Mutex(s, 'B');
    const C = new Mutex(s, 'C');
    s.run(function* () {
      yield* A.lock();
      expect(T.trylock()).toBe(true);
      // C under a trylocked T: an edge from T and, below it, from A.
      yield* C.lock();
      C.unlock();
      yield* B.lock();
      T.unlock();
      A.unlock();
      B.unlock();
    });
    // B too was taken under the trylocked T.
    expect(edges(s)).toEqual(['T->C', 'T->B', 'A->C', 'A->B']);
    s.run(function* () {
      yield* A.lock();
      expect(T.trylock()).toBe(true);
      yield* B.lock();
      // C under B (not a trylock): an edge from B only.
      yield* C.lock();
      C.unlock();
      B.unlock();
      T.unlock();
      A.unlock();
    });
    expect(edges(s)).toEqual(['T->C', 'T->B', 'A->C', 'A->B', 'B->C']);
    expect(s.lockdep.reports).toEqual([]);
  });

  it.each([true, false])(
    'a held recursive read (v4.8) gets no edge and the walk goes on past it; from 5.10 a read_lock is an ordinary held lock (readLockRecursive %s)',
    (recursive) => {
      const s = new Scheduler({ readLockRecursive: recursive });
      const A = new SpinLock(s, 'A');
      const R = new RwLock(s, 'R');
      const C = new SpinLock(s, 'C');
      s.run(function* () {
        yield* A.lock();
        yield* R.readLock();
        yield* C.lock();
        C.unlock();
        R.readUnlock();
        A.unlock();
      });
      // v4.8 also stores no dependency to a recursive read (A->R): "read-triggered".
      expect(edges(s)).toEqual(recursive ? ['A->C'] : ['A->R', 'R->C']);
      expect(s.lockdep.reports).toEqual([]);
    },
  );

  it('v4.8: a recursive read_lock inside a read hold of its class adds no dependency (check_deadlock() returned 2)', () => {
    const s = new Scheduler({ readLockRecursive: true });
    const L = new RwLock(s, 'L');
    const M = new SpinLock(s, 'M');
    s.run(function* () {
      yield* L.writeLock();
      yield* M.lock();
      M.unlock();
      L.writeUnlock();
      yield* L.readLock();
      yield* M.lock();
      // M -> L would close a cycle with L -> M, but v4.8 checked no dependency here.
      yield* L.readLock();
      L.readUnlock();
      M.unlock();
      L.readUnlock();
    });
    expect(edges(s)).toEqual(['L->M']);
    expect(s.lockdep.reports).toEqual([]);
  });
});
