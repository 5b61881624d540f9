/**
 * A task running alone calls drivers without scheduling points (isolateMovablePageFast,
 * callMigratePageAlone); when a driver's callback must wait there, the task goes on as the
 * generator form would: it waits in the scheduler, and a wait nothing can end is a
 * Deadlock naming the lock, not a kernel BUG that halts the machine.
 */
import { describe, expect, it } from 'vitest';
import {
  compactMemory,
  Errno,
  ISOLATE_AS_TASK,
  ISOLATE_PENDING,
  isolatedOk,
  isolateMovablePage,
  isolateMovablePageFast,
  isolateMovablePageResume,
  type KernelGen,
  type Machine,
  Mutex,
  PG,
  PROFILE_NAMES,
  type ProfileName,
  putbackMovablePages,
} from '../../src/index.js';
import { type CallbackForm, TestDriver, type TestDriverOptions } from '../driver.js';
import { expectInvariants, smallMachine } from '../helpers.js';
import { migrateBody, type Rig } from './harness.js';

/** A machine whose test driver has the callbacks `opts` asks for, gated by `gate`. */
function gatedRig(profile: ProfileName, opts: TestDriverOptions): Rig & { gate: Mutex } {
  const m = smallMachine('4M', { profile });
  const drv = new TestDriver(m, 'gated', opts);
  m.registerInvariantChecker('gated', () => drv.check());
  const gate = new Mutex(m.sched, 'gated->lock');
  drv.gate = gate;
  return {
    m,
    drv,
    gate,
    list: m.mem.pages.lists.newList(),
    targets: [],
    returned: [],
    noTargets: false,
  };
}

/** Runs `body` as one task, alone or (manual mode) as the generator form; what it ended in. */
function runTask<T>(m: Machine, alone: boolean, body: () => KernelGen<T>): string | T {
  m.sched.manual = !alone;
  const t = m.sched.spawn('worker', body);
  try {
    return m.sched.runToEnd(t);
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    m.sched.manual = false;
  }
}

/** The isolation as the migrate scanner makes it: the fast form first. */
function* isolateAsScanner(m: Machine, pfn: number): KernelGen<boolean | number> {
  const r = isolateMovablePageFast(m, pfn, 0);
  if (r === ISOLATE_AS_TASK) return yield* isolateMovablePage(m, pfn, 0);
  if (r === ISOLATE_PENDING) return yield* isolateMovablePageResume(m, pfn);
  return r;
}

const LOCKED = 1 << PG.locked;

