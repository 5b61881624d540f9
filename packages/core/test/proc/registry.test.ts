import { describe, expect, it } from 'vitest';
import { putPage } from '../../src/buddy/free_page.js';
import { GFP } from '../../src/buddy/gfp.js';
import { MmBug, MopsError } from '../../src/errors.js';
import { createMachine } from '../../src/machine.js';
import {
  BUILTIN_PROC_VIEWS,
  buddyinfo,
  procView,
  procViewNames,
  registerProcView,
  vmstat,
} from '../../src/proc/index.js';

function usageError(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MopsError);
    expect((e as MopsError).code).toBe('E_USAGE');
    expect((e as MopsError).message).toMatch(re);
    return;
  }
  throw new Error('expected E_USAGE');
}

describe('proc view registry', () => {
  const m = createMachine({ memory: '64M', contents: false });

  it('has the built-in views, by name or /proc path', () => {
    expect(procViewNames(m)).toEqual([
      'buddyinfo',
      'pagetypeinfo',
      'vmstat',
      'zoneinfo',
      'extfrag_index',
      'unusable_index',
    ]);
    expect(procView(m, 'buddyinfo')).toBe(buddyinfo(m));
    expect(procView(m, '/proc/vmstat')).toBe(vmstat(m));
    expect(Object.keys(BUILTIN_PROC_VIEWS)).toEqual(procViewNames(m));
  });

  it('adds plugin views to one machine only', () => {
    const other = createMachine({ memory: '64M', contents: false });
    registerProcView(m, 'zsmalloc/classes', (mm) => `class  size\n${mm.nrPages}\n`);
    expect(procView(m, 'zsmalloc/classes')).toBe(`class  size\n${m.nrPages}\n`);
    expect(procView(m, '/proc/zsmalloc/classes')).toBe(procView(m, 'zsmalloc/classes'));
    expect(procViewNames(m)).toContain('zsmalloc/classes');
    expect(procViewNames(other)).not.toContain('zsmalloc/classes');
    usageError(() => procView(other, 'zsmalloc/classes'), /no proc view 'zsmalloc\/classes'/);
  });

  it('rejects unknown, duplicate and malformed names with E_USAGE', () => {
    usageError(
      () => procView(m, 'slabinfo'),
      /no proc view 'slabinfo'; known views: buddyinfo, pagetypeinfo, vmstat, zoneinfo/,
    );
    usageError(() => registerProcView(m, 'buddyinfo', () => ''), /already exists/);
    registerProcView(m, 'balloon/pages', () => '');
    usageError(() => registerProcView(m, 'balloon/pages', () => ''), /already exists/);
    usageError(() => registerProcView(m, '../etc/passwd', () => ''), /is not a path/);
    usageError(() => registerProcView(m, 'a//b', () => ''), /is not a path/);
    usageError(() => procView(m, null as never), /no proc view null; known views: buddyinfo/);
  });
});

describe('after a kernel BUG', () => {
  it.each(['v4.8', 'v6.0', 'v6.3', 'v6.17'] as const)(
    '%s: every built-in view still reads the halted machine, as MmBug says',
    (profile) => {
      const m = createMachine({ memory: '64M', contents: false, profile });
      const pfn = m.allocPages(GFP.KERNEL, 0);
      m.putPage(pfn);
      const before = Object.fromEntries(procViewNames(m).map((v) => [v, procView(m, v)]));
      // A put on a free page: VM_BUG_ON_PAGE, before anything changes.
      expect(() => putPage(m.mem, pfn)).toThrow(MmBug);
      expect(m.mem.halted).toBeInstanceOf(MmBug);
      for (const v of procViewNames(m)) expect(procView(m, v), v).toBe(before[v]);
    },
  );
});
