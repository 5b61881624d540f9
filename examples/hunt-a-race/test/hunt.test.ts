import { describe, expect, it } from 'vitest';
import { hunt } from '../src/index.js';

describe('hunt-a-race example', () => {
  it('finds 9a, reproduces it by replay, and proves the fix within the bound', () => {
    const h = hunt();
    expect(h.bug.report).toContain('isolated page');
    expect(h.bug.report).toContain('mops replay 9a --variant buggy');
    expect(h.replayFails).toBe(true);
    expect(h.fixed).toEqual({ schedules: expect.any(Number), exhausted: true, failed: false });
    expect(h.fixed.schedules).toBeGreaterThan(0);
  });
});
