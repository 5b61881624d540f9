import {
  allocPages,
  checkInvariants,
  cpuRelax,
  Errno,
  folioPut,
  GFP,
  isCpuRelax,
  type KernelGen,
  Livelock,
  type Task,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import { drive, zsPageMigrate } from '../src/index.js';
import { isPinned } from '../src/pin.js';
import {
  expectClean,
  fill,
  isolate,
  migrate,
  onePage,
  PROFILES,
  pattern,
  pfnOf,
  rig,
  runOwn,
  thrown,
} from './helpers.js';

/** Two tasks map the same handle, read for two points each, and unmap; round-robin. */
function twoReaders(profile: (typeof PROFILES)[number]) {
  const { m, pool } = rig(profile);
  const [h] = fill(pool, 2, 100);
  const trace: string[] = [];
  const inside = new Set<string>();
  let most = 0;
  const reader = (name: string) =>
    function* (): KernelGen<Uint8Array> {
      const mp = yield* pool.objReadBegin(h);
      inside.add(name);
      most = Math.max(most, inside.size);
      trace.push(`${name} in`);
      for (let k = 0; k < 2; k++) yield { op: 'reading' };
      const data = mp.data.slice();
      trace.push(`${name} out`);
      inside.delete(name);
      pool.objReadEnd(mp);
      return data;
    };
  m.sched.onStep = (t, p) => trace.push(`${t.name}:${p.op}`);
  const a = m.sched.spawn('a', reader('a'));
  const b = m.sched.spawn('b', reader('b'));
  m.sched.runAll('round-robin');
  m.sched.onStep = undefined;
  expect([a.result, b.result]).toEqual([pattern(0, 100), pattern(0, 100)]);
  expectClean(m);
  return { trace, most, pool, h };
}

describe('v4.8: the handle pin is an exclusive bit spinlock (pin_tag, bit_spin_lock)', () => {
  it('a second mapping of a handle spins at cpu_relax until the first unmaps; never both inside', () => {
    const { trace, most } = twoReaders('v4.8');
    expect(most).toBe(1);
    expect(trace).toEqual([
      'a:read_lock',
      'b:cpu_relax',
      'a:zspage_read_lock',
      'b:cpu_relax',
      'a:read_unlock',
      'b:cpu_relax',
      'a in',
      'a:reading',
      'b:cpu_relax',
      'a:reading',
      'b:cpu_relax',
      'a out',
      // a is done: b, alone, runs without scheduling points.
      'b in',
      'b:reading',
      'b:reading',
      'b out',
    ]);
  });

  it('a task freeing a handle it has mapped spins on its own pin for ever: a Livelock naming the pin', () => {
    const { m, pool } = rig('v4.8');
    const [h] = fill(pool, 2, 100);
    const pfn = pfnOf(pool, h);
    const t = m.sched.spawn('self', function* (): KernelGen {
      const mp = yield* pool.objReadBegin(h);
      yield* pool.zsFreeTask(h);
      pool.objReadEnd(mp);
    });
    const e = thrown(() => m.sched.runAll());
    expect(e).toBeInstanceOf(Livelock);
    const ll = e as Livelock;
    expect(ll.spinner).toBe(t);
    expect(ll.reason).toBe(
      `self/${t.id} spins at cpu_relax pfn=0x${pfn.toString(16)} (pin_tag(handle ${h}): HANDLE_PIN_BIT held by self/${t.id} itself) and no other task can run (no other task is live)`,
    );
    // The pin is no lock lockdep knows: what the task holds besides is the zspage lock.
    expect(ll.dump).toContain('holding zspage->lock (read)');
    expect(ll.dump).not.toMatch(/holding .*pin/);
    expect(m.mem.halted).toBeUndefined();
    expect(pool.isLive(h)).toBe(true);
  });

  it('the holder has preemption off (bit_spin_lock), and lockdep does not see the pin', () => {
    const { m, pool } = rig('v4.8');
    const [h] = fill(pool, 2, 100);
    const slot = h % 2 ** 26;
    const s = m.sched;
    s.manual = true;
    const freer = s.spawn('freer', () => pool.zsFreeTask(h), { cpu: 0 });
    const other = s.spawn(
      'other',
      function* (): KernelGen {
        yield { op: 'work' };
      },
      { cpu: 0 },
    );
    // The free's first point is pool->lock's read_lock: by then it holds the pin.
    expect(s.step(freer).op).toBe('read_lock');
    expect(isPinned(pool, slot)).toBe(true);
    expect(freer.atomicDepth).toBe(1);
    expect(freer.held).toEqual([]);
    expect(s.cpuHolderOf(other)).toBe(freer);
    expect(thrown(() => s.step(other))).toMatchObject({ code: 'E_STATE' });
    expect(pool.handles.pinHolder.get(slot)).toBe(freer);
    s.runToEnd(freer);
    expect(freer.atomicDepth).toBe(0);
    expect(isPinned(pool, slot)).toBe(false);
    expect(s.cpuHolderOf(other)).toBeUndefined();
    s.runToEnd(other);
    s.manual = false;
    expect(pool.isLive(h)).toBe(false);
    expectClean(m);
  });

  it('zs_page_migrate: trypin_tag of an object starting in the page fails (-EAGAIN) while its pin is held, and succeeds once unpinned', () => {
    const r = onePage('v4.8');
    const { m, pool, P, hs } = r;
    const s = m.sched;
    s.manual = true;
    // A reader that has pinned hs[1] and waits for pool->lock: no zspage lock held yet.
    const reader = s.spawn('reader', () => pool.objReadTask(hs[1]));
    expect(s.step(reader).op).toBe('read_lock');
    expect(isPinned(pool, hs[1] % 2 ** 26)).toBe(true);
    expect(isolate(r, P)).toBe(true);
    const dst = allocPages(m.mem, GFP.HIGHUSER_MOVABLE, 0);
    expect(runOwn(r, () => zsPageMigrate(pool.registry, dst, P))).toBe(Errno.EAGAIN);
    expect(pool.zspageOf(P)?.pages).toEqual([P]);
    expect(s.runToEnd(reader)).toEqual(pattern(1, 1000));
    s.manual = false;
    const res = migrate(r);
    expect(res).toMatchObject({ rc: 0, nrSucceeded: 1 });
    expect(pfnOf(pool, hs[1])).toBe(r.targets[0]);
    hs.forEach((h, i) => {
      expect(pool.objRead(h)).toEqual(pattern(i, 1000));
    });
    folioPut(m.mem, dst);
    expectClean(m);
  });
});

describe('v4.8: zs_compact trypins each object (migrate_zspage)', () => {
  it('an object whose pin is held stays behind; the compactor spins (cpu_relax) and moves it once the holder is done', () => {
    const { m, pool } = rig('v4.8');
    const hs = fill(pool, 8, 1000); // two one-page zspages of four objects
    const [A, B] = [pfnOf(pool, hs[0]), pfnOf(pool, hs[4])];
    for (const i of [1, 2, 3, 7]) pool.zsFree(hs[i]);
    const s = m.sched;
    s.manual = true;
    const reader = s.spawn('reader', () => pool.objReadTask(hs[0]));
    expect(s.step(reader).op).toBe('read_lock'); // hs[0] pinned, no lock held
    const compactor = s.spawn('compact', () => pool.zsCompactTask());
    const p = s.runUntil(compactor, isCpuRelax);
    expect(p).toEqual({
      op: 'cpu_relax',
      pfn: A,
      note: 'zs_compact: trypin_tag failed for every object left',
    });
    // Left behind, and every lock given back for the holder to go on.
    expect(pfnOf(pool, hs[0])).toBe(A);
    expect([pool.lock.writable, pool.classFor(1000).lock.locked]).toEqual([true, false]);
    s.manual = false;
    s.runAll();
    expect(reader.result).toEqual(pattern(0, 1000));
    expect(compactor.result).toBe(1);
    expect(pfnOf(pool, hs[0])).toBe(B);
    expect(pool.zspageOf(A)).toBeUndefined();
    for (const i of [0, 4, 5, 6]) expect(pool.objRead(hs[i])).toEqual(pattern(i, 1000));
    expectClean(m);
  });
});

describe('drive(): a spin-wait run outside any task', () => {
  it('a round run alone may end the spin; a second cpu_relax is a Livelock, the generator closed, the machine running', () => {
    const { m } = rig('v6.3');
    let state = 0;
    function* spinsOnce(): KernelGen<string> {
      while (state++ === 0) yield* cpuRelax();
      return 'done';
    }
    expect(drive(spinsOnce(), 'test', m.mem)).toBe('done');
    let closed = false;
    function* spins(): KernelGen<string> {
      try {
        for (let i = 0; i < 100; i++) yield* cpuRelax(7, 'waits for a test');
        return 'gave up';
      } finally {
        closed = true;
      }
    }
    const e = thrown(() => drive(spins(), 'test', m.mem));
    expect(e).toBeInstanceOf(Livelock);
    expect((e as Livelock).reason).toBe(
      'test: spins at cpu_relax pfn=0x7 (waits for a test) outside any task, and nothing can run during a plain call to end the spin',
    );
    expect(closed).toBe(true);
    expect(m.mem.halted).toBeUndefined();
    expect(allocPages(m.mem, GFP.KERNEL, 0)).toBeGreaterThanOrEqual(0);
  });

  it("the Livelock describes the point as the scheduler's report does: op, pfn, lock, note", () => {
    const { m } = rig('v6.3');
    function* spinsOnALock(): KernelGen {
      for (;;) yield { op: 'cpu_relax', pfn: 0x2a, lock: 'test->lock', note: 'owner away' };
    }
    const e = thrown(() => drive(spinsOnALock(), 'test', m.mem));
    expect(e).toBeInstanceOf(Livelock);
    const at = 'cpu_relax pfn=0x2a test->lock (owner away)';
    expect((e as Livelock).reason).toBe(
      `test: spins at ${at} outside any task, and nothing can run during a plain call to end the spin`,
    );
    expect((e as Livelock).dump).toBe(
      `INFO: test (no task) spins at ${at}: a round of its loop run alone failed again; end what holds it first, or call the task form from a task`,
    );
    // The same spinner in a task: the scheduler's report names the point alike.
    m.sched.spawn('spinner', spinsOnALock);
    const inTask = thrown(() => m.sched.runAll());
    expect((inTask as Livelock).reason).toContain(`spins at ${at} and no other task can run`);
  });

  it('v4.8: a plain objRead or objWrite of an object still mapped is a Livelock and leaves nothing held; later it works', () => {
    const { m, pool } = rig('v4.8');
    const [h] = fill(pool, 2, 100);
    const slot = h % 2 ** 26;
    const mp = pool.drive(pool.objReadBegin(h));
    for (const call of [() => pool.objRead(h), () => pool.objWrite(h, pattern(9, 100))]) {
      const e = thrown(call);
      expect(e).toBeInstanceOf(Livelock);
      expect((e as Livelock).reason).toMatch(
        /^obj(Read|Write): spins at cpu_relax pfn=0x[0-9a-f]+ \(pin_tag\(handle \d+\): HANDLE_PIN_BIT held by code outside any task \(a mapping still open\)\)/,
      );
      expect([pool.lock.readers, mp.zspage.lock.cnt, isPinned(pool, slot)]).toEqual([0, 1, true]);
    }
    expect(m.mem.halted).toBeUndefined();
    pool.objReadEnd(mp);
    expect(isPinned(pool, slot)).toBe(false);
    expect(pool.objRead(h)).toEqual(pattern(0, 100));
    expectClean(m);
  });
});

describe.each(['v6.0', 'v6.3', 'v6.17'] as const)('%s does not pin', (profile) => {
  it('two tasks mapping one handle are both inside at once', () => {
    const { trace, most } = twoReaders(profile);
    expect(most).toBe(2);
    expect(trace.indexOf('b in')).toBeLessThan(trace.indexOf('a out'));
    expect(trace).not.toContain('b:cpu_relax');
  });

  it('a plain objRead or objWrite of an object still mapped runs', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 2, 100);
    const mp = pool.drive(pool.objReadBegin(h));
    expect(pool.objRead(h)).toEqual(pattern(0, 100));
    pool.objWrite(h, pattern(9, 100));
    pool.objReadEnd(mp);
    expect(pool.objRead(h)).toEqual(pattern(9, 100));
    expectClean(m);
  });
});

