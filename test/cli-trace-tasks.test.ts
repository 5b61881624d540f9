/**
 * The task columns of `mops compact --trace`: kcompactd's events come from its own thread,
 * `kcompactd0`, and the direct compaction of `--alloc` runs one task per allocation on
 * CPU 0; every CPU printed is below the header's `#P:`.
 */
import { describe, expect, it } from 'vitest';
import { mops } from './cli_helpers.js';

/** `[comm, pid, cpu]` of each trace line of `out`. */
function contexts(out: string): [string, number, number][] {
  const rows: [string, number, number][] = [];
  for (const l of out.split('\n')) {
    const c = /^\s*(.+)-(\d+)\s+\[(\d{3})\] /.exec(l);
    if (c) rows.push([c[1], Number(c[2]), Number(c[3])]);
  }
  return rows;
}

const nrCpus = (out: string) => Number(/#P:(\d+)/.exec(out)?.[1]);

describe('compact --trace: who fired each event', () => {
  it('--kcompactd: kcompactd events print as kcompactd0', async () => {
    const r = await mops('compact', '--memory', '64M', '--kcompactd', '1', '--trace', '-');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    const kcompactd = lines.filter((l) =>
      /: mm_compaction_(kcompactd_wake|kcompactd_sleep|begin|end):/.test(l),
    );
    expect(kcompactd.some((l) => l.includes('mm_compaction_kcompactd_wake:'))).toBe(true);
    expect(kcompactd.some((l) => l.includes('mm_compaction_begin:'))).toBe(true);
    for (const l of kcompactd) expect(l).toMatch(/^\s*kcompactd0-\d+\s+\[000\] /);
    expect(lines.some((l) => /^\s*main-\d/.test(l))).toBe(false);
  });

  it('--alloc: one direct-compact task per allocation, all on CPU 0 of #P:2', async () => {
    const r = await mops('compact', '--memory', '64M', '--alloc', '9x20', '--trace', '-');
    expect(r.code).toBe(0);
    const rows = contexts(r.out);
    const direct = rows.filter(([comm]) => comm === 'direct-compact');
    expect(direct.length).toBeGreaterThan(0);
    const pids = new Set(direct.map(([, pid]) => pid));
    expect(pids.size).toBeGreaterThan(1);
    expect(pids.size).toBeLessThanOrEqual(20);
    expect(new Set(rows.map(([, , cpu]) => cpu))).toEqual(new Set([0]));
    expect(nrCpus(r.out)).toBe(2);
  });
});
