/**
 * `mops explore`, `replay` and `scenarios` in process: strategies, reports, replays, worker
 * threads, chunks, and the plugins' driver races.
 */
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../packages/cli/src/index.js';
import { mops } from './cli_helpers.js';

/**
 * `explore NAME --variant buggy` with PCT fails (exit 1), and the schedule it reports fails
 * again under `replay`. Returns the explore result.
 */
async function failsAndReplays(name: string, runs: number) {
  const e = await mops(
    'explore',
    name,
    '--variant',
    'buggy',
    '--strategy',
    'pct',
    '--runs',
    String(runs),
    '--json',
  );
  expect(e.code).toBe(1);
  const j = JSON.parse(e.out);
  expect(j.failed).toBe(true);
  const r = await mops(
    'replay',
    name,
    '--variant',
    'buggy',
    '--profile',
    j.profile,
    '--schedule',
    j.schedule,
  );
  expect(r.code).toBe(1);
  return j;
}

describe('mops explore / replay / scenarios', () => {
  it('lists the scenarios as JSON', async () => {
    const r = await mops('scenarios', '--json');
    const list = JSON.parse(r.out) as { name: string; variants: string[] }[];
    expect(list.map((s) => s.name)).toEqual(expect.arrayContaining(['9a', '9b', '9c', '9d', '9e']));
    for (const s of list) expect(s.variants.slice(0, 2)).toEqual(['buggy', 'fixed']);
    expect(list.find((s) => s.name === '9c')?.variants).toEqual(['buggy', 'fixed', 'no-ptl']);
  });

  it('explores a scenario with its own strategy unless --strategy names one', async () => {
    const own = await mops('explore', '9c-passes', '--variant', 'buggy', '--profile', 'v4.8');
    expect(own.code).toBe(1);
    expect(own.out).toMatch(/^strategy pct, depth 3, seed \d+$/m);
    expect(own.out).toMatch(/failed after 10 passes with -EAGAIN/);
    const random = await mops(
      'explore',
      '9c-passes',
      '--variant',
      'fixed',
      '--strategy',
      'random',
      '--runs',
      '20',
    );
    expect(random.code).toBe(0);
    expect(random.out).toContain('no failure in 20 schedules (9c-passes fixed, v6.3, random)');
  });

  it('lists the scenarios as a table whose descriptions start in one column', async () => {
    const r = await mops('scenarios');
    const lines = r.out.trimEnd().split('\n');
    expect(lines.find((l) => l.startsWith('9c '))).toContain('buggy|fixed|no-ptl');
    // name, variants, profiles, default strategy, description: columns two spaces or more
    // apart.
    expect(lines.find((l) => l.startsWith('9c-passes '))?.split(/ {2,}/)[3]).toBe('pct');
    expect(lines.find((l) => l.startsWith('9a '))?.split(/ {2,}/)[3]).toBe('random');
    expect(lines.find((l) => l.startsWith('9d '))?.split(/ {2,}/)[2]).toBe('v6.3,v6.0,v4.8');
    expect(lines.find((l) => l.startsWith('9a '))?.split(/ {2,}/)[2]).toMatch(/v6\.17/);
    const described = lines.map((l) => l.indexOf(l.split(/ {2,}/)[4] ?? '\0'));
    expect(described.every((i) => i > 0)).toBe(true);
    expect(new Set(described).size).toBe(1);
  });

  it.each(['9a', '9d', '9e'])(
    '%s buggy: explore exits 1 with a schedule whose replay fails again; fixed passes',
    async (name) => {
      const j = await failsAndReplays(name, 500);
      expect(j.report).toContain(`mops replay ${name} --variant buggy`);
      const f = await mops(
        'explore',
        name,
        '--variant',
        'fixed',
        '--strategy',
        'random',
        '--runs',
        '300',
      );
      expect(f.code).toBe(0);
      expect(f.out).toMatch(/^no failure in 300 schedules/);
    },
  );

  it('spreads the seeds over worker threads with --jobs and finds the same failure', async () => {
    const one = JSON.parse(
      (await mops('explore', '9d', '--variant', 'buggy', '--runs', '400', '--json')).out,
    );
    const two = JSON.parse(
      (await mops('explore', '9d', '--variant', 'buggy', '--runs', '400', '--jobs', '2', '--json'))
        .out,
    );
    expect(two.failed).toBe(true);
    expect(two.seed).toBe(one.seed);
    expect(two.schedule).toBe(one.schedule);
  }, 30_000);

  it.each([
    [['explore', 'nosuch'], /unknown scenario/],
    [['explore', '9a', '--strategy', 'bfs'], /unknown strategy/],
    [['explore', '9a', '--runs', '0'], /runs/],
    [['explore', '9a', '--shard', '3/2'], /shard/],
    [['replay', '9a', '--schedule', 'v1:9d:12'], /another scenario|9d/],
    [['replay', '9a', '--schedule', 'garbage'], /schedule/],
  ])('usage errors exit 2: %j', async (args, msg) => {
    const r = await mops(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });
});

describe('explore in chunks', () => {
  it('gives the same result as one run: the first failing seed, schedules added up', async () => {
    const { explore } = await import('../packages/explorer/src/index.js');
    const { exploreInChunks } = await import('../packages/cli/src/commands/explore.js');
    const io = bufferIo();
    for (const variant of ['buggy', 'fixed']) {
      const whole = explore('9d', { variant, strategy: 'random', runs: 300, seed: 5 });
      const chunked = exploreInChunks(io, '9d', {
        variant,
        strategy: 'random',
        runs: 300,
        seed: 5,
      });
      expect(chunked.failed).toBe(whole.failed);
      expect(chunked.seed).toBe(whole.seed);
      expect(chunked.schedule).toBe(whole.schedule);
      expect(chunked.schedules).toBe(whole.schedules);
    }
  });
});

describe('driver races from the plugins', () => {
  it.each([
    ['zsmalloc-free-vs-migrate'],
    ['zsmalloc-read-vs-migrate'],
    ['balloon-deflate-vs-isolate'],
  ])(
    '%s: buggy fails with a replayable schedule, fixed passes',
    async (name) => {
      await failsAndReplays(name, 2000);
      expect((await mops('explore', name, '--variant', 'fixed', '--runs', '300')).code).toBe(0);
    },
    60_000,
  );
});
