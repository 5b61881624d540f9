/**
 * `mops replay` of a schedule shorter than the run, and of one that does not fit it (the
 * JSON of a replay that checked nothing); the PCT and DFS defaults `explore --help` shows.
 */
import { describe, expect, it } from 'vitest';
import { EXPLORE_DFS_BOUND, EXPLORE_PCT_DEPTH } from '../packages/cli/src/defaults.js';
import { mops } from './cli_helpers.js';

describe('replay: a schedule that ends before the run does', () => {
  it('runs on without preemptions, and the help says so', async () => {
    const r = await mops('replay', '9b', '--schedule', 'v1:9b:11');
    expect([r.code, r.out, r.err]).toEqual([0, 'no failure on this schedule\n', '']);
    // Its later steps were the default continuation: the schedule followed needs none of them.
    const j = JSON.parse((await mops('replay', '9b', '--schedule', 'v1:9b:11', '--json')).out);
    expect(j.diverged).toBe(false);
    expect(j.preemptions).toBe(0);
    const help = (await mops('replay', '--help')).out.replace(/\s+/g, ' ');
    expect(help).toContain(
      'where it ends before the run does, each later step continues without a preemption (the task that ran last while it can, else the lowest-numbered one), as explore leaves those steps out',
    );
  });
});

describe('replay --json of a schedule that does not fit', () => {
  it('has the error in place of a report, a replay command and the schedule followed', async () => {
    const r = await mops('replay', '9a', '--json', '--schedule', 'v1:9a:22222');
    expect(r.code).toBe(2);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({
      scenario: '9a',
      failed: false,
      diverged: true,
      error: { code: 'E_USAGE' },
    });
    expect(j.error.message).toMatch(/does not fit 9a .* so nothing was checked/);
    // Nothing here says the run passed, nor offers a schedule to replay.
    expect(j).not.toHaveProperty('report');
    expect(j).not.toHaveProperty('command');
    expect(j).not.toHaveProperty('schedule');
    expect(r.out).not.toMatch(/passed|mops replay/);
    // A schedule that fits keeps its report and command.
    const ok = JSON.parse((await mops('replay', '9a', '--json', '--schedule', 'v1:9a:12')).out);
    expect(ok.report).toMatch(/mops race report: 9a/);
    expect(ok.command).toMatch(/^mops replay 9a /);
    expect(ok.error).toBeUndefined();
  });
});

describe('explore --help: the PCT and DFS defaults', () => {
  it('shows the --depth and --bound defaults, the ones the explorer runs with', async () => {
    const help = (await mops('explore', '--help')).out.replace(/\s+/g, ' ');
    expect(help).toContain(`--depth <d> PCT bug depth (default: ${EXPLORE_PCT_DEPTH})`);
    expect(help).toContain(`--bound <b> DFS preemption bound (default: ${EXPLORE_DFS_BOUND})`);
    const run = async (...args: string[]) => {
      const r = await mops('explore', '9a', '--variant', 'fixed', '--json', ...args);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out);
    };
    expect((await run('--strategy', 'pct', '--runs', '5')).depth).toBe(EXPLORE_PCT_DEPTH);
    expect((await run('--strategy', 'dfs', '--runs', '5')).bound).toBe(EXPLORE_DFS_BOUND);
  });
});
