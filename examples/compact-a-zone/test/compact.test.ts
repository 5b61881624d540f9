import { describe, expect, it } from 'vitest';
import { compactAZone } from '../src/index.js';

describe('compact-a-zone example', () => {
  it('compaction migrates pages and lowers the fragmentation score', () => {
    const r = compactAZone(7);
    expect(r.results.every((x) => x === 'complete')).toBe(true);
    expect(r.migrated).toBeGreaterThan(0);
    expect(r.score.after).toBeLessThan(r.score.before);
    expect(r.buddyinfo.after).not.toBe(r.buddyinfo.before);
  });
});