describe.each(PROFILE_NAMES)('a driver that must wait, called by a lone task — %s', (profile) => {
  it('isolate_page waiting for a lock held outside any task: a Deadlock, as the generator form', () => {
    const outcome = (alone: boolean) => {
      const r = gatedRig(profile, { isolate: 'generator' });
      const [p] = r.drv.alloc(1);
      r.gate.trylock();
      const res = runTask(r.m, alone, () => isolateAsScanner(r.m, p));
      const pages = r.m.mem.pages;
      return {
        res,
        halted: r.m.mem.halted !== undefined,
        locked: (pages.flags[p] & LOCKED) !== 0,
        refcount: pages.refcount[p],
      };
    };
    const alone = outcome(true);
    expect(alone).toEqual({
      res: expect.stringMatching(/^Deadlock: every live task is blocked/),
      halted: false,
      locked: true,
      refcount: 2,
    });
    expect(alone).toEqual(outcome(false));
  });

  it('… and through compact_memory, whose migrate scanner isolates with the fast form', () => {
    const r = gatedRig(profile, { isolate: 'generator' });
    r.drv.alloc(4);
    r.gate.trylock();
    expect(runTask(r.m, true, () => compactMemory(r.m))).toMatch(
      /^Deadlock: every live task is blocked/,
    );
    expect(r.m.mem.halted).toBeUndefined();
  });

  it('isolate_page that takes a free lock of its own: isolated, the same result alone or not', () => {
    for (const alone of [true, false]) {
      const r = gatedRig(profile, { isolate: 'generator' });
      const [p] = r.drv.alloc(1);
      expect(isolatedOk(runTask(r.m, alone, () => isolateAsScanner(r.m, p)) as number)).toBe(true);
      expect(r.m.mem.pages.flags[p] & ((1 << PG.isolated) | LOCKED)).toBe(1 << PG.isolated);
      expect(r.m.mem.pages.refcount[p]).toBe(2);
    }
  });

  it('a plain migrate_page returning an iterator that waits: a Deadlock, as the generator form', () => {
    const outcome = (alone: boolean) => {
      const r = gatedRig(profile, { migrate: 'plain-returning-iterator' });
      const [p] = r.drv.alloc(1);
      expect(isolatedOk(runTask(r.m, true, () => isolateAsScanner(r.m, p)) as number)).toBe(true);
      r.m.mem.pages.lists.addTail(r.list, p);
      r.gate.trylock();
      return {
        res: runTask(r.m, alone, migrateBody(r, 0)),
        halted: r.m.mem.halted !== undefined,
      };
    };
    const alone = outcome(true);
    expect(alone).toEqual({
      res: expect.stringMatching(/^Deadlock: every live task is blocked/),
      halted: false,
    });
    expect(alone).toEqual(outcome(false));
  });

  it('… and with the lock free it migrates, alone or not', () => {
    for (const alone of [true, false]) {
      const r = gatedRig(profile, { migrate: 'plain-returning-iterator' });
      const [p] = r.drv.alloc(1);
      runTask(r.m, true, () => isolateAsScanner(r.m, p));
      r.m.mem.pages.lists.addTail(r.list, p);
      expect(runTask(r.m, alone, migrateBody(r, 0))).toMatchObject({ rc: 0, nrSucceeded: 1 });
      expect(r.drv.owned.has(r.targets[0])).toBe(true);
      expectInvariants(r.m);
    }
  });
});

describe('isolateMovablePageResume', () => {
  it('without a pending isolation of that pfn: E_STATE', () => {
    const r = gatedRig('v6.3', {});
    const [p] = r.drv.alloc(1);
    expect(() => r.m.run(() => isolateMovablePageResume(r.m, p))).toThrow(
      expect.objectContaining({ code: 'E_STATE' }),
    );
  });
});

describe.each(PROFILE_NAMES)('every callback form, alone or not — %s', (profile) => {
  /** Isolate two pages, migrate them (the second refused: -EBUSY), put the second back. */
  function round(form: CallbackForm, alone: boolean) {
    const r = gatedRig(profile, { isolate: form, migrate: form, putback: form });
    const [a, b] = r.drv.alloc(2);
    r.drv.migrateRc = (src) => (src === b ? Errno.EBUSY : 0);
    for (const p of [a, b]) {
      expect(isolatedOk(runTask(r.m, alone, () => isolateAsScanner(r.m, p)) as number)).toBe(true);
      r.m.mem.pages.lists.addTail(r.list, p);
    }
    const res = runTask(r.m, alone, migrateBody(r, 0));
    runTask(r.m, alone, () => putbackMovablePages(r.m, r.list));
    expectInvariants(r.m);
    return {
      res,
      calls: r.drv.calls.map((c) => `${c.cb} ${c.pfn}${c.locked ? '' : ' unlocked'}`),
      warnings: r.m.mem.warnings.map((w) => w.kind),
    };
  }

  it('the same calls, results and (no) warnings for plain, generator and iterator-returning callbacks', () => {
    const plain = round('plain', true);
    expect(plain.res).toMatchObject({ rc: 1, nrSucceeded: 1 });
    expect(plain.calls.filter((c) => c.startsWith('putback'))).toHaveLength(1);
    expect(plain.warnings).toEqual([]);
    for (const form of ['plain', 'generator', 'plain-returning-iterator'] as const)
      for (const alone of [true, false]) expect(round(form, alone)).toEqual(plain);
  });
});