describe.each(PROFILES)('a task that sleeps while it has an object mapped, %s', (profile) => {
  it('is a sleep in atomic context before v6.17, with the pin counted in v4.8', () => {
    const { m, pool } = rig(profile);
    const [h] = fill(pool, 2, 100);
    const sleeper: Task = m.sched.spawn('sleeper', function* (): KernelGen {
      const mp = yield* pool.objReadBegin(h);
      yield { op: 'block', key: 'test:sleep', what: 'test_sleep' };
      pool.objReadEnd(mp);
    });
    m.sched.spawn('waker', function* (): KernelGen {
      while (sleeper.state !== 'blocked') yield { op: 'wait' };
      m.sched.wake('test:sleep');
    });
    m.sched.runAll('round-robin');
    const warned = m.sched.warnings.filter((w) => w.kind === 'sleep_in_atomic');
    const count = { 'v4.8': 2, 'v6.0': 1, 'v6.3': 1, 'v6.17': 0 }[profile];
    if (count === 0) expect(warned).toEqual([]);
    else {
      expect(warned).toHaveLength(1);
      expect(warned[0].text).toContain('at test_sleep');
      // The preempt count: schedule()'s report in every release (its own 1 added),
      // might_sleep()'s from 5.16 on.
      const sched = m.sched.warnings.filter((w) => w.kind === 'scheduling_while_atomic');
      expect(sched[0].text).toMatch(
        new RegExp(`^BUG: scheduling while atomic: sleeper/1/0x0000000${count + 1}\n`),
      );
      if (profile !== 'v4.8')
        expect(warned[0].text).toContain(`preempt_count: ${count}, expected: 0`);
    }
    expect(sleeper.atomicDepth).toBe(0);
    expect(checkInvariants(m).violations).toEqual([]);
  });
});
