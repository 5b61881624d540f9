/**
 * `mops compact --kcompactd` and `--alloc`: kcompactd (its proactive checks and the work a
 * watermark boost wakes it for) and direct compaction from the command line, and the
 * warnings for a sysctl the command's run does not read.
 */
import { describe, expect, it } from 'vitest';
import { mops } from './cli_helpers.js';

/** `compact --json -` on a small machine; the parsed summary, exit code and stderr. */
async function compactJson(...args: string[]) {
  const r = await mops('compact', '--memory', '64M', '--json', '-', ...args);
  return { code: r.code, err: r.err, j: JSON.parse(r.out) };
}

const warning = (text: string) => new RegExp(`^mops: warning: ${text}`, 'm');

describe('compact --kcompactd: kcompactd on the machine clock', () => {
  it('runs the proactive checks: vm.compaction_proactiveness decides how far they compact', async () => {
    // No watermark boost: nothing but the proactive checks wakes kcompactd.
    const run = (p: number) =>
      compactJson(
        '--kcompactd',
        '5',
        '--sysctl',
        'vm.watermark_boost_factor=0',
        '--sysctl',
        `vm.compaction_proactiveness=${p}`,
      );
    const [off, dflt, full] = [await run(0), await run(20), await run(100)];
    for (const r of [off, dflt, full]) {
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      expect(r.j).toMatchObject({ order: null, zones: [], alloc: null });
      expect(r.j.kcompactd.seconds).toBe(5);
      expect(r.j.fragmentationScore.before).toBe(99);
    }
    // proactiveness 0: no check compacts; 20 stops each zone at score 80; 100 goes on.
    expect(off.j.kcompactd.runs).toEqual([]);
    expect(off.j.vmstat).toEqual({});
    expect(off.j.fragmentationScore.after).toBe(99);
    expect(dflt.j.kcompactd.runs.length).toBeGreaterThan(0);
    expect(dflt.j.fragmentationScore.after).toBeLessThan(99);
    expect(dflt.j.fragmentationScore.after).toBeGreaterThan(full.j.fragmentationScore.after);
    expect(dflt.j.vmstat.compact_daemon_migrate_scanned).toBeGreaterThan(0);
    // The proactive passes are no work item: kcompactd was not woken.
    expect(dflt.j.vmstat.compact_daemon_wake).toBeUndefined();
  });

  it('does the work kswapd wakes it for after a watermark boost: vm.watermark_boost_factor acts', async () => {
    const run = (factor: number) =>
      compactJson(
        '--kcompactd',
        '1',
        '--sysctl',
        'vm.compaction_proactiveness=0',
        '--sysctl',
        `vm.watermark_boost_factor=${factor}`,
      );
    const boosted = await run(15000);
    const none = await run(0);
    // The workload's fallbacks boosted a zone: kswapd took the boost back and woke
    // kcompactd for pageblock_order.
    expect(boosted.j.vmstat.compact_daemon_wake).toBe(1);
    expect(boosted.j.kcompactd.runs.length).toBeGreaterThan(0);
    expect(none.j.vmstat.compact_daemon_wake).toBeUndefined();
    expect(none.j.kcompactd.runs).toEqual([]);
  });

  it('prints what kcompactd did, in the report and its trace', async () => {
    const r = await mops('compact', '--memory', '64M', '--kcompactd', '0.5');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^kcompactd: 0\.5 s of machine time, \d+ zone runs?: \w+/m);
    expect(r.out).not.toMatch(/^compaction: /m);
    const t = await mops('compact', '--memory', '64M', '--kcompactd', '1', '--trace', '-');
    expect(t.out).toMatch(/ mm_compaction_kcompactd_wake: nid=0 order=9 /);
    const quiet = await mops('compact', '--memory', '64M', '--profile', 'v4.8', '--kcompactd', '1');
    expect(quiet.out).toMatch(/^kcompactd: 1 s of machine time, no zone compacted$/m);
  });
});

