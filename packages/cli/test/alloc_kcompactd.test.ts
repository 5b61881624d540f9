/**
 * `mops compact --alloc ORDERxN --kcompactd SECONDS`: the allocations that go to the slow
 * path wake kswapd, whose pass asks kcompactd to compact for their order; kcompactd does that
 * work on the machine clock.
 */
import { describe, expect, it } from 'vitest';
import { bufferIo, main } from '../src/index.js';

async function mops(...args: string[]) {
  const io = bufferIo();
  const code = await main(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe.each(['v4.8', 'v6.3'] as const)('compact --alloc then --kcompactd — %s', (profile) => {
  // No watermark boost and no proactive checks (v4.8 has neither sysctl): only the
  // allocations' wakeup can give kcompactd work.
  const quiet =
    profile === 'v4.8'
      ? []
      : ['--sysctl', 'vm.watermark_boost_factor=0', '--sysctl', 'vm.compaction_proactiveness=0'];
  const compact = (...args: string[]) =>
    mops('compact', '--memory', '64M', '--profile', profile, ...quiet, ...args);

  it('kcompactd is woken for the order of the allocations and compacts for it', async () => {
    // Without the allocations nothing wakes kcompactd.
    const alone = JSON.parse((await compact('--kcompactd', '1', '--json', '-')).out);
    expect(alone.vmstat.compact_daemon_wake).toBeUndefined();
    expect(alone.kcompactd.runs).toEqual([]);
    const r = await compact('--alloc', '9x4', '--kcompactd', '1', '--json', '-');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    // No free order-9 block: each allocation went to the slow path, whose wakeup asked
    // kswapd for order 9; kcompactd was woken once.
    expect(j.vmstat.compact_daemon_wake).toBe(1);
    if (profile === 'v4.8') {
      // v4.8's direct compaction failed and deferred both zones: the work item skips them.
      expect(j.alloc.failed).toBeGreaterThan(0);
      expect(j.kcompactd.runs).toEqual([]);
    } else {
      // kswapd, going to sleep before it wakes kcompactd, reset the skip hints DMA32's
      // direct compaction asked for (reset_isolation_suitable()): with no LRU page in any
      // sampled block, that leaves no distance between the cached scanner positions, so
      // kcompactd's first run there ends at once.
      expect(j.kcompactd.runs).toEqual(['success', 'partial_skipped']);
      expect(j.vmstat.compact_daemon_migrate_scanned).toBeGreaterThan(0);
    }
    const t = await compact(
      '--alloc',
      '9x4',
      '--kcompactd',
      '1',
      '--trace',
      '-',
      '--trace-events',
      'mm_compaction_wakeup_kcompactd,mm_compaction_kcompactd_wake',
    );
    const events = t.out
      .split('\n')
      .filter((l) => / mm_compaction_/.test(l))
      .map((l) => l.replace(/^.*?: mm_/, 'mm_').trimEnd());
    // The machine's zones are DMA and DMA32; v4.8 hands kswapd the preferred zone (DMA32),
    // 6.x gfp_zone() (Movable).
    expect(events).toEqual([
      `mm_compaction_wakeup_kcompactd: nid=0 order=9 classzone_idx=${profile === 'v4.8' ? 'DMA32' : 'Movable'}`,
      'mm_compaction_kcompactd_wake: nid=0 order=9 classzone_idx=DMA32',
    ]);
  });
});
