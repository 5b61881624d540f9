/**
 * machineFromProc's onNote: what a machine built from the 6.18 sample prints back otherwise
 * than the sample, said line by line; nothing for files that print back as they are.
 */
import { describe, expect, it } from 'vitest';
import { machineFromProc } from '../../src/proc/index.js';
import type { ProfileName } from '../../src/profile.js';
import { FIXTURES, fixture } from './helpers.js';

function notesOf(src: Parameters<typeof machineFromProc>[0], profile: ProfileName = 'v6.17') {
  const notes: string[] = [];
  machineFromProc(src, { profile, onNote: (n) => notes.push(n) });
  return notes;
}

describe('machineFromProc onNote', () => {
  it('says what the v6.17 machine prints back otherwise than the 6.18 sample', () => {
    const notes = notesOf(FIXTURES);
    const has = (re: RegExp) =>
      expect(
        notes.some((n) => re.test(n)),
        String(re),
      ).toBe(true);
    has(/^zoneinfo: zone DMA has 4095 present pages, not 3998: /);
    has(/^zoneinfo: the pagesets' count and high are mops' own/);
    has(
      /^zoneinfo: counters v6\.17's \/proc\/zoneinfo does not print, not imported: .*pgpromote_candidate_nrl/,
    );
    has(/^zoneinfo: per-node counters taken from vmstat, .*: nr_kernel_stack 1252 → 1224/);
    has(
      /^vmstat: counters v6\.17's \/proc\/vmstat does not print, not imported: .*nr_kernel_file_pages/,
    );
    has(
      /^vmstat: counters printed with other values \(computed by mops from its own state\): nr_dirty_threshold 1214495 → \d+/,
    );
    has(/^vmstat: zone counters summed from zoneinfo's zones, .*numa_hit 17822426 → 17822530/);
  });

  it('is silent for buddyinfo and pagetypeinfo alone, which print back as they are', () => {
    expect(
      notesOf({ buddyinfo: fixture('buddyinfo'), pagetypeinfo: fixture('pagetypeinfo') }),
    ).toEqual([]);
  });

  it('names a counter it does not know (a misspelt one) instead of dropping it unsaid', () => {
    const vmstat = fixture('vmstat').replace('pgmigrate_success', 'pgmigrate_sucess');
    const notes = notesOf({
      buddyinfo: fixture('buddyinfo'),
      pagetypeinfo: fixture('pagetypeinfo'),
      vmstat,
    });
    expect(notes.find((n) => n.startsWith('vmstat: counters v6.17'))).toMatch(/pgmigrate_sucess/);
  });

  it('blames buddyinfo for free counts that differ: the free blocks are its', () => {
    const vmstat = fixture('vmstat').replace(
      /^nr_free_pages (\d+)$/m,
      (_, n) => `nr_free_pages ${+n + 5}`,
    );
    const notes = notesOf({
      buddyinfo: fixture('buddyinfo'),
      pagetypeinfo: fixture('pagetypeinfo'),
      vmstat,
    });
    expect(notes.find((n) => n.includes('nr_free_pages'))).toMatch(
      /^vmstat: free-page counters that follow from buddyinfo's free blocks, .*: nr_free_pages (\d+) → (\d+)$/,
    );
  });

  it('v4.8: counters it prints per zone are not said to be dropped', () => {
    const notes = notesOf(FIXTURES, 'v4.8');
    const dropped = notes.find((n) => n.startsWith("zoneinfo: counters v4.8's")) ?? '';
    expect(dropped).toMatch(/workingset_nodes/);
    for (const kept of ['nr_slab_reclaimable', 'nr_kernel_stack', 'nr_page_table_pages'])
      expect(dropped).not.toMatch(new RegExp(`\\b${kept}\\b`));
  });

  it('takes only a function', () => {
    expect(() => machineFromProc(FIXTURES, { onNote: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG', field: 'onNote' }),
    );
  });
});
