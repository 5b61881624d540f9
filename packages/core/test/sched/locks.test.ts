import { describe, expect, it } from 'vitest';
import { MmBug } from '../../src/errors.js';
import { createMachine, lockPage, trylockPage, unlockPage } from '../../src/index.js';
import {
  Deadlock,
  type KernelGen,
  Mutex,
  RwLock,
  RwSemaphore,
  Scheduler,
  type SchedWarning,
  SpinLock,
  type Strategy,
  type Task,
} from '../../src/sched/index.js';

const SEEDS = 200;

/**
 * Task bodies that take `lock`, note their name in `order`, hold the lock for one point
 * and release it.
 */
function holdOnce(s: Scheduler, lock: { lock(): KernelGen; unlock(): void }, order: string[]) {
  return (name: string) =>
    function* (): KernelGen {
      yield* lock.lock();
      order.push(name);
      if (s.preemptible) yield { op: 'hold' };
      lock.unlock();
    };
}

function catchDeadlock(fn: () => unknown): Deadlock {
  try {
    fn();
  } catch (e) {
    if (e instanceof Deadlock) return e;
    throw e;
  }
  throw new Error('expected a Deadlock');
}

interface Counter {
  x: number;
  inside: number;
  maxInside: number;
}

/** A non-atomic increment: read, a scheduling point, write back. */
function* racyInc(s: Scheduler, c: Counter): KernelGen {
  if (s.preemptible) yield { op: 'load' };
  const v = c.x;
  c.inside++;
  c.maxInside = Math.max(c.maxInside, c.inside);
  if (s.preemptible) yield { op: 'store' };
  c.x = v + 1;
  c.inside--;
}

type Guard = (s: Scheduler) => (body: () => KernelGen) => KernelGen;

const noLock: Guard = () =>
  function* (body) {
    yield* body();
  };

const withMutex: Guard = (s) => {
  const m = new Mutex(s, 'counter_mutex');
  return function* (body) {
    yield* m.lock();
    yield* body();
    if (s.preemptible) yield m.points.unlock;
    m.unlock();
  };
};

const withSpin: Guard = (s) => {
  const l = new SpinLock(s, 'counter_spin');
  return function* (body) {
    yield* l.lock();
    yield* body();
    if (s.preemptible) yield l.points.unlock;
    l.unlock();
  };
};

const withWriteLock: Guard = (s) => {
  const l = new RwLock(s, 'counter_rw');
  return function* (body) {
    yield* l.writeLock();
    yield* body();
    if (s.preemptible) yield l.points.writeUnlock;
    l.writeUnlock();
  };
};

/** 3 tasks × 3 increments under `guard`, random schedule from `seed`; the final count. */
function raceOnce(seed: number, guard: Guard): Counter {
  const s = new Scheduler({ seed });
  const c: Counter = { x: 0, inside: 0, maxInside: 0 };
  const locked = guard(s);
  for (let t = 0; t < 3; t++) {
    s.spawn(`inc${t}`, function* () {
      for (let i = 0; i < 3; i++) yield* locked(() => racyInc(s, c));
    });
  }
  s.runAll('random');
  return c;
}

describe('mutual exclusion under the random strategy', () => {
  it('without a lock, some seed loses an update', () => {
    let lost = 0;
    for (let seed = 0; seed < SEEDS; seed++) if (raceOnce(seed, noLock).x < 9) lost++;
    expect(lost).toBeGreaterThan(0);
  });

  for (const [name, guard] of [
    ['Mutex', withMutex],
    ['SpinLock', withSpin],
    ['RwLock (write side)', withWriteLock],
  ] as const) {
    it(`${name}: no update is lost for ${SEEDS} seeds`, () => {
      for (let seed = 0; seed < SEEDS; seed++) {
        const c = raceOnce(seed, guard);
        expect(c.x).toBe(9);
        expect(c.maxInside).toBe(1);
      }
    });
  }

  it('RwLock: readers share, never overlap a writer', () => {
    for (let seed = 0; seed < SEEDS; seed++) {
      const s = new Scheduler({ seed });
      const l = new RwLock(s, 'rw');
      let writers = 0;
      let readers = 0;
      let maxReaders = 0;
      let value = 0;
      let bad = 0;
      for (let i = 0; i < 3; i++) {
        s.spawn(`reader${i}`, function* () {
          for (let k = 0; k < 2; k++) {
            yield* l.readLock();
            readers++;
            maxReaders = Math.max(maxReaders, readers);
            if (writers > 0) bad++;
            const seen = value;
            if (s.preemptible) yield { op: 'read_body' };
            if (value !== seen || writers > 0) bad++;
            readers--;
            if (s.preemptible) yield l.points.readUnlock;
            l.readUnlock();
          }
        });
      }
      s.spawn('writer', function* () {
        for (let k = 0; k < 2; k++) {
          yield* l.writeLock();
          writers++;
          if (readers > 0) bad++;
          if (s.preemptible) yield { op: 'write_body' };
          value++;
          writers--;
          if (s.preemptible) yield l.points.writeUnlock;
          l.writeUnlock();
        }
      });
      s.runAll('random');
      expect(bad).toBe(0);
      expect(value).toBe(2);
      if (seed === 0) expect(l.readers).toBe(0);
    }
  });

  it('RwLock: two readers hold it at once', () => {
    const s = new Scheduler();
    const l = new RwLock(s, 'rw');
    const r1 = s.spawn('r1', function* () {
      yield* l.readLock();
      if (s.preemptible) yield { op: 'hold' };
      l.readUnlock();
    });
    const r2 = s.spawn('r2', function* () {
      yield* l.readLock();
      if (s.preemptible) yield { op: 'hold' };
      l.readUnlock();
    });
    s.runUntil(r1, (p) => p.op === 'hold');
    s.runUntil(r2, (p) => p.op === 'hold');
    expect(l.readers).toBe(2);
    s.runAll();
    expect(l.readers).toBe(0);
  });
});

