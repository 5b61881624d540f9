import { describe, expect, it } from 'vitest';
import { GFP, PROFILE_NAMES, traceRecorder } from '../../src/index.js';
import { smallMachine } from '../helpers.js';

const EVENTS = ['mm_page_alloc', 'mm_page_alloc_zone_locked', 'mm_page_alloc_extfrag'];

describe.each(PROFILE_NAMES)('the irqs-off column — %s', (profile) => {
  /** A machine whose KERNEL allocations fall back into MOVABLE blocks (extfrag). */
  function traced(filter?: string) {
    const m = smallMachine('8M', { profile });
    const rec = traceRecorder(m, { events: EVENTS, ...(filter ? { filter } : {}) });
    for (let i = 0; i < 3; i++) expect(m.allocPages(GFP.KERNEL, 3)).toBeGreaterThanOrEqual(0);
    return rec.lines;
  }
  const flags = (l: string) => /\] (\S+) /.exec(l)?.[1];
  const name = (l: string) => /: (\w+):/.exec(l)?.[1];

  it('the allocator’s events under zone->lock print d and the lock in the preempt depth; mm_page_alloc, outside it, neither', () => {
    const lines = traced();
    const seen = new Set(lines.map(name));
    expect(seen).toEqual(new Set(EVENTS));
    const tail = profile === 'v4.8' ? '' : '.';
    for (const l of lines)
      expect(flags(l), l).toBe(name(l) === 'mm_page_alloc' ? `....${tail}` : `d..1${tail}`);
    expect(traced('common_preempt_count == 1').every((l) => name(l) !== 'mm_page_alloc')).toBe(
      true,
    );
  });

  it('common_flags & 1 (TRACE_FLAG_IRQS_OFF) selects them', () => {
    const off = traced('common_flags & 1');
    expect(off.length).toBeGreaterThan(0);
    expect(off.every((l) => name(l) !== 'mm_page_alloc')).toBe(true);
    expect(traced('common_flags == 0').every((l) => name(l) === 'mm_page_alloc')).toBe(true);
  });
});
