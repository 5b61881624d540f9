/**
 * machineFromProc's onNote: what a machine built from the 6.18 sample prints back otherwise
 * than the sample, said line by line; nothing for files that print back as they are.
 */
import { describe, expect, it } from 'vitest';
import { machineFromProc } from '../../src/proc/index.js';
import { FIXTURES, fixture } from './helpers.js';

function notesOf(src: Parameters<typeof machineFromProc>[0], profile = 'v6.17' as const) {
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

  it('takes only a function', () => {
    expect(() => machineFromProc(FIXTURES, { onNote: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG', field: 'onNote' }),
    );
  });
});