describe('RwLock fairness: a waiting writer holds new readers back', () => {
  it('a waiting writer holds back new readers, then gets the lock before them', () => {
    const s = new Scheduler();
    const l = new RwLock(s, 'rw');
    const order: string[] = [];
    const reader = (name: string) =>
      s.spawn(name, function* () {
        yield* l.readLock();
        order.push(name);
        if (s.preemptible) yield { op: 'hold' };
        l.readUnlock();
      });
    const r1 = reader('r1');
    const w = s.spawn('w', function* () {
      yield* l.writeLock();
      order.push('w');
      if (s.preemptible) yield { op: 'hold' };
      l.writeUnlock();
    });
    const r2 = reader('r2');
    s.runUntil(r1, (p) => p.op === 'hold'); // r1 holds for read
    s.runUntil(w, (p) => p.op === 'block'); // w waits for r1
    expect(l.writersWaiting).toBe(1);
    expect(l.readTrylock()).toBe(false);
    s.runUntil(r2, (p) => p.op === 'block'); // r2 waits behind w
    expect(r2.blockedOn?.what).toBe('read_lock(rw)');
    s.runToEnd(r1); // read_unlock wakes both; w goes first when stepped
    expect(s.runnable).toEqual([w, r2]);
    s.runAll('run-to-completion');
    expect(order).toEqual(['r1', 'w', 'r2']);
  });

  it('a recursive read behind a waiting writer deadlocks: rwlock_t (process context) and rwsem', () => {
    // qrwlock: only interrupt-context readers pass a waiting writer; mops' readers are all
    // process-context ones, so the second read_lock() queues behind the writer, which waits
    // for the first. Lockdep (5.10 on, the default) reports the recursion.
    for (const Kind of [RwLock, RwSemaphore]) {
      const s = new Scheduler();
      const l = new Kind(s, 'rw');
      const r = s.spawn('r', function* () {
        yield* l.readLock();
        if (s.preemptible) yield { op: 'again' };
        yield* l.readLock();
        l.readUnlock();
        l.readUnlock();
      });
      const w = s.spawn('w', function* () {
        yield* l.writeLock();
        l.writeUnlock();
      });
      s.runUntil(r, (p) => p.op === 'again');
      s.runUntil(w, (p) => p.op === 'block');
      const d = catchDeadlock(() => s.runToEnd(r));
      expect(d.entries.map((e) => [e.task, e.holders])).toEqual([
        [r, [r]],
        [w, [r]],
      ]);
      expect(s.lockdep.reports.map((x) => x.kind)).toEqual(['recursive']);
      expect(s.lockdep.reports[0].text).toContain('WARNING: possible recursive locking detected');
    }
  });

  it('RwSemaphore has the down/up names and sleeps', () => {
    const s = new Scheduler();
    const sem = new RwSemaphore(s, 'mmap_lock');
    expect(sem.key).toMatch(/^rwsem:mmap_lock#/);
    expect(sem.points.readLock.op).toBe('down_read');
    s.run(function* () {
      yield* sem.downRead();
      expect(sem.downWriteTrylock()).toBe(false);
      sem.upRead();
      yield* sem.downWrite();
      expect(sem.downReadTrylock()).toBe(false);
      sem.upWrite();
      expect(sem.downReadTrylock()).toBe(true);
      sem.upRead();
    });
  });
});

describe('rwlock_t: the queued rwlock order', () => {
  /** Spawns a task taking `l` for read (`r…`) or write (`w…`), holding it over a point. */
  function locker(s: Scheduler, l: RwLock, name: string, order: string[]): Task {
    const write = name.startsWith('w');
    return s.spawn(name, function* () {
      if (write) yield* l.writeLock();
      else yield* l.readLock();
      order.push(name);
      if (s.preemptible) yield { op: 'hold' };
      order.push(`/${name}`);
      if (write) l.writeUnlock();
      else l.readUnlock();
    });
  }

  /**
   * w0 holds the lock for write; the others queue in `names` order (each blocks before the
   * next starts); then w0 finishes and `pick` schedules the rest.
   */
  function queueBehindWriter(names: string[], pick: Strategy): string[] {
    const s = new Scheduler({ seed: 7 });
    const l = new RwLock(s, 'pool->lock');
    const order: string[] = [];
    const w0 = locker(s, l, 'w0', order);
    const tasks = names.map((n) => locker(s, l, n, order));
    s.runUntil(w0, (p) => p.op === 'hold');
    for (const t of tasks) s.runUntil(t, (p) => p.op === 'block');
    expect(l.queued).toEqual(tasks);
    s.runToEnd(w0);
    s.runAll(pick);
    expect(l.queued).toEqual([]);
    return order;
  }

  /** Every pick order the scheduler can make, by seeds of the random strategy, and more. */
  const strategies: Strategy[] = [
    'run-to-completion',
    'round-robin',
    (runq) => runq[runq.length - 1],
    ...Array.from({ length: 50 }, (): Strategy => 'random'),
  ];

  it('a reader queued before a writer gets the lock first, whatever runs first (W0, R1, W1)', () => {
    for (const pick of strategies) {
      const order = queueBehindWriter(['r1', 'w1'], pick);
      expect(order).toEqual(['w0', '/w0', 'r1', '/r1', 'w1', '/w1']);
    }
  });

  it('stepping the later writer first does not let it pass the queued reader', () => {
    const s = new Scheduler();
    const l = new RwLock(s, 'pool->lock');
    const order: string[] = [];
    const w0 = locker(s, l, 'w0', order);
    const r1 = locker(s, l, 'r1', order);
    const w1 = locker(s, l, 'w1', order);
    s.runUntil(w0, (p) => p.op === 'hold');
    s.runUntil(r1, (p) => p.op === 'block');
    s.runUntil(w1, (p) => p.op === 'block');
    expect(l.writersWaiting).toBe(1);
    expect(l.writerWaitingBit).toBe(false); // w1 is not the head: r1 is
    s.runToEnd(w0);
    expect(s.step(w1).op).toBe('block'); // not the head: back to sleep
    // r1, at the head, has counted itself in: a writer's fast path and trylock fail.
    expect(l.writeTrylock()).toBe(false);
    expect(s.step(r1).op).toBe('hold');
    expect(l.readers).toBe(1);
    // w1 is the head now: it sets _QW_WAITING and waits for r1, holding new readers back.
    expect(s.step(w1).op).toBe('block');
    expect(l.writerWaitingBit).toBe(true);
    expect(l.readTrylock()).toBe(false);
    s.runAll();
    expect(order).toEqual(['w0', '/w0', 'r1', '/r1', 'w1', '/w1']);
    expect(l.writersWaiting).toBe(0);
    expect(l.writerWaitingBit).toBe(false);
  });

  it('queued readers at the front go in together; a reader behind a writer waits for it', () => {
    for (const pick of strategies) {
      const order = queueBehindWriter(['r1', 'r2', 'w1', 'r3'], pick);
      // w1 waits for both readers; r3, queued behind w1, comes after it.
      const at = (n: string) => order.indexOf(n);
      expect(order.slice(0, 2)).toEqual(['w0', '/w0']);
      expect(at('w1')).toBeGreaterThan(Math.max(at('/r1'), at('/r2')));
      expect(order.slice(6)).toEqual(['w1', '/w1', 'r3', '/r3']);
    }
  });

  it('the next queued reader follows the head reader at once: they hold it together', () => {
    const s = new Scheduler();
    const l = new RwLock(s, 'rw');
    const order: string[] = [];
    const w0 = locker(s, l, 'w0', order);
    const r1 = locker(s, l, 'r1', order);
    const r2 = locker(s, l, 'r2', order);
    const w1 = locker(s, l, 'w1', order);
    s.runUntil(w0, (p) => p.op === 'hold');
    for (const t of [r1, r2, w1]) s.runUntil(t, (p) => p.op === 'block');
    s.runToEnd(w0);
    expect(s.step(r2).op).toBe('block'); // not the head yet
    expect(s.step(r1).op).toBe('hold');
    expect(s.step(r2).op).toBe('hold');
    expect(l.readers).toBe(2);
    expect(l.queued).toEqual([w1]);
    s.runAll();
    expect(order.slice(-2)).toEqual(['w1', '/w1']);
  });

  it('a new reader does not queue while nothing holds the lock back (fast path)', () => {
    const s = new Scheduler();
    const l = new RwLock(s, 'rw');
    const order: string[] = [];
    const w0 = locker(s, l, 'w0', order);
    const r1 = locker(s, l, 'r1', order);
    const r2 = locker(s, l, 'r2', order);
    s.runUntil(w0, (p) => p.op === 'hold');
    s.runUntil(r1, (p) => p.op === 'block');
    s.runToEnd(w0);
    // r1 is queued but has not run yet: the lock word holds neither a writer nor
    // _QW_WAITING, so r2's fast path succeeds, as in the kernel.
    expect(s.runUntil(r2, (p) => p.op === 'hold').op).toBe('hold');
    expect(s.runUntil(r1, (p) => p.op === 'hold').op).toBe('hold');
    expect(l.readers).toBe(2);
    s.runAll();
  });
});

describe('rwlock_t recursive read and lockdep, per profile', () => {
  function recursiveRead(s: Scheduler, withWriter: boolean): { r: Task; w?: Task } {
    const l = new RwLock(s, 'pool->lock');
    const r = s.spawn('r', function* () {
      yield* l.readLock();
      if (s.preemptible) yield { op: 'again' };
      yield* l.readLock();
      l.readUnlock();
      l.readUnlock();
    });
    if (!withWriter) {
      s.runAll();
      return { r };
    }
    const w = s.spawn('w', function* () {
      yield* l.writeLock();
      l.writeUnlock();
    });
    s.runUntil(r, (p) => p.op === 'again');
    s.runUntil(w, (p) => p.op === 'block');
    catchDeadlock(() => s.runToEnd(r));
    return { r, w };
  }

  it('the machine passes the profile: v4.8 read_lock is recursive for lockdep, 6.x not', () => {
    expect(createMachine({ memory: '4M', profile: 'v4.8' }).sched.lockdep.readLockRecursive).toBe(
      true,
    );
    for (const profile of ['v6.0', 'v6.3', 'v6.17'] as const) {
      const m = createMachine({ memory: '4M', profile });
      expect(m.sched.lockdep.readLockRecursive).toBe(false);
    }
    expect(new Scheduler().lockdep.readLockRecursive).toBe(false);
  });

  it('5.10 on: the first recursive read is reported, with or without a writer in between', () => {
    const s = new Scheduler({ readLockRecursive: false });
    const { r } = recursiveRead(s, false);
    expect(r.state).toBe('done'); // no writer waited: the second read_lock got in
    expect(s.lockdep.reports.map((x) => x.kind)).toEqual(['recursive']);
    expect(s.lockdep.reports[0].text).toContain(
      '(pool->lock) [rwlock:pool->lock#1] (the same lock)',
    );
    const s2 = new Scheduler({ readLockRecursive: false });
    recursiveRead(s2, true);
    expect(s2.lockdep.reports.map((x) => x.kind)).toEqual(['recursive']);
  });

  it('v4.8: lockdep says nothing, but the recursive read behind a waiting writer still deadlocks', () => {
    const s = new Scheduler({ readLockRecursive: true });
    const { r } = recursiveRead(s, false);
    expect(r.state).toBe('done');
    expect(s.lockdep.reports).toEqual([]);
    const s2 = new Scheduler({ readLockRecursive: true });
    const { r: r2, w } = recursiveRead(s2, true);
    expect([r2.state, w?.state]).toEqual(['blocked', 'blocked']);
    expect(s2.lockdep.reports).toEqual([]);
  });

  it('v4.8: a recursive read of another lock of the same class is no report either', () => {
    const s = new Scheduler({ readLockRecursive: true });
    const a = new RwLock(s, 'rw');
    const b = new RwLock(s, 'rw');
    s.run(function* () {
      yield* a.readLock();
      yield* b.readLock();
      b.readUnlock();
      a.readUnlock();
    });
    expect(s.lockdep.reports).toEqual([]);
  });
});

describe('trylock', () => {
  it('mutex_trylock / spin_trylock / write_trylock succeed only when free', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'm');
    const sp = new SpinLock(s, 'sp');
    const rw = new RwLock(s, 'rw');
    s.run(function* () {
      if (s.preemptible) yield m.points.trylock;
      expect(m.trylock()).toBe(true);
      expect(m.trylock()).toBe(false);
      expect(m.owner).toBe(s.current);
      m.unlock();
      expect(sp.trylock()).toBe(true);
      expect(sp.trylock()).toBe(false);
      expect(s.current?.atomicDepth).toBe(1);
      sp.unlock();
      expect(s.current?.atomicDepth).toBe(0);
      expect(rw.readTrylock()).toBe(true);
      expect(rw.writeTrylock()).toBe(false);
      rw.readUnlock();
      expect(rw.writeTrylock()).toBe(true);
      expect(rw.readTrylock()).toBe(false);
      rw.writeUnlock();
    });
    // A self-trylock fails without deadlock and without a lockdep report.
    expect(s.lockdep.reports).toEqual([]);
  });

  it('lockAlone / writeLockAlone: plain acquisitions for a task running alone, with lockdep', () => {
    const s = new Scheduler();
    const a = new SpinLock(s, 'A');
    const b = new RwLock(s, 'B');
    s.run(function* () {
      // Alone: taken without a scheduling point, counted like lock() / write_lock().
      expect(a.lockAlone()).toBe(true);
      expect(a.owner).toBe(s.current);
      expect(s.current?.atomicDepth).toBe(1);
      expect(a.lockAlone()).toBe(false);
      expect(b.writeLockAlone()).toBe(true);
      expect(b.writeLockAlone()).toBe(false);
      expect(s.current?.heldKeys).toEqual([a.key, b.key]);
      b.writeUnlock();
      a.unlock();
      // The opposite order is an ABBA inversion lockdep reports, as with lock().
      expect(b.writeLockAlone()).toBe(true);
      expect(a.lockAlone()).toBe(true);
      a.unlock();
      b.writeUnlock();
      // (A lone task has no scheduling points to yield.)
      if (s.preemptible) yield { op: 'unreachable' };
    });
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['circular']);
    // With another task able to run, they refuse and leave the lock alone.
    const other = new SpinLock(s, 'C');
    s.spawn('t1', function* () {
      expect(other.lockAlone()).toBe(false);
      expect(b.writeLockAlone()).toBe(false);
      expect(other.locked).toBe(false);
      yield { op: 'x' };
    });
    s.spawn('t2', function* () {
      yield { op: 'y' };
    });
    s.runAll('round-robin');
  });

  it('locks can be used outside tasks (setup code)', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'm');
    expect(m.trylock()).toBe(true);
    expect(m.owner).toBeUndefined();
    m.unlock();
    expect(m.locked).toBe(false);
  });
});

