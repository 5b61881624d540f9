import {
  checkInvariants,
  compactionState,
  createMachine,
  fragmentWithFiller,
  GFP,
  type KernelGen,
  MopsError,
  tryToCompactPages,
  zoneCompactState,
} from '@mops/core';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_SCENARIOS,
  execute,
  explore,
  GraphSnapshot,
  PctChooser,
  prepareInstance,
  RandomChooser,
  ReplayChooser,
  raceMachine,
  registerScenario,
  resolveScenario,
  type Scenario,
  unregisterScenario,
} from '../src/index.js';
import { restorePooledInstance } from '../src/runner.js';
import { RACES } from './helpers.js';

describe('partial restores of the page metadata', () => {
  it('changedRuns finds the changed 16-byte chunks and restoreRuns writes back only those', () => {
    const big = new Int32Array(2048);
    const small = new Int32Array(8);
    const mid = new Uint8Array(256);
    const o = { big, small, mid, n: 1 };
    const snap = new GraphSnapshot([o]);
    expect(snap.changedRuns()).toEqual(new Int32Array(0));
    big[3] = 7;
    big[4] = 8; // the next chunk: one run of two chunks
    big[17] = 6;
    big[2047] = 9;
    small[0] = 5;
    mid[255] = 3;
    o.n = 2;
    const runs = snap.changedRuns();
    // Triples of buffer, start word and end word; mid (64 words) changed in its last chunk.
    const triples: number[][] = [];
    for (let j = 0; j < runs.length; j += 3) triples.push([...runs.subarray(j, j + 3)]);
    const bigIndex = triples.find((t) => t[1] === 0)?.[0];
    expect(triples.filter((t) => t[0] === bigIndex).map((t) => t.slice(1))).toEqual([
      [0, 8],
      [16, 20],
      [2044, 2048],
    ]);
    expect(triples.filter((t) => t[0] !== bigIndex).map((t) => t.slice(1))).toEqual([[60, 64]]);
    // A word outside the runs is left as it is: the caller vouches that none changed.
    big[100] = 1;
    snap.restoreRuns(runs);
    expect([big[3], big[4], big[17], big[2047], big[100], mid[255]]).toEqual([0, 0, 0, 0, 1, 0]);
    // Everything else is restored whole.
    expect([small[0], o.n]).toEqual([0, 1]);
    snap.restore();
    expect(big[100]).toBe(0);
  });

  it('changedSlots finds every changed object and restoreChanged writes back only those', () => {
    const inner = { n: 1 };
    const o: Record<string, unknown> = {
      zero: 0,
      nan: Number.NaN,
      s: 'a',
      big: 1n,
      inner,
      arr: [1, inner],
      map: new Map([['a', 1]]),
      set: new Set([1]),
      floats: new Float64Array([0.5]),
      words: new Int32Array(64),
    };
    const snap = new GraphSnapshot([o]);
    expect([...snap.changedSlots()]).toEqual([]);
    const changes: [string, () => void][] = [
      ['-0 for 0', () => (o.zero = -0)],
      ['a number for NaN', () => (o.nan = 1)],
      ['a string', () => (o.s = 'b')],
      ['a bigint', () => (o.big = 2n)],
      ['a reference', () => (o.inner = { n: 1 })],
      ['a new field', () => (o.extra = 1)],
      ['a nested field', () => (inner.n = 2)],
      ['an array item', () => ((o.arr as unknown[])[0] = 2)],
      ['an array length', () => (o.arr as unknown[]).push(3)],
      ['a map value', () => (o.map as Map<string, number>).set('a', 2)],
      ['a set', () => (o.set as Set<number>).add(2)],
      ['a float view', () => ((o.floats as Float64Array)[0] = -0.5)],
    ];
    for (const [what, change] of changes) {
      change();
      const slots = snap.changedSlots();
      expect(slots.length, what).toBeGreaterThan(0);
      snap.restoreChanged(slots, snap.changedRuns());
      expect([...snap.changedSlots()], what).toEqual([]);
    }
    expect(Object.is(o.zero, -0)).toBe(false);
    expect(o.inner).toBe(inner);
    expect(inner.n).toBe(1);
    expect('extra' in o).toBe(false);
    // A slot left out of the list is left alone: the caller vouches that it did not change.
    o.s = 'c';
    inner.n = 3;
    const both = snap.changedSlots();
    expect(both.length).toBe(2);
    snap.restoreChanged(both.subarray(0, 1), new Int32Array(0));
    expect([o.s, inner.n].filter((v) => v === 'a' || v === 1).length).toBe(1);
    snap.restore();
    expect([o.s, inner.n]).toEqual(['a', 1]);
  });

  it('buffers under 256 bytes are always restored whole', () => {
    const a = new Int32Array(63);
    const snap = new GraphSnapshot([{ a }]);
    a[5] = 1;
    expect(snap.changedRuns()).toEqual(new Int32Array(0));
    snap.restoreRuns(new Int32Array(0));
    expect(a[5]).toBe(0);
  });

  it.each(BUILTIN_SCENARIOS.map((s) => s.name))(
    '%s: after each run, the reused machine comes back byte for byte as a fresh one',
    (name) => {
      const sc = BUILTIN_SCENARIOS.find((s) => s.name === name);
      if (!sc) throw new Error(name);
      const profile = sc.profiles[0];
      for (const variant of sc.variants) {
        const fresh = sc.setup({ variant, profile }).machine.mem.pages.block;
        // Few distinct schedules, each ending many times: most restores are partial.
        for (let s = 1; s <= 120; s++) {
          const chooser = s % 3 ? new RandomChooser(s % 17) : new PctChooser(s % 11, 2, 10);
          execute(sc, variant, profile, chooser);
          if (s % 2) {
            // The restore alone, whole or in part: nothing differs from the snapshot.
            const snap = restorePooledInstance(sc, variant, profile);
            if (!snap) throw new Error(`${name}: not pooled`);
            const left = [...snap.changedSlots(), ...snap.changedRuns()];
            if (left.length > 0)
              throw new Error(`${name}/${variant}: run ${s} not restored: ${left.join(' ')}`);
          }
          const inst = prepareInstance(sc, variant, profile);
          const block = inst.machine.mem.pages.block;
          if (!block.every((b, i) => b === fresh[i]))
            throw new Error(`${name}/${variant}: page metadata differs after run ${s}`);
          expect(checkInvariants(inst.machine).ok).toBe(true);
        }
      }
    },
  );
});

