/** What the kit reports of a machine's warnings: each by the line it is known by. */
import { createMachine, type KernelGen, Mutex } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { warnings } from '../src/rig.js';

describe('warnings', () => {
  it('names a lockdep report by its title, not by the rule printed above it', () => {
    const m = createMachine({ memory: '4M' });
    const a = new Mutex(m.sched, 'drv->mutex');
    const b = new Mutex(m.sched, 'drv->lists');
    const both = (x: Mutex, y: Mutex) =>
      function* (): KernelGen {
        yield* x.lock();
        yield* y.lock();
        y.unlock();
        x.unlock();
      };
    m.sched.spawn('migrate', both(a, b));
    m.sched.spawn('shrink', both(b, a));
    m.sched.runAll();
    expect(warnings(m)).toEqual(['WARNING: possible circular locking dependency detected']);
  });
});