describe('unlocking a spinlock or mutex nobody holds', () => {
  it.each(['v4.8', 'v6.3'] as const)(
    '%s: lockdep reports a bad unlock balance, the lock stays unlocked, the task runs on and gets its preemption back once',
    (profile) => {
      const m = createMachine({ memory: '4M', profile });
      const sp = new SpinLock(m.sched, 'sp');
      const mx = new Mutex(m.sched, 'mx');
      const other = new SpinLock(m.sched, 'other');
      let depth = -1;
      m.run(function* () {
        yield* other.lock();
        yield* sp.lock();
        sp.unlock();
        sp.unlock(); // the second: preempt_enable() drops the count `other` holds
        depth = m.sched.current?.atomicDepth ?? -1;
        yield* mx.lock();
        mx.unlock();
        mx.unlock();
        other.unlock(); // its count is gone already, and stays at zero
      });
      expect(depth).toBe(0);
      expect(m.sched.warnings.filter((w) => w.kind === 'sleep_in_atomic')).toEqual([]);
      expect(sp.locked || mx.locked).toBe(false);
      expect(m.mem.halted).toBeUndefined();
      const reports = m.sched.lockdep.reports;
      expect(reports.map((r) => r.kind)).toEqual(['unbalanced', 'unbalanced']);
      const title =
        profile === 'v4.8'
          ? '[ BUG: bad unlock balance detected! ]'
          : 'WARNING: bad unlock balance detected!';
      expect(reports[0].text.split('\n').slice(1, 4)).toEqual([
        title,
        '-'.repeat(37),
        `main/1 is trying to release lock (${sp.key}) at:`,
      ]);
      expect(m.mem.warnings.map((w) => w.kind)).toEqual(['lockdep', 'lockdep']);
    },
  );

  it.each([
    ['v4.8', '!lock->owner'],
    ['v6.3', '__owner_task(owner) != current'],
  ] as const)(
    '%s: with lockdep off, the lock’s own debug check reports the first, and turns lock debugging off',
    (profile, check) => {
      const run = (body: (s: Scheduler) => void) => {
        const m = createMachine({ memory: '4M', profile });
        const s = m.sched;
        s.lockdep.enabled = false;
        s.run(function* () {
          if (s.preemptible) yield { op: 'x' };
          body(s);
        });
        return s.warnings;
      };
      expect(
        run((s) => {
          const sp = new SpinLock(s, 'sp');
          sp.unlock();
          sp.unlock();
          new Mutex(s, 'mx').unlock();
        }),
      ).toEqual([
        {
          kind: 'debug_locks',
          text: 'BUG: spinlock already unlocked on CPU#0, main/1\n lock: sp, .magic: dead4ead, .owner: <none>/-1, .owner_cpu: -1',
        },
      ]);
      // A failed lockdep_assert_held() is a plain WARN_ON: debug_locks stays on.
      const warned = run((s) => {
        new Mutex(s, 'other').assertHeld();
        new Mutex(s, 'mx').unlock();
      });
      expect(warned.map((w) => w.kind)).toEqual(['lockdep', 'debug_locks']);
      expect(warned[1]).toEqual({
        kind: 'debug_locks',
        text: `WARNING: DEBUG_LOCKS_WARN_ON(${check}): mx is not locked, unlocked by main/1`,
      });
    },
  );
});

