/**
 * The checks a command prints after its run: each warning by the line it is known by.
 */
import { createMachine, type KernelGen, Mutex } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { healthLines, machineHealth } from '../src/health.js';

describe('machineHealth', () => {
  it('names a lockdep report by its title, not by the rule printed above it', () => {
    const m = createMachine({ memory: '4M' });
    const leaked = new Mutex(m.sched, 'drv->mutex');
    m.sched.runToEnd(
      m.sched.spawn('ioctl', function* (): KernelGen {
        yield* leaked.lock();
      }),
    );
    const h = machineHealth(m);
    expect(h.warnings).toEqual(['WARNING: lock held when returning to user space!']);
    expect(healthLines(h, 'in full with --json')).toContain(
      '  [lockdep] WARNING: lock held when returning to user space!',
    );
  });
});