describe('compact --alloc: direct compaction from high-order allocations', () => {
  it('allocates, through the slow path and its direct compaction; the counters say how it went', async () => {
    const r = await compactJson('--alloc', '9x12');
    expect(r.code).toBe(0);
    expect(r.j).toMatchObject({ order: null, zones: [], kcompactd: null });
    const a = r.j.alloc;
    expect(a).toMatchObject({
      order: 9,
      count: 12,
      gfp: 'GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE',
    });
    expect(a.allocated + a.failed).toBe(12);
    expect(a.allocated).toBeGreaterThan(0);
    expect(r.j.vmstat.compact_stall).toBeGreaterThan(0);
    expect(r.j.vmstat.compact_success).toBeGreaterThan(0);
    expect(r.j.vmstat.compact_stall).toBe(
      (r.j.vmstat.compact_success ?? 0) + (r.j.vmstat.compact_fail ?? 0),
    );
    expect(r.j.vmstat.compact_daemon_wake).toBeUndefined();
    const text = await mops('compact', '--memory', '64M', '--alloc', '9x12');
    expect(text.out).toContain(
      `direct compaction: 12 allocations of order 9 (GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_RETRY_MAYFAIL|__GFP_COMP|__GFP_THISNODE): ${a.allocated} succeeded, ${a.failed} failed; the blocks allocated stay allocated\n`,
    );
  });

  it('vm.extfrag_threshold acts on it, as on compaction for any order above 3', async () => {
    const run = async (t: number) =>
      (await compactJson('--alloc', '9x12', '--sysctl', `vm.extfrag_threshold=${t}`)).j;
    const [low, high] = [await run(0), await run(1000)];
    // At 1000 every fragmentation index is at or under the threshold: no zone is suitable.
    expect(high.vmstat.compact_stall ?? 0).toBeLessThan(low.vmstat.compact_stall);
  });

  it('--alloc then --kcompactd, both in place of --order', async () => {
    const r = await compactJson('--alloc', '9x4', '--kcompactd', '1');
    expect(r.j.alloc.count).toBe(4);
    expect(r.j.kcompactd.seconds).toBe(1);
    for (const [args, msg] of [
      [
        ['--alloc', '9x4', '--order', '9'],
        "--order chooses how compact_memory or an order's compaction runs; --alloc (direct compaction) compacts in its place: leave out --order",
      ],
      [
        ['--kcompactd', '1', '--order', '-1'],
        "--order chooses how compact_memory or an order's compaction runs; --kcompactd (kcompactd) compacts in its place: leave out --order",
      ],
      [
        ['--alloc', '9x4', '--kcompactd', '1', '--mode', 'sync'],
        "--mode chooses how compact_memory or an order's compaction runs; --alloc (direct compaction) and --kcompactd (kcompactd) compact in its place: leave out --mode",
      ],
      [['--alloc', '9'], "--alloc takes ORDERxN, e.g. 9x10 for ten order-9 allocations, got '9'"],
      [
        ['--alloc', '0x4'],
        '--alloc 0x4: the order must be 1..10 (an order-0 allocation never enters direct compaction), got 0',
      ],
      [['--alloc', '9x0'], '--alloc 9x0: the number of allocations must be at least 1, got 0'],
      [
        ['--alloc', '9x33'],
        "--alloc 9x33: this machine's 16384 pages make at most 32 blocks of order 9",
      ],
      [
        ['--kcompactd', '1.0001'],
        "--kcompactd takes seconds of machine time, 0..3600 to the millisecond (e.g. 10 or 2.5), got '1.0001'",
      ],
      [
        ['--kcompactd', '3601'],
        "--kcompactd takes seconds of machine time, 0..3600 to the millisecond (e.g. 10 or 2.5), got '3601'",
      ],
    ] as const) {
      const bad = await mops('compact', '--memory', '64M', ...args);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.out, args.join(' ')).toBe('');
      expect(bad.err, args.join(' ')).toBe(`mops: ${msg} [E_USAGE]\n`);
    }
  });
});