describe('lock misuse is an MmBug', () => {
  it('unlocking an unlocked rwlock or rw_semaphore', () => {
    const s = new Scheduler();
    expect(() => new RwLock(s, 'rw').readUnlock()).toThrow(MmBug);
    expect(() => new RwLock(s, 'rw').writeUnlock()).toThrow(MmBug);
    expect(() => new RwSemaphore(s, 'sem').upWrite()).toThrow(MmBug);
  });

  it('one raised in a task of a machine halts the machine, as a BUG with a page dump does', () => {
    const m = createMachine({ memory: '4M' });
    const lock = new RwLock(m.sched, 'rw');
    expect(() =>
      m.run(function* () {
        yield* lock.readLock();
        lock.readUnlock();
        lock.readUnlock();
      }),
    ).toThrow('not held for read');
    expect(m.mem.halted?.message).toContain('not held for read');
    expect(() => m.allocPages(0, 0)).toThrow(expect.objectContaining({ code: 'E_HALTED' }));
  });

  it('unlocking an rwlock held by another task', () => {
    for (const make of [
      (s: Scheduler) => {
        const l = new RwLock(s, 'rw');
        return { lock: () => l.writeLock(), unlock: () => l.writeUnlock() };
      },
      (s: Scheduler) => {
        const l = new RwLock(s, 'rw');
        return { lock: () => l.readLock(), unlock: () => l.readUnlock() };
      },
    ]) {
      const s = new Scheduler();
      const l = make(s);
      const owner = s.spawn('owner', function* () {
        yield* l.lock();
        if (s.preemptible) yield { op: 'hold' };
        l.unlock();
      });
      const thief = s.spawn('thief', function* () {
        if (s.preemptible) yield { op: 'steal' };
        l.unlock();
      });
      s.runUntil(owner, (p) => p.op === 'hold');
      s.step(thief);
      expect(() => s.step(thief)).toThrow(MmBug);
      expect(thief.state).toBe('failed');
      expect(String((thief.error as Error).message)).toMatch(/owner|held|hold/);
      s.runAll();
      expect(owner.state).toBe('done');
    }
  });
});

