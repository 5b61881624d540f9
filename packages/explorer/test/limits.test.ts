/**
 * The explorer at the edges of its encodings: schedules of more than 35 tasks, seeds near
 * 2^31−1, shard counts near 2^53.
 */
import { createMachine, MopsError } from '@mops/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeSchedule,
  encodeSchedule,
  explore,
  inShard,
  MAX_TASK_ID,
  mergeShardResults,
  nthSeed,
  parseShard,
  registerScenario,
  replay,
  unregisterScenario,
} from '../src/index.js';
import { usageError } from './helpers.js';

/** The MopsError `fn` throws. */
function caught(fn: () => unknown): MopsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MopsError);
    return e as MopsError;
  }
  throw new Error('expected a MopsError');
}

describe('schedule strings of many tasks', () => {
  it('every v1 string of the docs and tests decodes as before: one base-36 digit a decision', () => {
    for (const s of [
      'v1:9a:12',
      'v1:9a:',
      'v1:9d:22221',
      'v1:9a:77',
      'v1:9c-passes:11111555554',
      'v1:onepage-release:11112',
      'v1:9d-double:123az',
    ]) {
      const body = s.slice(s.lastIndexOf(':') + 1);
      const d = decodeSchedule(s);
      expect(d.decisions).toEqual([...body].map((c) => Number.parseInt(c, 36)));
      // And encodes back to itself.
      expect(encodeSchedule(d.scenario, d.decisions)).toBe(s);
    }
  });

  it('task ids above 35 are written as v2, dotted base 36, and read back', () => {
    expect(MAX_TASK_ID).toBe(35);
    expect(encodeSchedule('many', [1, 35])).toBe('v1:many:1z');
    const d = [1, 36, 40, 2, Number.MAX_SAFE_INTEGER];
    const s = encodeSchedule('many', d);
    expect(s).toBe(`v2:many:1.10.14.2.${Number.MAX_SAFE_INTEGER.toString(36)}`);
    expect(decodeSchedule(s, 'many')).toEqual({ scenario: 'many', decisions: d });
    expect(decodeSchedule('v2:many:', 'many').decisions).toEqual([]);
    for (const bad of [
      'v2:many:1..2',
      'v2:many:01',
      'v2:many:.1',
      'v2:many:1.',
      'v2:many:zzzzzzzzzzzz',
    ])
      usageError(() => decodeSchedule(bad), /malformed schedule/);
    usageError(
      () => decodeSchedule('v3:many:1'),
      /encoding version 3; this explorer reads versions 1 and 2/,
    );
  });

  it('encodeSchedule refuses what decodeSchedule would, naming the field', () => {
    for (const id of [0, -1, 1.5, Number.NaN, 2 ** 53, '3'] as unknown[]) {
      const e = caught(() => encodeSchedule('many', [1, id as number]));
      expect(e.code).toBe('E_RANGE');
      expect(e.field).toBe('decisions');
      expect(e.message).toMatch(/^task id .* \(decision 1\) cannot be encoded/);
    }
    for (const name of ['Bad', 'a_b', 'a:b', '', '-a', 5] as unknown[]) {
      const e = caught(() => encodeSchedule(name as string, [1]));
      expect(e.code).toBe('E_USAGE');
      expect(e.field).toBe('scenario');
    }
    expect(caught(() => encodeSchedule('x', 'ab' as never)).field).toBe('decisions');
  });

  it('what encodeSchedule writes, decodeSchedule reads back (and what it refuses has a field)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,8}$/)),
        fc.array(fc.oneof(fc.integer({ min: -2, max: 80 }), fc.maxSafeNat())),
        (name, decisions) => {
          let s: string;
          try {
            s = encodeSchedule(name, decisions);
          } catch (e) {
            expect(e).toBeInstanceOf(MopsError);
            expect((e as MopsError).field).toMatch(/^(scenario|decisions)$/);
            return;
          }
          expect(decodeSchedule(s, name)).toEqual({ scenario: name, decisions });
        },
      ),
    );
  });

  it('a schedule that is not a string is E_USAGE naming the schedule', () => {
    for (const v of [undefined, 5, {}, null]) {
      const e = caught(() => decodeSchedule(v as unknown as string));
      expect(e.code).toBe('E_USAGE');
      expect(e.field).toBe('schedule');
      expect(e.message).toMatch(/^schedule must be a string v1:SCENARIO:/);
    }
  });

  describe('a scenario of 40 tasks', () => {
    registerScenario({
      name: 'test-many-tasks',
      description: '40 tasks; fails when task 40 runs before task 1',
      variants: ['buggy'],
      profiles: ['v6.3'],
      setup() {
        const m = createMachine({ memory: '2M', zones: 'normal-only', contents: false });
        const order: number[] = [];
        return {
          machine: m,
          state: [order],
          start: () => {
            order.length = 0;
            for (let i = 1; i <= 40; i++)
              m.sched.spawn(`t${i}`, function* () {
                yield { op: 'step' };
                order.push(i);
                yield { op: 'step2' };
              });
          },
          check: () => (order.includes(40) && !order.includes(1) ? ['task 40 ran first'] : []),
        };
      },
    });
    afterAll(() => unregisterScenario('test-many-tasks'));

    it('explore reports the failure with a v2 schedule that replays it', () => {
      const r = explore('test-many-tasks', { runs: 50 });
      expect(r.failed).toBe(true);
      expect(r.schedule).toMatch(/^v2:test-many-tasks:[0-9a-z.]+$/);
      expect(r.report).toContain(`--schedule ${r.schedule}`);
      const again = replay('test-many-tasks', { schedule: r.schedule! });
      expect(again.failed).toBe(true);
      expect(again.diverged).toBe(false);
      expect(again.schedule).toBe(r.schedule);
    });
  });
});