describe('--sysctl that the run does not read: a warning, not silence', () => {
  it('compact without --kcompactd: vm.compaction_proactiveness changes nothing, and it says so', async () => {
    const [a, b] = [
      await mops('compact', '--memory', '64M', '--sysctl', 'vm.compaction_proactiveness=0'),
      await mops('compact', '--memory', '64M', '--sysctl', 'vm.compaction_proactiveness=100'),
    ];
    expect(a.out).toBe(b.out);
    for (const r of [a, b]) {
      expect(r.code).toBe(0);
      expect(r.err).toBe(
        "mops: warning: --sysctl vm.compaction_proactiveness has no effect in compact without --kcompactd: only kcompactd's proactive checks read it; compact --kcompactd SECONDS runs them\n",
      );
    }
    const k = await mops(
      'compact',
      ...['--memory', '64M', '--kcompactd', '1', '--sysctl', 'vm.compaction_proactiveness=40'],
    );
    expect(k.err).toBe('');
  });

  it('each sysctl compact_memory does not read is named; an entry point that reads it silences it', async () => {
    const all = [
      'vm.compaction_proactiveness=30',
      'vm.extfrag_threshold=400',
      'vm.watermark_boost_factor=0',
      'vm.compact_unevictable_allowed=0',
      'vm.min_free_kbytes=2048',
    ].flatMap((s) => ['--sysctl', s]);
    const r = await mops('compact', '--memory', '64M', ...all);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(warning('--sysctl vm.compaction_proactiveness has no effect'));
    expect(r.err).toMatch(
      warning(
        '--sysctl vm.extfrag_threshold has no effect in compact with compact_memory \\(--order -1\\)',
      ),
    );
    expect(r.err).toMatch(
      warning('--sysctl vm.watermark_boost_factor does not act on compact_memory'),
    );
    expect(r.err).toMatch(warning('--sysctl vm.compact_unevictable_allowed has no effect'));
    expect(r.err).not.toMatch(/min_free_kbytes/);
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(4);
    // Compaction for order 9 reads extfrag_threshold and the boosted watermarks; order 2,
    // at most PAGE_ALLOC_COSTLY_ORDER, no fragmentation index.
    const o9 = await mops('compact', '--memory', '64M', '--order', '9', ...all);
    expect(o9.err).not.toMatch(/extfrag_threshold|watermark_boost_factor/);
    const o2 = await mops('compact', '--memory', '64M', '--order', '2', ...all);
    expect(o2.err).toMatch(
      warning('--sysctl vm.extfrag_threshold has no effect in compact --order 2'),
    );
    // v4.8 consults the fragmentation index at every order.
    const v48 = await mops(
      'compact',
      ...['--memory', '64M', '--profile', 'v4.8', '--order', '2'],
      ...['--sysctl', 'vm.extfrag_threshold=400'],
    );
    expect(v48.err).toBe('');
    const k = await mops('compact', '--memory', '64M', '--kcompactd', '1', ...all);
    expect(k.err).toBe(
      'mops: warning: --sysctl vm.compact_unevictable_allowed has no effect in compact: it decides whether compaction isolates unevictable (mlocked) LRU pages, and the pages here are movable_ops pages, which compaction isolates either way; compaction-test checks it as its prerequisite\n',
    );
  });

  it('proc and compaction-test name what they do not read too', async () => {
    const p = await mops(
      'proc',
      ...['buddyinfo', '--memory', '64M', '--sysctl', 'vm.compaction_proactiveness=40'],
    );
    expect(p.code).toBe(0);
    expect(p.err).toBe(
      "mops: warning: --sysctl vm.compaction_proactiveness has no effect in proc: only kcompactd's proactive checks read it; proc runs no kcompactd; compact --kcompactd SECONDS does\n",
    );
    const t = await mops(
      'compaction-test',
      ...['--memory', '64M', '--sysctl', 'vm.compact_unevictable_allowed=1'],
      ...['--sysctl', 'vm.extfrag_threshold=400', '--sysctl', 'vm.compaction_proactiveness=40'],
    );
    // Its prerequisite and its huge-page allocations' compaction read the first two; its
    // notes follow the warning on standard error.
    expect(t.err.split('\n').filter((l) => l.startsWith('mops: warning:'))).toEqual([
      "mops: warning: --sysctl vm.compaction_proactiveness has no effect in compaction-test: only kcompactd's proactive checks read it; compaction-test runs no kcompactd; compact --kcompactd SECONDS does",
    ]);
  });
});
