/**
 * `mops explore`, `replay` and `scenarios` in process: strategies, reports, replays, worker
 * threads, chunks, and the plugins' driver races.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../packages/cli/src/index.js';
import { mops, replayArgs } from './cli_helpers.js';

/** Writes `files` into a fresh temporary directory for `fn`, then removes it. */
async function withModules<T>(
  files: Record<string, string>,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'mops-load-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true });
  }
}

/** A module source's import of a workspace package's sources, by absolute path. */
const sourceOf = (pkg: string) =>
  JSON.stringify(fileURLToPath(new URL(`../packages/${pkg}/src/index.ts`, import.meta.url)));

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

describe('explore near the last seed, 2^31 − 1', () => {
  it('runs the seeds on past 2147483647 as one run does, in chunks too', async () => {
    const r = await mops(
      'explore',
      '9a',
      '--variant',
      'fixed',
      '--runs',
      '100',
      '--seed',
      '2147483600',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^no failure in 100 schedules/);
  });

  it('chunked, in worker threads and whole: the same failure, past the wrap', async () => {
    const { explore } = await import('../packages/explorer/src/index.js');
    const { exploreInChunks } = await import('../packages/cli/src/commands/explore.js');
    // 9c fails first at seed −2147483647, 29 runs after 2147483620 (chunks of 2).
    const opts = { variant: 'buggy', strategy: 'random', runs: 100, seed: 2147483620 };
    const whole = explore('9c', opts);
    expect(whole.seed).toBe(-2147483647);
    expect(exploreInChunks(bufferIo(), '9c', opts)).toEqual(whole);
    const args = ['explore', '9c', '--variant', 'buggy', '--strategy', 'random'];
    const more = ['--runs', '100', '--seed', '2147483620', '--json'];
    for (const jobs of [[], ['--jobs', '2']]) {
      const r = await mops(...args, ...more, ...jobs);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.out);
      expect([j.seed, j.firstSeed, j.schedule]).toEqual([whole.seed, 2147483620, whole.schedule]);
    }
  }, 30_000);

  it.each([
    [
      ['--runs', '99999999999999999999'],
      /^mops: --runs must be an integer ≥ 1 \(at most 2\^53 − 1\), got '99999999999999999999' \[E_USAGE\]\n$/,
    ],
    [
      ['--strategy', 'pct', '--depth', '65'],
      /^mops: --depth must be an integer from 1 to 64, got '65' \[E_USAGE\]\n$/,
    ],
    [
      ['--strategy', 'dfs', '--bound', '-1'],
      /^mops: --bound must be an integer from 0 to 64, got '-1' \[E_USAGE\]\n$/,
    ],
    [
      ['--seed', '2147483648'],
      /^mops: --seed must be an integer from -2147483648 to 2147483647, got '2147483648' \[E_USAGE\]\n$/,
    ],
    [
      ['--seed', '9007199254740992'],
      /^mops: --seed must be an integer from -2147483648 to 2147483647, got '9007199254740992' \[E_USAGE\]\n$/,
    ],
    [
      ['--shard', '1/99999999999999999999'],
      /^mops: shard \(--shard\) 1\/99999999999999999999: n must be at most 9007199254740991 \(2\^53−1\) \[E_USAGE\]\n$/,
    ],
    [['--shard', '2/9007199254740992'], /n must be at most 9007199254740991/],
  ])('out of range: explore 9a %j exits 2 with one line', async (extra, msg) => {
    const r = await mops('explore', '9a', '--variant', 'fixed', '--runs', '20', ...extra);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it('--shard i/(2^53 − 1) runs the seed of shard i alone', async () => {
    for (const i of ['2', '3']) {
      const r = await mops(
        'explore',
        '9a',
        '--variant',
        'fixed',
        '--runs',
        '20',
        '--shard',
        `${i}/9007199254740991`,
      );
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^no failure in 1 schedule \(/);
    }
  });
});

describe('explore --load', () => {
  it('a scenario of more than 35 tasks: the failure is reported with a schedule that replays', async () => {
    const many = `import { createMachine } from ${sourceOf('core')};
import { registerScenario } from ${sourceOf('explorer')};
export function registerScenarios() {
  registerScenario({
    name: 'cli-many-tasks',
    description: '40 tasks; fails when task 40 runs before task 1',
    variants: ['buggy'],
    profiles: ['v6.3'],
    setup() {
      const m = createMachine({ memory: '2M', zones: 'normal-only', contents: false });
      const order = [];
      return {
        machine: m,
        state: [order],
        start: () => {
          order.length = 0;
          for (let i = 1; i <= 40; i++)
            m.sched.spawn('t' + i, function* () { yield { op: 'step' }; order.push(i); yield { op: 'step2' }; });
        },
        check: () => (order.includes(40) && !order.includes(1) ? ['task 40 ran first'] : []),
      };
    },
  });
}
`;
    await withModules({ 'many.mjs': many }, async (dir) => {
      const load = join(dir, 'many.mjs');
      const e = await mops('explore', 'cli-many-tasks', '--load', load, '--runs', '50');
      expect(e.err).toBe('');
      expect(e.code).toBe(1);
      expect(e.out).toContain('task 40 ran first');
      const args = replayArgs(e.out);
      expect(args.join(' ')).toMatch(/--schedule v2:cli-many-tasks:[0-9a-z.]+$/);
      const r = await mops(...args);
      expect(r.code).toBe(1);
      expect(r.out).toContain('task 40 ran first');
    });
  });

  it('a module whose registerScenarios() throws is E_USAGE naming it, one line, no stack trace', async () => {
    const bad =
      'export function registerScenarios() { throw new TypeError("boom in register"); }\n';
    await withModules({ 'regthrows.mjs': bad }, async (dir) => {
      const load = join(dir, 'regthrows.mjs');
      for (const args of [
        ['scenarios'],
        ['explore', '9a'],
        ['replay', '9a', '--schedule', 'v1:9a:12'],
      ]) {
        const r = await mops(...args, '--load', load);
        expect(r.code).toBe(2);
        expect(r.err).toBe(
          `mops: --load ${load}: its registerScenarios() threw (boom in register); fix the module, or give one that registers scenarios [E_USAGE]\n`,
        );
      }
    });
  });

  it('a registerScenarios() that registers a bad scenario keeps registerScenario’s own code', async () => {
    const bad = `import { registerScenario } from ${sourceOf('explorer')};
export function registerScenarios() { registerScenario({ name: 'Bad Name!', description: 'x', variants: ['a'], profiles: ['v6.3'], setup() {} }); }
`;
    await withModules({ 'badname.mjs': bad }, async (dir) => {
      const load = join(dir, 'badname.mjs');
      const r = await mops('scenarios', '--load', load);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        new RegExp(
          `^mops: --load ${load.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: scenario name .* \\[E_PLUGIN\\]\n$`,
        ),
      );
    });
  });

  it.each([[['explore', '9a']], [['scenarios']], [['replay', '9a', '--schedule', 'v1:9a:12']]])(
    'an empty --load is E_USAGE naming it: %j',
    async (args) => {
      for (const empty of ['', ' ']) {
        const r = await mops(...args, '--load', empty);
        expect(r.code).toBe(2);
        expect(r.err).toMatch(
          /^mops: --load needs a package name or a path .*, got "\s*" \[E_USAGE\]\n$/,
        );
      }
    },
  );
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

describe('replay: a schedule that does not fit the run', () => {
  const misfit =
    'replay: the schedule v1:9a:19 does not fit 9a (buggy, v6.3): it names a task that cannot run where it does, or has decisions left when the run ends, so nothing was checked; give a schedule explore printed for this scenario, variant and profile';

  it('is a usage error (exit 2), not a pass; --json carries it beside the result', async () => {
    const args = ['replay', '9a', '--variant', 'buggy', '--schedule', 'v1:9a:19'];
    const r = await mops(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`mops: ${misfit} [E_USAGE]\n`);
    const j = await mops(...args, '--json');
    expect(j.code).toBe(2);
    expect(j.err).toBe(r.err);
    expect(JSON.parse(j.out)).toMatchObject({
      scenario: '9a',
      failed: false,
      diverged: true,
      error: { code: 'E_USAGE', message: misfit },
    });
    // A schedule that fits and passes still exits 0, its JSON without an error.
    const ok = await mops('replay', '9a', '--variant', 'fixed', '--schedule', 'v1:9a:12');
    expect([ok.code, ok.out, ok.err]).toEqual([0, 'no failure on this schedule\n', '']);
    const okJson = JSON.parse(
      (await mops('replay', '9a', '--variant', 'fixed', '--schedule', 'v1:9a:12', '--json')).out,
    );
    expect(okJson.diverged).toBe(false);
    expect(okJson.error).toBeUndefined();
  });
});

describe('explore and replay: defaults in the help, and scenarios of one’s own', () => {
  it('--help shows the defaults of --variant, --runs and --profile, as the scenarios have them', async () => {
    const list = JSON.parse((await mops('scenarios', '--json')).out) as {
      name: string;
      variants: string[];
      profiles: string[];
    }[];
    const [variant] = new Set(list.map((s) => s.variants[0]));
    expect(new Set(list.map((s) => s.variants[0])).size).toBe(1);
    // Most bundled scenarios start with v6.3; the help names the few that do not.
    const profile = 'v6.3';
    const others = list.filter((s) => s.profiles[0] !== profile);
    expect(others.length).toBeLessThanOrEqual(2);
    const profiles =
      others.length === 0
        ? `${profile} for every bundled scenario`
        : `${profile} for the bundled scenarios but ${others.map((s) => `${s.name} (${s.profiles[0]})`).join(' and ')}`;
    expect(variant).toBe('buggy');
    for (const args of [
      ['explore', '--help'],
      ['help', 'explore'],
      ['replay', '--help'],
    ]) {
      const help = (await mops(...args)).out.replace(/\s+/g, ' ');
      expect(help, args.join(' ')).toContain(
        `(default: the scenario's first variant, ${variant} for every bundled scenario; mops scenarios lists them)`,
      );
      expect(help, args.join(' ')).toContain(
        `(default: the scenario's first profile, ${profiles}; mops scenarios lists them)`,
      );
    }
    expect((await mops('explore', '--help')).out.replace(/\s+/g, ' ')).toContain(
      '--runs <n> schedules to run (random, pct) or the DFS cap (default: 1000)',
    );
    expect((await mops('replay', '--help')).out.replace(/\s+/g, ' ')).toContain(
      'exit 1 if it fails, 2 if the schedule does not fit the run',
    );
    // Without --runs, explore runs 1000 schedules.
    const r = JSON.parse((await mops('explore', '9a', '--variant', 'fixed', '--json')).out);
    expect(r.schedules).toBe(1000);
  });

  it('an unknown scenario without --load says how to register one’s own', async () => {
    const hint =
      '; to run a scenario of your own, give --load <module>, a module that registers it with registerScenario from @mops/explorer [E_USAGE]\n';
    for (const args of [
      ['explore', 'nosuch'],
      ['replay', 'nosuch', '--schedule', 'v1:nosuch:1'],
    ]) {
      const r = await mops(...args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /^mops: unknown scenario "nosuch"; known: 9a, .*balloon-deflate-vs-isolate/,
      );
      expect(r.err.endsWith(hint), args.join(' ')).toBe(true);
    }
    const own = fileURLToPath(new URL('../examples/hunt-a-race/src/own_race.ts', import.meta.url));
    const loaded = await mops('explore', 'nosuch', '--load', own);
    expect(loaded.code).toBe(2);
    expect(loaded.err).toMatch(
      /^mops: unknown scenario "nosuch"; known: .*onepage-release \[E_USAGE\]\n$/,
    );
  });
});