describe('unlocking a spinlock or mutex another task holds', () => {
  it.each([
    ['v4.8', 'lock->owner != current'],
    ['v6.3', '__owner_task(owner) != current'],
  ] as const)(
    '%s: lockdep reports the caller’s bad unlock balance, the lock is released all the same, and the holder’s own unlock later is silent',
    (profile, check) => {
      for (const lockdepOn of [true, false])
        for (const kind of ['mutex', 'spinlock'] as const) {
          const m = createMachine({ memory: '4M', profile });
          const s = m.sched;
          s.lockdep.enabled = lockdepOn;
          const l = kind === 'mutex' ? new Mutex(s, 'drv') : new SpinLock(s, 'drv');
          const owner = s.spawn('owner', function* () {
            yield* l.lock();
            yield { op: 'hold' };
            l.unlock();
          });
          const thief = s.spawn('thief', function* () {
            yield { op: 'steal' };
            l.unlock();
            yield { op: 'after' };
          });
          s.runUntil(owner, (p) => p.op === 'hold');
          s.step(thief);
          s.step(thief);
          expect(l.locked).toBe(false);
          expect(thief.atomicDepth).toBe(0);
          s.runAll();
          expect([owner.state, thief.state]).toEqual(['done', 'done']);
          expect(m.mem.halted).toBeUndefined();
          const kinds = s.warnings.map((w) => w.kind);
          if (lockdepOn) {
            expect(kinds).toEqual(['lockdep']);
            expect(s.lockdep.reports[0].text).toContain(
              `thief/2 is trying to release lock (${l.key}) at:`,
            );
          } else {
            expect(kinds).toEqual(['debug_locks']);
            expect(s.warnings[0].text).toBe(
              kind === 'mutex'
                ? `WARNING: DEBUG_LOCKS_WARN_ON(${check}): drv owned by owner/1, unlocked by thief/2`
                : 'BUG: spinlock wrong owner on CPU#1, thief/2\n lock: drv, .magic: dead4ead, .owner: owner/1, .owner_cpu: 0',
            );
          }
        }
    },
  );
});

