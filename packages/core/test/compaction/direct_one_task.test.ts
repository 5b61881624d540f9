/**
 * Direct compaction from an allocation made outside tasks (the slow-path step
 * installDirectCompaction adds) runs every pass in one task, as __alloc_pages_slowpath()
 * raises the priority in the task that allocates: one allocation's lines carry one
 * `comm-pid [cpu]`, its failure's mm_page_alloc too.
 */
import { describe, expect, it } from 'vitest';
import { GFP, PROFILE_NAMES, traceRecorder } from '../../src/index.js';
import { expectInvariants } from '../helpers.js';
import { pinnedCheckerboard } from './layout.js';

/** `comm-pid [cpu]` of an ftrace line. */
const context = (line: string) => /^\s*(\S+-\d+)\s+\[(\d{3})\]/.exec(line)?.slice(1).join(' ');

describe.each(PROFILE_NAMES)('direct compaction of one allocation, one task — %s', (profile) => {
  it('every priority traces under the one direct-compact task, on CPU 0', () => {
    const m = pinnedCheckerboard(profile);
    // A costly order: ASYNC before reclaim, then SYNC_LIGHT in the retry loop.
    const order = 4;
    const passes = 2;
    const rec = traceRecorder(m);
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, order)).toBe(-1);
    const first = rec.lines.filter((l) => !l.trimStart().startsWith('mops-0'));
    // try_to_compact_pages() once per pass, all in the one task.
    const tries = first.filter((l) => l.includes('mm_compaction_try_to_compact_pages:'));
    expect(tries.length).toBe(passes);
    expect(first.some((l) => l.includes('mm_compaction_begin:'))).toBe(true);
    expect(new Set(first.map(context))).toEqual(new Set(['direct-compact-1 000']));
    // The failure is traced at the end of the allocation, by the same task.
    const failed = rec.lines.filter((l) => l.includes('mm_page_alloc:'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/page=(\s*\(null\)|0{16}) pfn=(0|0x0) order=4 /);
    expect(context(failed[0] ?? '')).toBe('direct-compact-1 000');
    expect(rec.lines.at(-1)).toBe(failed[0]);
    // The next allocation is a task of its own, on the same CPU.
    rec.clear();
    expect(m.allocPages(GFP.HIGHUSER_MOVABLE, order)).toBe(-1);
    const second = rec.lines.filter((l) => !l.trimStart().startsWith('mops-0'));
    expect(second.filter((l) => l.includes('mm_compaction_try_to_compact_pages:')).length).toBe(
      passes,
    );
    expect(new Set(second.map(context))).toEqual(new Set(['direct-compact-2 000']));
    expect(rec.text()).toMatch(/#P:2\n/);
    expect(m.sched.tasks).toEqual([]);
    expectInvariants(m);
  });
});
