/**
 * The built `mops` command, spawned as a user runs it: `pnpm run verify` builds first; after
 * a change, `pnpm test` alone runs these against the last build (run `tsc -b` first).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const samples = fileURLToPath(new URL('../packages/core/test/proc/fixtures/', import.meta.url));

function mops(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('mops, spawned: every command', () => {
  it('--help lists the commands', () => {
    const r = mops('--help');
    expect(r.code).toBe(0);
    for (const c of [
      'demo',
      'proc',
      'compact',
      'compaction-test',
      'check-plugin',
      'explore',
      'replay',
      'scenarios',
    ])
      expect(r.out).toContain(c);
  });
  it('demo', () => {
    const r = mops('demo', '--memory', '64M');
    expect(r.code).toBe(0);
    expect(r.out).toContain('What happened');
  });
  it('proc', () => {
    expect(mops('proc', 'buddyinfo', '--from-proc', samples).out).toMatch(/^Node 0, zone {6}DMA/);
  });
  it('compact', () => {
    const r = mops('compact', '--memory', '32M', '--json', '-');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).vmstat.pgmigrate_success).toBeGreaterThan(0);
  });
  it('compaction-test', () => {
    expect(mops('compaction-test', '--memory', '128M').code).toBe(0);
  });
  it('compaction-test exits with KSFT_SKIP (4) when its prerequisite is unmet', () => {
    const r = mops(
      'compaction-test',
      '--sysctl',
      'vm.compact_unevictable_allowed=0',
      '--profile',
      'v6.17',
    );
    expect(r.code).toBe(4);
    expect(r.out).toMatch(/^1\.\.0 # SKIP Prerequisites unsatisfied$/m);
  });
  it('check-plugin', () => {
    const r = mops('check-plugin', 'zsmalloc', '--profile', 'v6.17');
    expect(r.code).toBe(0);
    expect(r.out).toContain('all rules pass');
  });
  it('scenarios, explore, replay', () => {
    expect(JSON.parse(mops('scenarios', '--json').out).length).toBeGreaterThanOrEqual(7);
    const e = mops(
      'explore',
      '9e',
      '--variant',
      'buggy',
      '--strategy',
      'pct',
      '--runs',
      '300',
      '--json',
    );
    expect(e.code).toBe(1);
    const j = JSON.parse(e.out);
    expect(
      mops('replay', '9e', '--variant', 'buggy', '--profile', j.profile, '--schedule', j.schedule)
        .code,
    ).toBe(1);
    expect(mops('explore', '9e', '--variant', 'fixed', '--runs', '200').code).toBe(0);
  });
});

describe('mops, spawned: bad input exits 2 with one line and no stack trace', () => {
  it.each([
    [['frobnicate']],
    [['demo', '--memory', '12Q']],
    [['demo', '--memory', '0']],
    [['demo', '--memory', '3M']],
    [['demo', '--memory', '128G']],
    [['demo', '--seed', 'x']],
    [['demo', '--profile', 'v9.9']],
    [['demo', '--bogus']],
    [['proc']],
    [['proc', 'nosuchview', '--memory', '16M']],
    [['proc', 'buddyinfo', '--plugin', '@mops/no-such-driver']],
    [['proc', 'buddyinfo', '--plugin', './no/such/path.js']],
    [['proc', 'buddyinfo', '--from-proc', '/no/such/dir']],
    [['proc', 'buddyinfo', '--workload', 'nope']],
    [['proc', 'buddyinfo', '--profile', 'v5']],
    [['compact', '--order', '99']],
    [['compact', '--order', '-2']],
    [['compact', '--order', 'x']],
    [['compact', '--order', '3', '--mode', 'fast']],
    [['compact', '--memory', '16M', '--trace', '-', '--trace-filter', 'order >']],
    [['compact', '--workload', 'zsmalloc', '--memory', '16M']],
    [['compact', '--memory', '16M', '--trace', '-', '--json', '-']],
    [['compact', '--memory', '16M', '--trace-filter', 'order > 0']],
    [['compaction-test', '--memory', '1M']],
    [['proc', 'balloon/stats', '--memory', '16M']],
    [['check-plugin']],
    [['check-plugin', '@mops/nope']],
    [['check-plugin', 'balloon', '--profile', 'v1']],
    [['explore']],
    [['explore', 'nosuch']],
    [['explore', '9a', '--variant', 'maybe']],
    [['explore', '9a', '--strategy', 'bfs']],
    [['explore', '9a', '--runs', '0']],
    [['explore', '9a', '--runs', 'many']],
    [['explore', '9a', '--shard', '3/2']],
    [['explore', '9a', '--shard', 'x']],
    [['explore', '9a', '--strategy', 'dfs', '--shard', '1/2']],
    [['explore', '9a', '--jobs', '0']],
    [['replay', '9a']],
    [['replay', '9a', '--schedule', 'garbage']],
    [['replay', '9a', '--schedule', 'v1:9d:12']],
    [['replay', '9a', '--schedule', 'v9:9a:12']],
    [['compact', '--bogus']],
    [['compact', '--memory', '64M', '--trace', '/nonexistent/dir/t.txt']],
    [['compact', '--memory', '64M', '--json', '/nonexistent/dir/r.json']],
    [['explore', '9a', '--load', './no/such/module.js']],
  ])('%j', (args) => {
    const r = mops(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^mops: .+ \[E_[A-Z_]+\]\n$/s);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe('mops compact, spawned: outputs that reach one file', () => {
  it('standard output redirected to a file and --json /dev/stdout: refused; to a pipe, both written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-stdout-'));
    try {
      const file = join(dir, 'both.txt');
      const args = [
        'compact',
        '--memory',
        '64M',
        '--trace',
        '-',
        '--trace-events',
        'mm_compaction_begin',
      ];
      const toFile = spawnSync(process.execPath, [bin, ...args, '--json', '/dev/stdout'], {
        encoding: 'utf8',
        stdio: ['ignore', openSync(file, 'w'), 'pipe'],
      });
      expect(toFile.status).toBe(2);
      expect(toFile.stderr).toMatch(
        /--trace and --json would both write to standard output, a file, the one over the other/,
      );
      // The report goes to standard output when no output is `-`: a file given as well is one.
      const report = spawnSync(
        process.execPath,
        [bin, 'compact', '--memory', '64M', '--trace', file],
        {
          encoding: 'utf8',
          stdio: ['ignore', openSync(file, 'w'), 'pipe'],
        },
      );
      expect(report.status).toBe(2);
      expect(report.stderr).toMatch(
        /--trace and the report would both write to .*both\.txt \(standard output is redirected to it\)/,
      );
      // A pipe is written in turn: nothing is replaced, so nothing is refused.
      // With a plugin too: a stat of the pipe must not spoil loading its packages afterwards.
      const line = [process.execPath, bin, ...args, '--json', '/dev/stdout']
        .concat(['--plugin', 'zsmalloc', '--workload', 'zsmalloc'])
        .join(' ');
      const piped = spawnSync('bash', ['-c', `set -o pipefail; ${line} | cat`], {
        encoding: 'utf8',
      });
      expect(piped.stderr).not.toContain('[E_');
      expect(piped.status).toBe(0);
      expect(piped.stdout).toContain('mm_compaction_begin');
      expect(piped.stdout).toContain('"memory"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
