/** What the kit reports of a machine's warnings: each by the line it is known by. */
import { createMachine, type KernelGen, Mutex } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { warnings } from '../src/rig.js';

describe('warnings', () => {
  it('names a lockdep report by its title, not by the rule printed above it', () => {
    const m = createMachine({ memory: '4M' });
    // Two mutexes of one class, the second taken while holding the first.
    const zspages = [new Mutex(m.sched, 'zspage->lock'), new Mutex(m.sched, 'zspage->lock')];
    m.run(function* (): KernelGen {
      for (const z of zspages) yield* z.lock();
      for (const z of zspages.reverse()) z.unlock();
    });
    expect(warnings(m)).toEqual(['WARNING: possible recursive locking detected']);
  });
});
