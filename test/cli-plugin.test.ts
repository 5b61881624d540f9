/**
 * A driver plugin of one's own in `mops compact --workload plugin` and `mops check-plugin`:
 * what its `conformance.populate` throws, and page contents its manifest did not ask for.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mops } from './cli_helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

/** A plugin module (no imports) in a temporary directory; removed by the returned function. */
function tmpPlugin(name: string, populate: string): { path: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mops-plugin-'));
  const path = join(dir, `${name}.mjs`);
  writeFileSync(
    path,
    `export default { manifest: { name: '${name}', version: '0.1.0', profiles: ['v6.3'] }, register() {} };
export const conformance = { populate(machine, n) { ${populate} } };
`,
  );
  return { path, done: () => rmSync(dir, { recursive: true }) };
}

const compactArgs = (plugin: string) => [
  'compact',
  '--memory',
  '64M',
  '--plugin',
  plugin,
  '--workload',
  'plugin',
];

describe('compact --workload plugin: what a populate throws', () => {
  it('a TypeError is E_PLUGIN naming the plugin and the call, exit 2, no stack trace', async () => {
    const p = tmpPlugin('typeerr', 'return null.pages;');
    try {
      const r = await mops(...compactArgs(p.path));
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toBe(
        "mops: plugin typeerr: conformance.populate threw TypeError: Cannot read properties of null (reading 'pages') [E_PLUGIN]\n",
      );
      // The built command, as a user runs it.
      const s = spawnSync(process.execPath, [bin, ...compactArgs(p.path)], { encoding: 'utf8' });
      expect(s.status).toBe(2);
      expect(s.stderr).toBe(r.err);
    } finally {
      p.done();
    }
  });

  it('a thrown value that is not an Error, and a MopsError of its own, name the plugin too', async () => {
    const p = tmpPlugin('throws-string', "throw 'no pages today';");
    try {
      const r = await mops(...compactArgs(p.path));
      expect(r.code).toBe(2);
      expect(r.err).toBe(
        'mops: plugin throws-string: conformance.populate threw "no pages today" [E_PLUGIN]\n',
      );
    } finally {
      p.done();
    }
    // A MopsError keeps its code.
    const q = tmpPlugin('range', "machine.mem.checkPfn(-1, 'populate');");
    try {
      const r = await mops(...compactArgs(q.path));
      expect(r.code).toBe(2);
      expect(r.err).toBe(
        'mops: plugin range: conformance.populate: populate: pfn -1 is outside this machine (0..16383) [E_RANGE]\n',
      );
    } finally {
      q.done();
    }
  });

  it('a populate that returns no array of pfns is E_PLUGIN, as check-plugin refuses it', async () => {
    for (const [name, body, got] of [
      ['returns-nothing', 'void machine;', 'undefined'],
      ['returns-bad-pfn', 'return [0, -1];', 'an array holding -1'],
    ] as const) {
      const p = tmpPlugin(name, body);
      try {
        const r = await mops(...compactArgs(p.path));
        expect(r.code).toBe(2);
        expect(r.out).toBe('');
        expect(r.err).toBe(
          `mops: plugin ${name}: conformance.populate must return an array of pfns (non-negative integers), got ${got} [E_PLUGIN]\n`,
        );
      } finally {
        p.done();
      }
    }
    // An empty array is a driver that could make no page here: the workload says so.
    const q = tmpPlugin('makes-none', 'return [];');
    try {
      const r = await mops(...compactArgs(q.path));
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^plugin: makes-none made 0 of its pages, scattered through memory$/m);
    } finally {
      q.done();
    }
  }, 30_000);

  it('a kernel BUG in populate stays a BUG: exit 1, the BUG shown', async () => {
    const r = await mops(...compactArgs(fixture('populate-bug.ts')));
    expect(r.code).toBe(1);
    expect(r.err).toBe('mops: kernel BUG: VM_BUG_ON_PAGE(page_ref_count(page) == 0)\n');
  });
});

describe('page contents a plugin uses without needsContents: true in its manifest', () => {
  it('compact: E_STATE naming the plugin and the manifest field; with the field it runs', async () => {
    const r = await mops(...compactArgs(fixture('contents-driver.ts')));
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'mops: plugin contents-undeclared: conformance.populate used page contents, which this machine was built without: a plugin that keeps data in pages says needsContents: true in its manifest, and mops then builds its machine with them [E_STATE]\n',
    );
    const ok = await mops(...compactArgs(fixture('contents-driver-declared.ts')), '--json', '-');
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out).vmstat.pgmigrate_success).toBeGreaterThan(0);
  }, 30_000);

  it('compact: a migrate_page that copies them is a protocol violation, and the report says what to add', async () => {
    const r = await mops(...compactArgs(fixture('contents-copy-driver.ts')));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /^ {2}\d+× \[protocol_violation\] contents-copy: migrate_page threw \(MopsError: this machine was built without page contents\); treated as a permanent failure$/m,
    );
    expect(r.out).toMatch(
      /^ {2}a driver used page contents this machine was built without: a plugin that keeps data in pages says needsContents: true in its manifest$/m,
    );
  }, 30_000);

  it('check-plugin fails every rule with the cause first; with the field every rule passes', async () => {
    for (const driver of ['contents-driver.ts', 'contents-copy-driver.ts']) {
      const r = await mops('check-plugin', fixture(driver), '--profile', 'v6.3');
      expect(r.code, driver).toBe(1);
      expect(r.out, driver).toMatch(
        /^v6\.3\s+migrate\s+§2\.1, §2\.5\s+FAIL {2}contents-\S+ uses page contents, but the manifest of plugin contents-\S+ does not say needsContents: true, so its machine has none: add needsContents: true to the manifest; /m,
      );
      expect(r.out, driver).not.toContain('all rules pass');
    }
    const ok = await mops('check-plugin', fixture('contents-driver-declared.ts'));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^all rules pass\n$/m);
  }, 60_000);
});
