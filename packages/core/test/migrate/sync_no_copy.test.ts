/**
 * MIGRATE_SYNC_NO_COPY, a mode of `enum migrate_mode` from 4.14 to 6.10: v6.0 and v6.3
 * take it as a sync mode (v6.3 tries the batch at ASYNC first); v4.8 (before it) and v6.17
 * (after it) have no such mode. The migrate tracepoints print it as its value, 0x3.
 */
import { describe, expect, it } from 'vitest';
import { MIGRATE_MODE, MmBug, migrateModeName, traceRecorder } from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { isolate, migrate, rig } from './harness.js';

const NO_COPY = MIGRATE_MODE.SYNC_NO_COPY;

describe('MIGRATE_SYNC_NO_COPY', () => {
  it.each(['v6.0', 'v6.3'] as const)(
    '%s: a sync mode; the driver sees it (v6.3: after the ASYNC batch); the trace prints 0x3',
    (profile) => {
      const r = rig(profile);
      const [a] = r.drv.alloc(1);
      isolate(r, a);
      // The driver cannot move the page at ASYNC (v6.3's first batch), only in a sync mode.
      r.drv.migrateRc = (_src, mode) => (mode === MIGRATE_MODE.ASYNC ? -11 : 0);
      const rec = traceRecorder(r.m, { events: ['mm_migrate_pages'] });
      const res = migrate(r, NO_COPY);
      expect(res).toMatchObject({ rc: 0, nrSucceeded: 1 });
      const modes = r.drv.calls.filter((c) => c.cb === 'migrate').map((c) => c.mode);
      expect(modes.at(-1)).toBe(NO_COPY);
      if (profile === 'v6.3') expect(modes.slice(0, 3)).toEqual([0, 0, 0]);
      else expect(modes).toEqual([NO_COPY]);
      expect(rec.lines.at(-1)).toMatch(/ mode=0x3 reason=compaction$/);
      expectInvariants(r.m);
    },
  );

  it.each(['v4.8', 'v6.17'] as const)('%s: no such mode: migrate_pages BUGs', (profile) => {
    const r = rig(profile);
    const [a] = r.drv.alloc(1);
    isolate(r, a);
    expect(() => migrate(r, NO_COPY)).toThrow(MmBug);
    expect(() => migrate(r, NO_COPY)).toThrow(/bad migrate mode 3/);
  });

  it('prints as __print_symbolic does a value it has no name for', () => {
    expect([0, 1, 2, 3].map(migrateModeName)).toEqual([
      'MIGRATE_ASYNC',
      'MIGRATE_SYNC_LIGHT',
      'MIGRATE_SYNC',
      '0x3',
    ]);
  });
});