describe('seeds near 2^31 − 1', () => {
  it('run k takes seed first + k, wrapped into the 32-bit seeds as the PRNG reads them', () => {
    expect(nthSeed(1, 0)).toBe(1);
    expect(nthSeed(2 ** 31 - 1, 1)).toBe(-(2 ** 31));
    expect(nthSeed(2 ** 31 - 3, 5)).toBe(-(2 ** 31) + 2);
    expect(nthSeed(-(2 ** 31), 2 ** 32)).toBe(-(2 ** 31));
    expect(nthSeed(5, Number.MAX_SAFE_INTEGER)).toBe((5 + (Number.MAX_SAFE_INTEGER % 2 ** 32)) | 0);
    for (const [first, k] of [
      [Symbol('s'), 0],
      [1.5, 0],
      [1, -1],
      [1, 0.5],
    ])
      expect(() => nthSeed(first as never, k as never)).toThrow(
        expect.objectContaining({ code: 'E_USAGE', field: 'seed' }),
      );
  });

  it('a failure past the wrap names a seed that --seed takes back, with the same schedule', () => {
    // 9c fails first at −2147483647 here, 29 runs after 2147483620.
    const whole = explore('9c', {
      variant: 'buggy',
      strategy: 'random',
      runs: 100,
      seed: 2147483620,
    });
    expect(whole.failed).toBe(true);
    expect(whole.firstSeed).toBe(2147483620);
    expect(whole.seed).toBe(-2147483647);
    const one = explore('9c', { variant: 'buggy', strategy: 'random', runs: 1, seed: whole.seed });
    expect(one.schedule).toBe(whole.schedule);
  });

  it('merged shards across the wrap report the failure an unsharded run stops at', () => {
    // 9a fails at 2147483647 (shard 2/2); shard 1/2 goes on to fail at a negative seed.
    const opts = { variant: 'buggy', strategy: 'random', runs: 40, seed: 2147483647 } as const;
    const whole = explore('9a', opts);
    expect(whole.seed).toBe(2147483647);
    const parts = [1, 2].map((i) => explore('9a', { ...opts, shard: `${i}/2` }));
    expect(parts[0].seed).toBeLessThan(0);
    const merged = mergeShardResults(parts);
    expect(merged.seed).toBe(whole.seed);
    expect(merged.schedule).toBe(whole.schedule);
    expect(mergeShardResults([...parts].reverse()).seed).toBe(whole.seed);
    // Shards of another first seed do not belong.
    const other = explore('9a', { ...opts, seed: 7, shard: '2/2' });
    usageError(() => mergeShardResults([parts[0], other]), /same --seed/);
  });
});

describe('shard counts', () => {
  it('n must be a safe integer, where s mod n is exact', () => {
    expect(parseShard('9007199254740991/9007199254740991').count).toBe(Number.MAX_SAFE_INTEGER);
    for (const s of ['1/99999999999999999999', '1/9007199254740992', '2/9007199254740993']) {
      const e = caught(() => parseShard(s));
      expect(e.code).toBe('E_USAGE');
      expect(e.field).toBe('shard');
      expect(e.message).toMatch(/^shard \(--shard\) .*: n must be at most 9007199254740991/);
    }
  });

  it('each seed is in one shard of 2^53 − 1, its own', () => {
    const n = Number.MAX_SAFE_INTEGER;
    for (const s of [1, 2, 3, -1, -(2 ** 31), 2 ** 31 - 1]) {
      const own = s >= 0 ? s + 1 : n + s + 1;
      expect(inShard(s, own, n)).toBe(true);
      expect(inShard(s, own === 2 ? 3 : 2, n)).toBe(false);
    }
    // Seeds 1 … 20: shards 2/n and 3/n hold one each.
    for (const i of [2, 3])
      expect(explore('9a', { variant: 'fixed', runs: 20, shard: `${i}/${n}` }).schedules).toBe(1);
  });
});