describe('a reused instance that does not run deterministically', () => {
  /**
   * Allocates one page on each of its first `from − 1` runs, then as many pages as it has
   * had runs: a counter outside its state.
   */
  function counting(name: string, from: number): Scenario {
    let calls = 0;
    return {
      name,
      description: 'allocates one page more on every run: a counter outside its state',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: () => {
        const m = raceMachine('v6.3');
        return {
          machine: m,
          start: () => {
            const n = ++calls < from ? 1 : calls;
            m.sched.spawn('t', function* (): KernelGen {
              if (m.sched.preemptible) yield { op: 'step' };
              for (let i = 0; i < n; i++) m.allocPages(GFP.KERNEL, 0);
            });
          },
        };
      },
    };
  }

  function stateError(name: string): MopsError {
    let err: unknown;
    try {
      explore(name, { runs: 10 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MopsError);
    expect((err as MopsError).code).toBe('E_STATE');
    return err as MopsError;
  }

  it('is reported (E_STATE) on its first reuse, whose runs are checked against fresh ones', () => {
    registerScenario(counting('toy-nondeterministic', 2));
    try {
      expect(stateError('toy-nondeterministic').message).toMatch(
        /^scenario toy-nondeterministic: a schedule that runs the tasks one after another, in the order spawned, run on the instance restored from its snapshot after earlier runs, went otherwise than on a fresh instance from setup: it left the machine’s pages or zones otherwise on the restored instance\./,
      );
    } finally {
      unregisterScenario('toy-nondeterministic');
    }
  });

  it('is reported (E_STATE) instead of being restored in part', () => {
    // Deterministic through the probe of its first reuse (six starts: the first run, its
    // schedule again, and two serial schedules on it and on a fresh instance), then no longer.
    registerScenario(counting('toy-nondeterministic-later', 7));
    try {
      expect(stateError('toy-nondeterministic-later').message).toMatch(
        /toy-nondeterministic-later: two runs that ended on the same steps/,
      );
    } finally {
      unregisterScenario('toy-nondeterministic-later');
    }
  });

  it('is reported when a run’s machine was changed afterwards', () => {
    const sc = BUILTIN_SCENARIOS.find((s) => s.name === '9e');
    if (!sc) throw new Error('9e');
    const run = () => execute(sc, 'fixed', 'v6.3', new ReplayChooser([1, 2]));
    run();
    run();
    const e = run();
    e.machine.allocPages(GFP.KERNEL, 0);
    expect(() => run()).toThrow(/two runs that ended on the same steps/);
    // Restored whole before the error: the next runs start from the snapshot again.
    for (let i = 0; i < 4; i++) expect(checkInvariants(run().machine).ok).toBe(true);
  });
});

describe('machine reuse (snapshot and restore) and memoised invariant checks', () => {
  it('a driver listed in `state` that adds a field when it first needs it has the field deleted on restore: its runs agree', () => {
    /** Allocates a page on its first run after a restore, remembering it in a field it adds. */
    class LazyDriver {
      runs = 0;
      declare first?: number;
      allocOnce(m: ReturnType<typeof raceMachine>): void {
        this.runs++;
        if (this.first === undefined) this.first = m.allocPages(GFP.KERNEL, 0);
      }
    }
    const lazy: Scenario = {
      name: 'toy-lazy-field',
      description: 'a driver object that gains a field during a run',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: () => {
        const m = raceMachine('v6.3');
        const drv = new LazyDriver();
        return {
          machine: m,
          state: [drv],
          start: () => {
            for (const name of ['a', 'b'])
              m.sched.spawn(name, function* (): KernelGen {
                yield { op: 'step' };
                drv.allocOnce(m);
              });
          },
          finish: () => (drv.first === undefined ? ['no page'] : []),
        };
      },
    };
    registerScenario(lazy);
    try {
      const r = explore(lazy.name, { runs: 20 });
      expect(r.failure).toBeUndefined();
      expect(r.runs).toBe(20);
    } finally {
      unregisterScenario(lazy.name);
    }
    // Reached only through another object, a class instance keeps what it gained.
    const inner = new LazyDriver();
    const outer = { inner };
    const snap = new GraphSnapshot([outer], undefined, new Set());
    inner.first = 7;
    snap.restore();
    expect(inner.first).toBe(7);
    const listed = new LazyDriver();
    const owned = new GraphSnapshot([listed], undefined, new Set([listed]));
    listed.runs = 3;
    listed.first = 9;
    owned.restore();
    expect(Object.keys(listed)).toEqual(['runs']);
    expect(listed.runs).toBe(0);
  });

  it('GraphSnapshot restores typed arrays, arrays, maps, sets and fields in place', () => {
    const shared = { n: 1 };
    const o: Record<string, unknown> = {
      ta: new Int32Array([1, 2, 3]),
      arr: [1, shared],
      map: new Map([['a', 1]]),
      set: new Set([1]),
      shared,
      fn: () => 1,
    };
    const snap = new GraphSnapshot([o]);
    (o.ta as Int32Array)[1] = 9;
    (o.arr as unknown[]).push(7);
    (o.map as Map<string, number>).set('b', 2);
    (o.set as Set<number>).delete(1);
    shared.n = 5;
    o.extra = true;
    snap.restore();
    expect([...(o.ta as Int32Array)]).toEqual([1, 2, 3]);
    expect(o.arr).toEqual([1, { n: 1 }]);
    expect([...(o.map as Map<string, number>)]).toEqual([['a', 1]]);
    expect([...(o.set as Set<number>)]).toEqual([1]);
    expect(shared.n).toBe(1);
    expect('extra' in o).toBe(false);
  });

  it('GraphSnapshot restores arrays that shrank, grew or changed, short and long', () => {
    const obj = { n: 1 };
    const short = [1, undefined, obj];
    const long = Array.from({ length: 40 }, (_, i) => (i % 3 ? i : undefined));
    const grew = [2];
    const bytes = new Uint8Array([1, 2, 3]);
    const floats = new Float64Array([Number.NaN, -0, 0.5]);
    const snap = new GraphSnapshot([{ short, long, grew, bytes, floats }]);
    short.length = 0;
    long.splice(3, 30);
    grew.push(3, 4);
    bytes.fill(9);
    floats.fill(7);
    snap.restore();
    expect(short).toEqual([1, undefined, obj]);
    expect(short.length).toBe(3);
    expect(long).toEqual(Array.from({ length: 40 }, (_, i) => (i % 3 ? i : undefined)));
    expect(grew).toEqual([2]);
    expect([...bytes]).toEqual([1, 2, 3]);
    expect(Object.is(floats[1], -0)).toBe(true);
    expect([floats[0], floats[2]]).toEqual([Number.NaN, 0.5]);
    short[2] = { n: 2 };
    snap.restore();
    expect(short[2]).toBe(obj);
  });

  it('GraphSnapshot restores primitive fields of every kind exactly', () => {
    const saved = {
      neg0: -0,
      nan: Number.NaN,
      inf: -Infinity,
      tiny: 5e-324,
      big: 2n ** 70n,
      quoted: 'a"b\\c\u2028d\ud800',
      long: 'x'.repeat(1000),
      nul: null as unknown,
      undef: undefined as unknown,
      yes: true,
    };
    const o = { ...saved };
    const snap = new GraphSnapshot([o]);
    Object.assign(o, { neg0: 0, nan: 1, inf: 2, tiny: 0, big: 1n, quoted: '', long: 'y' });
    Object.assign(o, { nul: {}, undef: 3, yes: false });
    snap.restore();
    expect(Object.is(o.neg0, -0)).toBe(true);
    expect(o.nan).toBeNaN();
    expect(o).toEqual(saved);
  });

  it('GraphSnapshot restores views that cover one buffer together, and never widens a partial view', () => {
    const buf = new ArrayBuffer(32);
    const lo = new Int32Array(buf, 0, 4);
    const hi = new Float64Array(buf, 16, 2);
    lo.set([1, 2, 3, 4]);
    hi.set([0.5, 1.5]);
    // Two views of one part of a buffer shared with state outside the snapshot.
    const pool = new Uint8Array(16).fill(7);
    const part = pool.subarray(0, 4);
    const other = pool.subarray(4, 8);
    const snap = new GraphSnapshot([{ lo, hi, part, other }]);
    lo[3] = 40;
    hi[0] = -1;
    part[0] = 1;
    other[0] = 2;
    pool[12] = 9;
    snap.restore();
    expect([...lo]).toEqual([1, 2, 3, 4]);
    expect([...hi]).toEqual([0.5, 1.5]);
    expect(part[0]).toBe(7);
    expect(other[0]).toBe(7);
    // Bytes no recorded view covers belong to someone else: left alone.
    expect(pool[12]).toBe(9);
  });
  it('GraphSnapshot restores the iteration order of maps and sets whose contents came back', () => {
    const map = new Map([
      ['a', 1],
      ['b', 2],
    ]);
    const set = new Set(['x', 'y']);
    const objs = { v: { n: 1 } };
    const byObj = new Map([[objs.v, 'v']]);
    const snap = new GraphSnapshot([{ map, set, byObj }]);
    // Same entries, other order: a size-and-lookup comparison alone would miss it.
    map.delete('a');
    map.set('a', 1);
    set.delete('x');
    set.add('x');
    // Same key, another value.
    byObj.set(objs.v, 'w');
    snap.restore();
    expect([...map]).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect([...set]).toEqual(['x', 'y']);
    expect([...byObj.values()]).toEqual(['v']);
    // Unchanged containers stay as they are.
    snap.restore();
    expect([...map.keys()]).toEqual(['a', 'b']);
  });

  function fingerprint(e: ReturnType<typeof execute>) {
    const m = e.machine;
    const p = m.mem.pages;
    const n = 64;
    return {
      flags: [...p.flags.subarray(0, n)],
      refcount: [...p.refcount.subarray(0, n)],
      mapping: [...p.mapping.subarray(0, n)],
      compound: [...p.compound.subarray(0, n)],
      type: [...p.type.subarray(0, n)],
      free: m.mem.populatedZones.map((z) => [z.nrFreePages, ...z.nrFree]),
      warnings: m.mem.warnings.map((w) => w.text),
      halted: m.mem.halted !== undefined,
      invariants: checkInvariants(m).violations,
    };
  }

  it.each(RACES)(
    '%s: a reused machine gives exactly the runs and final states of fresh machines',
    (name) => {
      const sc = resolveScenario(name).scenario;
      for (const variant of ['buggy', 'fixed']) {
        for (let s = 1; s <= 150; s++) {
          const strategy = s % 2 ? new RandomChooser(s) : new PctChooser(s, 3, 12);
          const fresh = execute(sc, variant, 'v6.3', strategy, {
            trace: true,
            reuse: false,
            memo: false,
          });
          const freshPrint = fingerprint(fresh);
          const again = execute(sc, variant, 'v6.3', new ReplayChooser(fresh.decisions), {
            trace: true,
          });
          expect(again.trace).toEqual(fresh.trace);
          expect(again.failure).toEqual(fresh.failure);
          expect(fingerprint(again)).toEqual(freshPrint);
        }
      }
    },
  );
});

describe('state the core keeps for a machine outside its pages', () => {
  it('comes back with the machine: a reused run compacts as a run on a fresh machine does', () => {
    // Direct compaction moves the zone's cached scanner positions and deferral counters and
    // kcompactd's node state; a run on a reused machine must start from the snapshot's.
    const sc: Scenario = {
      name: 'toy-compaction-state',
      description: 'direct compaction for order 9 next to a task that only yields',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: () => {
        const m = createMachine({ memory: '16M', zones: 'normal-only', profile: 'v6.3', seed: 7 });
        fragmentWithFiller(m, { fill: 0.9, free: 0.5 });
        const out = { scanned: -1 };
        return {
          machine: m,
          state: [out],
          start: () => {
            m.sched.spawn('direct', function* (): KernelGen {
              const before = m.mem.vmstat.get('compact_free_scanned');
              yield* tryToCompactPages(m, {
                gfp: GFP.HIGHUSER_MOVABLE,
                order: 9,
                allocFlags: 0,
                prio: 2,
              });
              out.scanned = m.mem.vmstat.get('compact_free_scanned') - before;
            });
            m.sched.spawn('other', function* (): KernelGen {
              yield { op: 'step' };
            });
          },
          check: () => [],
          finish: () => [`scanned ${out.scanned}`],
        };
      },
    };
    const outcome = (reuse: boolean, seed: number) => {
      const e = execute(sc, 'only', 'v6.3', new RandomChooser(seed), { reuse, memo: false });
      const zone = e.machine.mem.populatedZones[0];
      return {
        failure: e.failure?.message,
        zone: JSON.stringify(zoneCompactState(zone)),
        node: compactionState(e.machine).kcompactdMaxOrder,
      };
    };
    const fresh = outcome(false, 1);
    expect(fresh.failure).toMatch(/^scanned \d+$/);
    for (let seed = 1; seed <= 6; seed++) expect(outcome(true, seed)).toEqual(fresh);
  });
});
