import { describe, expect, it } from 'vitest';
import {
  checkInvariants,
  compactMemory,
  createMachine,
  mixedChurn,
  PROFILE_NAMES,
} from '../../src/index.js';

function churnAndCompact(profile: (typeof PROFILE_NAMES)[number], movable: 'plain' | 'filler') {
  const m = createMachine({ memory: '64M', zones: 'normal-only', profile, seed: 7 });
  const r = mixedChurn(m, { movable });
  const before = m.mem.vmstat.get('pgmigrate_success');
  m.run(() => compactMemory(m));
  return { m, r, migrated: m.mem.vmstat.get('pgmigrate_success') - before };
}

describe('mixedChurn', () => {
  it.each(PROFILE_NAMES)(
    '%s: filler pages are what compaction can move; plain ones are not',
    (profile) => {
      const filler = churnAndCompact(profile, 'filler');
      expect(filler.r.live.some((b) => b[2])).toBe(true);
      expect(filler.r.live.filter((b) => b[2]).every((b) => b[1] === 0)).toBe(true);
      expect(filler.migrated).toBeGreaterThan(0);
      expect(checkInvariants(filler.m).ok).toBe(true);
      const plain = churnAndCompact(profile, 'plain');
      expect(plain.migrated).toBe(0);
      expect(checkInvariants(plain.m).ok).toBe(true);
    },
  );

  it('rejects an unknown kind of movable page with E_RANGE, allocating nothing', () => {
    const m = createMachine({ memory: '16M' });
    const free = m.mem.nrFreePages();
    expect(() => mixedChurn(m, { movable: 'lru' as 'plain' })).toThrow(
      expect.objectContaining({ code: 'E_RANGE' }),
    );
    expect(m.mem.nrFreePages()).toBe(free);
  });
});
