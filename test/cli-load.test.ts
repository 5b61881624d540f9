/**
 * `--load`: scenarios of one's own in `mops explore`, `replay` and `scenarios`, in process
 * (from the sources) and spawned (the built command and the example's built module).
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mops, replayArgs } from './cli_helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const ownRaceSource = fileURLToPath(
  new URL('../examples/hunt-a-race/src/own_race.ts', import.meta.url),
);
/** The example's built module, as a user names it from the repository root. */
const ownRaceBuilt = './examples/hunt-a-race/dist/own_race.js';

function spawned(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('mops --load', () => {
  it('scenarios lists a scenario the loaded module registers', async () => {
    expect((await mops('scenarios')).out).not.toMatch(/^onepage-release /m);
    const r = await mops('scenarios', '--load', ownRaceSource);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^onepage-release +buggy\|fixed/m);
  });

  it('explore finds the race of a loaded scenario; the replay line it prints carries --load and fails again', async () => {
    const e = await mops(
      'explore',
      'onepage-release',
      '--load',
      ownRaceSource,
      '--variant',
      'buggy',
      '--strategy',
      'pct',
    );
    expect(e.err).toBe('');
    expect(e.code).toBe(1);
    expect(e.out).toContain(
      'the owner dropped its references to an isolated page but left it PageMovable',
    );
    // The VM reports the release at putback; the report shows the step that made it.
    expect(e.out).toMatch(/^ +\d+ \| putback_page\(0x0\) → folio_clear_isolated pfn=0x0 +\|/m);
    const args = replayArgs(e.out);
    expect(args.slice(0, 4)).toEqual(['replay', 'onepage-release', '--load', ownRaceSource]);
    const r = await mops(...args);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`mops replay onepage-release --load ${ownRaceSource} --variant buggy`);
  }, 30_000);

  it('explore --json names --load in the replay command', async () => {
    const e = await mops(
      'explore',
      'onepage-release',
      '--load',
      ownRaceSource,
      '--variant',
      'buggy',
      '--json',
    );
    expect(e.code).toBe(1);
    const j = JSON.parse(e.out);
    expect(j.command).toMatch(/^mops replay onepage-release --load \S+ --variant buggy /);
    expect(j.report).toContain(j.command);
  }, 30_000);

  it.each([
    [
      ['scenarios', '--load', './no/such/module.js'],
      /^mops: --load \.\/no\/such\/module\.js: cannot load it \(.*\) .*\[E_USAGE\]$/,
    ],
    [
      ['explore', '9a', '--load', '@mops/no-such-package'],
      /^mops: --load @mops\/no-such-package: cannot load it .*\[E_USAGE\]$/,
    ],
    [
      [
        'scenarios',
        '--load',
        fileURLToPath(new URL('../packages/core/src/errors.ts', import.meta.url)),
      ],
      /^mops: --load .*errors\.ts: the module registered no scenario; .*\[E_USAGE\]$/,
    ],
  ])(
    'a module that cannot be loaded or registers nothing is a usage error: %j',
    async (args, msg) => {
      const r = await mops(...args);
      expect(r.code).toBe(2);
      expect(r.err.trimEnd().split('\n')).toHaveLength(1);
      expect(r.err.trimEnd()).toMatch(msg);
    },
  );
});

describe('mops --load, spawned with the example built', () => {
  it('explore --jobs 2 loads the module in every worker; the printed replay command works pasted', () => {
    const e = spawned(
      'explore',
      'onepage-release',
      '--load',
      ownRaceBuilt,
      '--variant',
      'buggy',
      '--strategy',
      'pct',
      '--runs',
      '200',
      '--jobs',
      '2',
    );
    expect(e.err).toBe('');
    expect(e.code).toBe(1);
    const args = replayArgs(e.out);
    expect(args.slice(0, 4)).toEqual(['replay', 'onepage-release', '--load', ownRaceBuilt]);
    const r = spawned(...args);
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      'the owner dropped its references to an isolated page but left it PageMovable',
    );
    expect(
      spawned(
        'explore',
        'onepage-release',
        '--load',
        ownRaceBuilt,
        '--variant',
        'fixed',
        '--runs',
        '100',
        '--jobs',
        '2',
      ).code,
    ).toBe(0);
  }, 60_000);

  it.each([[[]], [['--jobs', '2']]])(
    'a scenario whose setup throws is E_PLUGIN, exit 2, one line and no stack trace: explore %j',
    (extra) => {
      // Beside the example, so that it finds the example's @mops/explorer.
      const file = 'examples/hunt-a-race/dist/.bad-setup.test.js';
      writeFileSync(
        `${root}/${file}`,
        `import { registerScenario } from '@mops/explorer';
registerScenario({ name: 'bad-setup', description: 'setup throws', variants: ['buggy'], profiles: ['v6.3'], setup() { throw new Error('setup exploded'); } });
`,
      );
      try {
        const r = spawned('explore', 'bad-setup', '--load', `./${file}`, ...extra);
        expect(r.code).toBe(2);
        expect(r.err).toBe(
          'mops: scenario bad-setup: setup() threw (Error: setup exploded) before any step ran; fix the scenario [E_PLUGIN]\n',
        );
      } finally {
        rmSync(`${root}/${file}`);
      }
    },
    30_000,
  );

  it('a bad --load exits 2 with one line and no stack trace', () => {
    const r = spawned(
      'explore',
      'onepage-release',
      '--load',
      './examples/hunt-a-race/dist/nope.js',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^mops: --load \.\/examples\/hunt-a-race\/dist\/nope\.js: cannot load it .*\[E_USAGE\]\n$/,
    );
  });
});
