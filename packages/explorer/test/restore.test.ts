import { checkInvariants, GFP, type KernelGen, MopsError } from '@mops/core';
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
  type Scenario,
  unregisterScenario,
} from '../src/index.js';

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
  it('is reported (E_STATE) instead of being restored in part', () => {
    let calls = 0;
    const sc: Scenario = {
      name: 'toy-nondeterministic',
      description: 'allocates one page more on every run: a counter outside its state',
      variants: ['only'],
      profiles: ['v6.3'],
      setup: () => {
        const m = raceMachine('v6.3');
        return {
          machine: m,
          start: () => {
            const n = ++calls;
            m.sched.spawn('t', function* (): KernelGen {
              if (m.sched.preemptible) yield { op: 'step' };
              for (let i = 0; i < n; i++) m.allocPages(GFP.KERNEL, 0);
            });
          },
        };
      },
    };
    registerScenario(sc);
    try {
      const e = (() => {
        try {
          explore('toy-nondeterministic', { runs: 10 });
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(MopsError);
      expect((e as MopsError).code).toBe('E_STATE');
      expect((e as MopsError).message).toMatch(
        /toy-nondeterministic: two runs that ended on the same steps/,
      );
    } finally {
      unregisterScenario('toy-nondeterministic');
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