describe('a lock handed to a waiter, then unlocked by its old holder', () => {
  it.each(['spinlock', 'mutex'] as const)(
    '%s: the waiter takes it once, and later waits like any task',
    (kind) => {
      const m = createMachine({ memory: '4M', profile: 'v6.3' });
      const s = m.sched;
      const l = kind === 'mutex' ? new Mutex(s, 'L') : new SpinLock(s, 'L');
      let xHolds = false;
      const log: string[] = [];
      const a = s.spawn('A', function* () {
        yield* l.lock();
        yield { op: 'hold' };
        l.unlock(); // the lock is W's by now
        yield { op: 'A-done' };
      });
      const w = s.spawn('W', function* () {
        yield { op: 'w-start' };
        yield* l.lock();
        l.unlock();
        yield { op: 'w-between' };
        yield* l.lock();
        log.push(`W took L again while X held it: ${xHolds}`);
        l.unlock();
      });
      const thief = s.spawn('thief', function* () {
        yield { op: 'steal' };
        l.unlock(); // A's lock, handed to W
        yield { op: 'after' };
      });
      const x = s.spawn('X', function* () {
        yield { op: 'x-start' };
        yield* l.lock();
        xHolds = true;
        yield { op: 'x-hold' };
        xHolds = false;
        l.unlock();
      });
      const stepWhileRunnable = () => {
        while (w.state === 'runnable') s.step(w);
      };
      s.runUntil(a, (p) => p.op === 'hold');
      s.runUntil(w, (p) => p.op === 'w-start');
      stepWhileRunnable();
      s.runUntil(thief, (p) => p.op === 'steal');
      s.step(thief);
      // A spinlock goes to the head of its queue at once; a mutex wakes it to take it.
      if (kind === 'spinlock') expect(l.owner).toBe(w);
      s.runUntil(a, (p) => p.op === 'A-done');
      s.runUntil(w, (p) => p.op === 'w-between');
      s.runUntil(x, (p) => p.op === 'x-hold');
      expect(l.owner).toBe(x);
      stepWhileRunnable();
      expect(w.state).toBe('blocked');
      s.runAll();
      expect(log).toEqual(['W took L again while X held it: false']);
    },
  );
});

describe('sleep in atomic context', () => {
  function collect(): { warnings: SchedWarning[]; sched: Scheduler } {
    const warnings: SchedWarning[] = [];
    const sched = new Scheduler({ onWarning: (kind, text) => warnings.push({ kind, text }) });
    return { warnings, sched };
  }

  it('a contended lock_page under a spinlock: lock_page()’s might_sleep once, then schedule()’s bug at the sleep', () => {
    const m = createMachine({ memory: '4M', zones: 'normal-only', profile: 'v6.3' });
    const s = m.sched;
    const pfn = m.allocPages(0, 0);
    const sp = new SpinLock(s, 'zone->lock');
    expect(trylockPage(m.mem, pfn)).toBe(true);
    s.spawn('t', function* () {
      yield* sp.lock();
      yield* lockPage(m, pfn);
      unlockPage(m, pfn);
      sp.unlock();
    });
    s.spawn('unlocker', function* () {
      yield { op: 'unlock_page', pfn };
      unlockPage(m, pfn);
    });
    s.runAll('run-to-completion');
    const kinds = s.warnings.map((w) => w.kind);
    expect(kinds).toEqual(['sleep_in_atomic', 'scheduling_while_atomic']);
    expect(s.warnings[0].text).toMatch(/invalid context at lock_page\n/);
    expect(s.warnings[1].text).toMatch(/^BUG: scheduling while atomic: t\/1\/0x00000002\n/);
  });

  it.each([
    [
      'v6.3',
      'in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: main\n' +
        'preempt_count: 2, expected: 0\nRCU nest depth: 0, expected: 0\n',
    ],
    ['v4.8', 'in_atomic(): 1, irqs_disabled(): 0, pid: 1, name: main\n'],
  ] as const)('might_sleep()’s report as %s prints it', (profile, lines) => {
    const m = createMachine({ memory: '4M', zones: 'normal-only', profile });
    const s = m.sched;
    const a = new SpinLock(s, 'a');
    const b = new SpinLock(s, 'b');
    const mx = new Mutex(s, 'mx');
    s.run(function* () {
      yield* a.lock();
      yield* b.lock();
      yield* mx.lock();
      mx.unlock();
      b.unlock();
      a.unlock();
    });
    const text = s.warnings.find((w) => w.kind === 'sleep_in_atomic')?.text ?? '';
    expect(text).toMatch(
      /^BUG: sleeping function called from invalid context at mutex_lock\(mx\)\n/,
    );
    const rest = text.slice(text.indexOf('\n') + 1);
    expect(rest.slice(0, lines.length)).toBe(lines);
  });

  it('mutex_lock under a spinlock warns even when the mutex is free (might_sleep)', () => {
    const { warnings, sched: s } = collect();
    const sp = new SpinLock(s, 'pages_lock');
    const m = new Mutex(s, 'balloon_lock');
    s.run(function* () {
      yield* sp.lock();
      yield* m.lock();
      m.unlock();
      sp.unlock();
    });
    const sleeps = warnings.filter((w) => w.kind === 'sleep_in_atomic');
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0].text).toContain('BUG: sleeping function called from invalid context');
    expect(sleeps[0].text).toContain('mutex_lock(balloon_lock)');
    expect(sleeps[0].text).toContain('(pages_lock)');
    expect(s.warnings).toEqual(warnings);
  });

  it('blocking on any wait key (a page lock) while holding a spinlock warns', () => {
    const { warnings, sched: s } = collect();
    const sp = new SpinLock(s, 'zone->lock');
    const t = s.spawn('t', function* () {
      yield* sp.lock();
      yield { op: 'block', key: 'page:0x42', what: 'lock_page pfn 0x42' };
      sp.unlock();
    });
    s.spawn('unlocker', function* () {
      if (s.preemptible) yield { op: 'unlock_page', pfn: 0x42 };
      s.wake('page:0x42');
    });
    s.runAll('run-to-completion');
    expect(t.state).toBe('done');
    expect(warnings.map((w) => w.kind)).toEqual(['sleep_in_atomic', 'scheduling_while_atomic']);
    expect(warnings[0].text).toContain('lock_page pfn 0x42');
    // schedule() counts its own preempt_disable(): the spinlock's 1, plus 1.
    expect(warnings[1].text).toMatch(
      /^BUG: scheduling while atomic: t\/1\/0x00000002\n.*zone->lock/s,
    );
  });

  it('spinning on a contended spinlock while holding another is not a sleep', () => {
    const { warnings, sched: s } = collect();
    const a = new SpinLock(s, 'a');
    const b = new SpinLock(s, 'b');
    const t1 = s.spawn('t1', function* () {
      yield* a.lock();
      yield* b.lock();
      b.unlock();
      a.unlock();
    });
    const t2 = s.spawn('t2', function* () {
      yield* b.lock();
      if (s.preemptible) yield { op: 'hold' };
      b.unlock();
    });
    s.runUntil(t2, (p) => p.op === 'hold');
    s.runUntil(t1, (p) => p.op === 'block');
    expect(t1.blockedOn?.what).toBe('spin_lock(b)');
    s.runAll();
    expect(warnings).toEqual([]);
    expect([t1.atomicDepth, t2.atomicDepth]).toEqual([0, 0]);
  });

  it('holding a mutex is not atomic: sleeping under it is fine', () => {
    const { warnings, sched: s } = collect();
    const m = new Mutex(s, 'm');
    const m2 = new Mutex(s, 'm2');
    s.run(function* () {
      yield* m.lock();
      yield* m2.lock();
      m2.unlock();
      m.unlock();
    });
    expect(warnings).toEqual([]);
  });
});

describe('contention', () => {
  it('a contended mutex parks the waiters in order; an unlock wakes only the first', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'm');
    const tasks: Task[] = [];
    const order: string[] = [];
    const body = holdOnce(s, m, order);
    for (const name of ['a', 'b', 'c']) tasks.push(s.spawn(name, body(name)));
    const [a, b, c] = tasks;
    s.runUntil(a, (p) => p.op === 'hold');
    s.runUntil(b, (p) => p.op === 'block');
    s.runUntil(c, (p) => p.op === 'block');
    expect(s.hasWaiters(m.key)).toBe(true);
    expect(b.blockedOn?.key).toBe(m.key);
    s.runToEnd(a);
    // __mutex_unlock_slowpath() wakes the first waiter only: c sleeps on behind b.
    expect(s.runnable).toEqual([b]);
    expect(c.state).toBe('blocked');
    s.runAll();
    expect(order).toEqual(['a', 'b', 'c']);
    expect(m.locked).toBe(false);
  });

  /**
   * a holds the mutex and b waits; a's unlock wakes b, but c (not queued) takes the mutex
   * before b runs; b finds it taken and sleeps again; d comes along. Then c unlocks.
   */
  function robbed(mutexHandoff: boolean) {
    const s = new Scheduler({ mutexHandoff });
    const m = new Mutex(s, 'm');
    const order: string[] = [];
    const body = holdOnce(s, m, order);
    const a = s.spawn('a', body('a'));
    const b = s.spawn('b', body('b'));
    s.runUntil(a, (p) => p.op === 'hold');
    s.runUntil(b, (p) => p.op === 'block');
    const c = s.spawn('c', body('c'));
    s.runUntil(c, (p) => p.op === 'mutex_lock');
    s.runToEnd(a); // wakes b
    expect(b.state).toBe('runnable');
    s.runUntil(c, (p) => p.op === 'hold');
    const d = s.spawn('d', body('d'));
    s.runUntil(d, (p) => p.op === 'mutex_lock');
    expect(s.step(b).op).toBe('block');
    s.runToEnd(c);
    return { s, m, order, b, d };
  }

  it('a newcomer may steal the mutex from the woken waiter, which then gets it by handoff at the next unlock', () => {
    const { s, m, order, b, d } = robbed(true);
    // The handoff: held for b before it runs, so d (arriving now) cannot take it.
    expect(m.owner).toBe(b);
    expect(s.step(d).op).toBe('block');
    s.runAll();
    expect(order).toEqual(['a', 'c', 'b', 'd']);
    expect(m.locked).toBe(false);
  });

  it('a mutex waiter stays first in line until it owns the mutex: an unlock while it is awake wakes nobody else', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'm');
    const order: string[] = [];
    const body = holdOnce(s, m, order);
    const [h, a, d, c] = ['h', 'a', 'd', 'c'].map((n) => s.spawn(n, body(n)));
    s.runUntil(h, (p) => p.op === 'hold');
    s.runUntil(a, (p) => p.op === 'block');
    s.runUntil(d, (p) => p.op === 'block');
    s.runUntil(c, (p) => p.op === 'mutex_lock');
    s.runToEnd(h); // wakes a
    expect([a.state, d.state]).toEqual(['runnable', 'blocked']);
    s.runToEnd(c); // steals the free mutex and releases it before a runs
    // a is still first on the wait list and already awake: d sleeps on.
    expect(d.state).toBe('blocked');
    s.runAll();
    expect(order).toEqual(['h', 'c', 'a', 'd']);
  });

  it('v4.8 has no mutex handoff: a robbed waiter can be robbed again', () => {
    const { s, m, order, b, d } = robbed(false);
    // No handoff: the mutex is free, b is woken, d takes it first.
    expect(m.locked).toBe(false);
    s.runUntil(d, (p) => p.op === 'hold');
    expect(s.step(b).op).toBe('block');
    s.runAll();
    expect(order).toEqual(['a', 'c', 'd', 'b']);
  });

  it('a Deadlock report names the waiter a mutex was handed to while that waiter has yet to run', () => {
    // y holds M and h waits; z robs h, which asks for a handoff; z takes S2, x (h's CPU)
    // takes S; z's unlock hands M to h, which x keeps off its CPU while spinning on S2;
    // z then sleeps on M.
    const s = new Scheduler();
    const m = new Mutex(s, 'M');
    const S = new SpinLock(s, 'S');
    const S2 = new SpinLock(s, 'S2');
    const hold = (op: string) => ({ op });
    const y = s.spawn(
      'y',
      function* (): KernelGen {
        yield* m.lock();
        yield hold('hy');
        m.unlock();
      },
      { cpu: 1 },
    );
    const h = s.spawn(
      'h',
      function* (): KernelGen {
        yield* m.lock();
        m.unlock();
      },
      { cpu: 0 },
    );
    const z = s.spawn(
      'z',
      function* (): KernelGen {
        yield* m.lock();
        yield hold('hz');
        yield* S2.lock();
        yield hold('hz2');
        m.unlock();
        yield hold('after');
        yield* m.lock();
        S2.unlock();
        m.unlock();
      },
      { cpu: 2 },
    );
    const x = s.spawn(
      'x',
      function* (): KernelGen {
        yield* S.lock();
        yield hold('hx');
        yield* S2.lock();
        S2.unlock();
        S.unlock();
      },
      { cpu: 0 },
    );
    s.runUntil(y, (p) => p.op === 'hy');
    s.runUntil(h, (p) => p.op === 'block');
    s.runUntil(z, (p) => p.op === 'mutex_lock');
    s.runToEnd(y);
    s.runUntil(z, (p) => p.op === 'hz');
    expect(s.step(h).op).toBe('block');
    s.runUntil(z, (p) => p.op === 'hz2');
    s.runUntil(x, (p) => p.op === 'hx');
    s.runUntil(z, (p) => p.op === 'after');
    expect(m.owner).toBe(h);
    s.runUntil(x, (p) => p.op === 'block');
    const e = catchDeadlock(() => s.runAll());
    const onM = e.entries.find((en) => en.task === z);
    expect(onM?.holders).toEqual([h]);
    expect(e.message + e.dump).toMatch(
      /blocked on mutex_lock\(M\) \[[^\]]+\], handed to h\/2, which has yet to run/,
    );
  });

  it('spin_lock() by the holder spins forever: a Deadlock, not a second hold', () => {
    const s = new Scheduler();
    const l = new SpinLock(s, 'l');
    s.spawn('t', function* () {
      yield* l.lock();
      yield* l.lock();
      l.unlock();
    });
    const e = catchDeadlock(() => s.runAll());
    expect(e).toBeInstanceOf(Deadlock);
    expect(s.lockdep.reports.map((r) => r.kind)).toContain('recursive');
  });

  it('spinners get a spinlock in the order they started spinning; a newcomer cannot jump the queue', () => {
    const s = new Scheduler();
    const l = new SpinLock(s, 'l');
    const order: string[] = [];
    const body = holdOnce(s, l, order);
    const a = s.spawn('a', body('a'), { cpu: 0 });
    const b = s.spawn('b', body('b'), { cpu: 1 });
    const c = s.spawn('c', body('c'), { cpu: 2 });
    s.runUntil(a, (p) => p.op === 'hold');
    s.runUntil(b, (p) => p.op === 'block');
    s.runUntil(c, (p) => p.op === 'block');
    const d = s.spawn('d', body('d'), { cpu: 3 });
    s.runUntil(d, (p) => p.op === 'spin_lock');
    s.runToEnd(a);
    // queued_spin_lock(): the lock word is not 0 while b and c wait, so d queues behind them.
    expect(l.owner).toBe(b);
    expect(c.state).toBe('blocked');
    expect(s.step(d).op).toBe('block');
    s.runAll();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(l.locked).toBe(false);
  });

  it('assertHeld warns when the current task does not hold the lock', () => {
    const s = new Scheduler();
    const m = new Mutex(s, 'balloon_lock');
    s.run(function* () {
      expect(m.assertHeld()).toBe(false);
      yield* m.lock();
      expect(m.isHeld()).toBe(true);
      expect(m.assertHeld()).toBe(true);
      m.unlock();
    });
    expect(s.lockdep.reports.map((r) => r.kind)).toEqual(['not_held']);
    expect(s.warnings[0].text).toContain('lockdep_assert_held(balloon_lock)');
  });
});

describe('a wait abandoned before the lock was taken (a generator closed with return())', () => {
  it.each([false, true])(
    'rwlock_t / rw_semaphore (sleeping %s): the waiter leaves no trace',
    (sleeping) => {
      const s = new Scheduler();
      const l = new RwLock(s, 'L', sleeping);
      s.manual = true;
      const holder = s.spawn('holder', function* () {
        yield* l.readLock();
        yield { op: 'hold' };
        l.readUnlock();
      });
      s.runUntil(holder, (p) => p.op === 'hold');
      // A writer outside tasks queues behind the reader, then gives up.
      const w = l.writeLock();
      while (w.next().value?.op !== 'block');
      w.return(undefined);
      s.runToEnd(holder);
      s.manual = false;
      // Nothing is left waiting: a new reader and a writer take the lock at once.
      expect(l.readTrylock()).toBe(true);
      l.readUnlock();
      expect(l.writeTrylock()).toBe(true);
      l.writeUnlock();
    },
  );
});
