import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mops } from './cli_helpers.js';

const samples = fileURLToPath(new URL('../packages/core/test/proc/fixtures/', import.meta.url));

describe('the mops command', () => {
  it('mops demo fragments a machine with zsmalloc and balloon, compacts it, and reports it deterministically', async () => {
    const a = await mops('demo', '--seed', '3');
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    expect(a.out).toContain('/proc/buddyinfo before compaction');
    expect(a.out).toContain('/proc/buddyinfo after compaction');
    expect(a.out).toMatch(/Node 0, zone\s+DMA32(\s+\d+){11}/);
    expect(Number(/^pgmigrate_success (\d+)$/m.exec(a.out)?.[1])).toBeGreaterThan(0);
    expect(Number(/^balloon_migrate (\d+)$/m.exec(a.out)?.[1])).toBeGreaterThan(0);
    expect(a.out).toMatch(/zone DMA32: complete/);
    expect(a.out).toContain('What happened');
    const before = /only (\d+) free 2 MiB blocks/.exec(a.out);
    const after = /(\d+) free 2 MiB blocks exist now/.exec(a.out);
    expect(Number(after?.[1])).toBeGreaterThan(Number(before?.[1]));
    expect(a.out).toContain('exist now: huge-page allocations can succeed again');
    // A machine too small for a free 2 MiB block before and after says so.
    const tiny = await mops('demo', '--memory', '4M');
    expect(tiny.out).toContain(
      '0 free 2 MiB blocks exist now: a huge-page allocation would still fail',
    );
    expect((await mops('demo', '--seed', '3')).out).toBe(a.out);
    expect((await mops('demo', '--seed', '4')).out).not.toBe(a.out);
  }, 30_000);

  it('mops compact runs compact_memory after a workload and reports results, deltas and a trace', async () => {
    const r = await mops('compact', '--memory', '64M', '--workload', 'filler', '--json', '-');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.zones.map((z: { result: string }) => z.result)).toEqual(['complete', 'complete']);
    expect(j.vmstat.pgmigrate_success).toBeGreaterThan(0);
    expect(j.fragmentationScore.after).toBeLessThan(j.fragmentationScore.before);
    const t = await mops(
      'compact',
      '--memory',
      '64M',
      '--trace',
      '-',
      '--trace-filter',
      'nr_migrated > 0',
    );
    expect(t.out).toMatch(/mm_compaction_migratepages: nr_migrated=\d+ nr_failed=\d+/);
    expect(t.out).not.toMatch(/nr_migrated=0 /);
  });

  it('mops compact with a plugin and its workload', async () => {
    const r = await mops(
      'compact',
      '--memory',
      '64M',
      '--plugin',
      'zsmalloc',
      '--workload',
      'zsmalloc',
      '--json',
      '-',
    );
    expect(r.err).toBe('');
    expect(JSON.parse(r.out).vmstat.pgmigrate_success).toBeGreaterThan(0);
  });

  it('compact --workload plugin scatters the pages of a plugin loaded by path and compacts them', async () => {
    const driver = fileURLToPath(
      new URL('../examples/write-a-driver/src/index.ts', import.meta.url),
    );
    const args = ['compact', '--memory', '64M', '--plugin', driver, '--workload', 'plugin'];
    const r = await mops(...args, '--json', '-');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.workload).toBe('plugin');
    // Only the ring's pages are movable here: whatever migrated was the driver's.
    expect(j.vmstat.pgmigrate_success).toBeGreaterThan(1000);
    expect(j.fragmentationScore.after).toBeLessThan(j.fragmentationScore.before);
    const text = await mops(...args);
    expect(text.out).toMatch(
      /^plugin: movable-ring made 4096 of its pages, scattered through memory$/m,
    );
    const none = await mops('compact', '--memory', '64M', '--workload', 'plugin');
    expect(none.code).toBe(2);
    expect(none.err).toMatch(
      /--workload plugin needs a --plugin whose module exports `conformance/,
    );
  }, 30_000);

  it('compact reports a driver protocol violation and a failed invariant check, and exits 1', async () => {
    const driver = fileURLToPath(new URL('./fixtures/forgetful-driver.ts', import.meta.url));
    const args = ['compact', '--memory', '64M', '--plugin', driver, '--workload', 'plugin'];
    const text = await mops(...args);
    expect(text.code).toBe(1);
    expect(text.out).toMatch(
      /^warnings: \d+ protocol_violation \(mops's checks of the movable_ops protocol\); first lines below, --warnings FILE\|- writes each in full, with its dump_page$/m,
    );
    expect(text.out).toMatch(
      /^ {2}\d+× \[protocol_violation\] forgetful: migrate_page returned success without __ClearPageMovable\(src\)$/m,
    );
    expect(text.out).toMatch(/^invariant checker: \d+ violations$/m);
    expect(text.out).toMatch(/^ {2}forgetful: pfn \d+ is counted as ours but is free$/m);
    const json = await mops(...args, '--json', '-');
    expect(json.code).toBe(1);
    const j = JSON.parse(json.out);
    expect(j.warnings.length).toBeGreaterThan(0);
    expect(j.invariants.ok).toBe(false);
    expect(j.invariants.violations[0]).toMatch(
      /^forgetful: pfn \d+ is counted as ours but is free$/,
    );
    expect(json.err).toMatch(/^warnings: \d+ protocol_violation /m);
    // proc keeps standard output for the view and reports on standard error.
    const proc = await mops(
      'proc',
      'buddyinfo',
      '--memory',
      '64M',
      '--plugin',
      driver,
      '--workload',
      'plugin',
    );
    expect(proc.code).toBe(1);
    expect(proc.out).toMatch(/^Node 0, zone {6}DMA/);
    expect(proc.err).toMatch(
      /^invariant checker: 1 violation\n {2}forgetful: pfn \d+ is counted as ours but is free$/m,
    );
    // A clean run says so in one line.
    const clean = await mops('compact', '--memory', '64M');
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/^checks: no kernel warning, and the invariant checker passed$/m);
    expect(JSON.parse((await mops('compact', '--memory', '64M', '--json', '-')).out)).toMatchObject(
      {
        warnings: [],
        invariants: { ok: true, violations: [] },
      },
    );
  }, 30_000);

  it('--workload balloon inflates the third of free memory it asks for, over as many fill_balloon() calls as that takes', async () => {
    const r = await mops(
      'compact',
      '--memory',
      '64M',
      '--plugin',
      'balloon',
      '--workload',
      'balloon',
    );
    expect(r.code).toBe(0);
    const [, got, want] = /^balloon: inflated (\d+) of (\d+) pages/m.exec(r.out) ?? [];
    expect(Number(got)).toBe(Number(want));
    expect(Number(want)).toBeGreaterThan(2000);
  }, 30_000);

  it('v6.17: the filler workloads beside another Offline driver fail naming the workloads without it', async () => {
    const r = await mops('compact', '--memory', '64M', '--profile', 'v6.17', '--plugin', 'balloon');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /cannot share a machine with another Offline driver.*; --workload none or plugin runs without the filler \[E_PLUGIN\]/,
    );
  });

  it('compact --trace-events keeps the systems and events named, as enabling them in tracefs does', async () => {
    const args = ['compact', '--memory', '64M', '--trace', '-'];
    const eventsOf = (out: string) =>
      new Set([...out.matchAll(/^\s+\S+\s+\[\d+\] \S+\s+[\d.]+: (\w+):/gm)].map((x) => x[1]));
    const all = eventsOf((await mops(...args)).out);
    expect(all).toContain('mm_page_free');
    const some = eventsOf(
      (await mops(...args, '--trace-events', 'compaction,mm_migrate_pages')).out,
    );
    expect(some).toContain('mm_compaction_begin');
    expect(some).toContain('mm_migrate_pages');
    expect(some).not.toContain('mm_migrate_pages_start');
    expect(some).not.toContain('mm_page_free');
    expect([...some].every((e) => e.startsWith('mm_compaction_') || e === 'mm_migrate_pages')).toBe(
      true,
    );
  });

  it('compact --trace-events in v4.8: a system stands for the events 4.8 has; an event it lacks is a usage error', async () => {
    const args = ['compact', '--memory', '64M', '--profile', 'v4.8', '--trace', '-'];
    const r = await mops(...args, '--trace-events', 'migrate');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/: mm_migrate_pages: /);
    const bad = await mops(...args, '--trace-events', 'mm_migrate_pages_start');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      "mops: trace: v4.8 has no event 'mm_migrate_pages_start': the tracepoint came in a later release [E_USAGE]\n",
    );
  });

  it('compact --json in v4.8: the fragmentation score 4.8 lacks is null', async () => {
    const r = await mops('compact', '--memory', '64M', '--profile', 'v4.8', '--json', '-');
    expect(JSON.parse(r.out).fragmentationScore).toEqual({ before: null, after: null });
  });

  it('compact --trace - writes the trace alone to standard output, the report to standard error', async () => {
    const r = await mops('compact', '--memory', '16M', '--trace', '-');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^# tracer: nop\n/);
    expect(r.out).not.toContain('/proc/buddyinfo before');
    expect(r.out.trimEnd().split('\n').at(-1)).toMatch(/: mm_compaction_/);
    expect(r.err).toContain('/proc/buddyinfo before');
  });

  it("mops compaction-test passes (exit 0) and prints the release's selftest output", async () => {
    // v6.3's selftest: one printf line; mops's notes go to standard error.
    const printf = await mops('compaction-test', '--memory', '256M');
    expect(printf.code).toBe(0);
    expect(printf.out).toMatch(/^No of huge pages allocated = \d+\n$/);
    expect(printf.err).toMatch(/^mops: MemFree: 262140 kB, Hugepagesize: 2048 kB$/m);
    const r = await mops('compaction-test', '--memory', '256M', '--profile', 'v6.17');
    expect(r.code).toBe(0);
    // v6.17's kselftest TAP: header, plan, the test's messages, the result, the totals.
    const lines = r.out.trimEnd().split('\n');
    expect(lines.slice(0, 2)).toEqual(['TAP version 13', '1..1']);
    expect(lines.slice(2, -2).every((l) => l.startsWith('# '))).toBe(true);
    expect(lines.slice(-2)).toEqual([
      'ok 1 check_compaction',
      '# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0',
    ]);
  });

  it('mops compaction-test skips as the selftest does when vm.compact_unevictable_allowed is not 1', async () => {
    const off = ['--sysctl', 'vm.compact_unevictable_allowed=0'];
    // v6.17: prereq() prints its reason; ksft_exit_skip() before any plan: "1..0 # SKIP".
    const r = await mops('compaction-test', ...off, '--profile', 'v6.17');
    expect(r.out).toBe(
      "TAP version 13\n# Compaction isn't allowed\n1..0 # SKIP Prerequisites unsatisfied\n",
    );
    expect(r.code).toBe(4);
    // v6.3: prereq()'s printf lines; mops exits KSFT_SKIP all the same.
    const old = await mops('compaction-test', ...off);
    expect(old.out).toMatch(/^Either the sysctl compact_unevictable_allowed is not\n/);
    expect(old.code).toBe(4);
    const ok = await mops('compaction-test', '--sysctl', 'vm.compact_unevictable_allowed=1');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^No of huge pages allocated = \d+$/m);
  });

  it.each([
    ['v4.8', 'partial'],
    ['v6.3', 'success'],
  ])(
    '%s: mops compact names a successful result as its release does (%s)',
    async (profile, name) => {
      const args = ['compact', '--memory', '64M', '--profile', profile, '--order', '2'];
      const text = await mops(...args);
      expect(text.code).toBe(0);
      expect(text.out).toMatch(new RegExp(`^compaction: DMA=${name} DMA32=${name}$`, 'm'));
      const json = JSON.parse((await mops(...args, '--json', '-')).out);
      expect(json.zones.map((z: { result: string }) => z.result)).toEqual([name, name]);
    },
  );

  it('mops compact --from-proc-movable gives compaction the pages of Movable pageblocks to migrate', async () => {
    const run = async (...more: string[]) =>
      JSON.parse(
        (
          await mops(
            'compact',
            '--from-proc',
            samples,
            '--workload',
            'none',
            '--json',
            '-',
            ...more,
          )
        ).out,
      );
    const before = await run();
    const after = await run('--from-proc-movable');
    expect(before.vmstat.pgmigrate_success ?? 0).toBe(0);
    expect(after.vmstat.pgmigrate_success).toBeGreaterThan(1000);
    const alone = await mops('compact', '--from-proc-movable');
    expect(alone.code).toBe(2);
    expect(alone.err).toContain('give --from-proc DIR too [E_USAGE]');
  });

  it('mops compact --from-proc compacts the imported machine as it is: no workload unless one is named', async () => {
    const json = async (...more: string[]) => {
      const r = await mops('compact', '--from-proc', samples, '--json', '-', ...more);
      expect(r.code).toBe(0);
      return JSON.parse(r.out);
    };
    const plain = await json();
    expect(plain.workload).toBe('none');
    expect(plain.vmstat.pgmigrate_success ?? 0).toBe(0);
    const filled = await json('--workload', 'filler');
    expect(filled.workload).toBe('filler');
    expect(filled.vmstat.pgmigrate_success).toBeGreaterThan(0);
    // Without --from-proc the default is still the filler.
    const r = await mops('compact', '--memory', '64M', '--json', '-');
    expect(JSON.parse(r.out).workload).toBe('filler');
  });

  it('mops compact --from-proc records the imported machine size in its JSON', async () => {
    const r = await mops('compact', '--from-proc', samples, '--workload', 'none', '--json', '-');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    const { machineFromProc } = await import('../packages/core/src/index.js');
    const bytes = machineFromProc(samples).config.bytes;
    expect(bytes).not.toBe(2 ** 30);
    expect(j.memory).toBe(bytes % 2 ** 30 === 0 ? `${bytes / 2 ** 30}G` : `${bytes / 2 ** 20}M`);
  });

  it.each(['v4.8', 'v6.3'])(
    '%s: the demo says where the drivers keep their callbacks in that release',
    async (profile) => {
      const r = await mops('demo', '--memory', '64M', '--profile', profile);
      expect(r.code).toBe(0);
      if (profile === 'v4.8') {
        expect(r.out).toContain("their drivers' address_space_operations");
        expect(r.out).not.toContain('movable_operations');
      } else expect(r.out).toContain("through their drivers' movable_operations");
    },
    30_000,
  );

  it('mops check-plugin --profile for a profile the manifest does not list is a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-plugin-'));
    const path = join(dir, 'one-profile.mjs');
    writeFileSync(
      path,
      `export default { manifest: { name: 'one-profile', version: '0.1.0', profiles: ['v6.0', 'v6.3'] }, register() {} };
export const conformance = { populate() { return []; } };
`,
    );
    const r = await mops('check-plugin', path, '--profile', 'v4.8');
    rmSync(dir, { recursive: true });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/--profile v4\.8: .*one-profile.*lists v6\.0, v6\.3/);
  });

  it('mops check-plugin on a plugin whose register throws is E_PLUGIN (exit 2), not a failure per rule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-plugin-'));
    const path = join(dir, 'throws.mjs');
    writeFileSync(
      path,
      `export default { manifest: { name: 'throws', version: '0.1.0', profiles: ['v6.3'] }, register() { throw new Error('boom'); } };
export const conformance = { populate() { return []; } };
`,
    );
    const r = await mops('check-plugin', path);
    rmSync(dir, { recursive: true });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/plugin throws: register threw \(Error: boom\).*\[E_PLUGIN\]/);
    // A MopsError of its own stops it with that error, as `compact --plugin` does.
    // Beside the example driver, so that it finds @mops/core.
    const own = fileURLToPath(
      new URL('../examples/write-a-driver/dist/.config-plugin.test.mjs', import.meta.url),
    );
    writeFileSync(
      own,
      `import { MopsError } from '@mops/core';
export default { manifest: { name: 'config', version: '0.1.0', profiles: ['v6.3'] }, register() { throw new MopsError('E_CONFIG', 'needs config', 'config'); } };
export const conformance = { populate() { return []; } };
`,
    );
    const c = await mops('check-plugin', own).finally(() => rmSync(own));
    expect(c.code).toBe(2);
    expect(c.out).toBe('');
    expect(c.err).toBe('mops: needs config [E_CONFIG]\n');
  });

  it('mops compaction-test on a machine too small for one huge page fails as the selftest does', async () => {
    // v6.3's selftest divides by zero huge pages: SIGFPE before it prints anything.
    const old = await mops('compaction-test', '--memory', '4M');
    expect(old.code).toBe(1);
    expect(old.out).toBe('');
    expect(old.err).toContain("mops: the release's selftest exits with status 136; mops exits 1");
    const r = await mops('compaction-test', '--memory', '4M', '--profile', 'v6.17');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^TAP version 13\n1\.\.1\n/);
    expect(r.out).toContain(
      '# ERROR: No memory is available as huge pages\nnot ok 1 check_compaction\n',
    );
    expect(r.out).toMatch(/# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0\n$/);
  });

  it('mops check-plugin prints a table of rules with pass/fail and spec sections', async () => {
    const r = await mops('check-plugin', 'balloon', '--profile', 'v6.3');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^v6\.3\s+migrate\s+§2\.1, §2\.5\s+pass$/m);
    expect(r.out).toContain('all rules pass');
    // Every result sits under the header's "result", the widest section included.
    const lines = r.out.split('\n');
    const col = lines[0].indexOf('result');
    const rows = lines.filter((l) => l.startsWith('v6.3'));
    expect(rows.length).toBeGreaterThan(3);
    for (const l of rows) expect(l.slice(col, col + 4)).toMatch(/^(pass|FAIL|SKIP)$/);
  }, 30_000);

  it('mops check-plugin shows a rule the plugin has no hook for as SKIP with the reason', async () => {
    const r = await mops('check-plugin', 'balloon', '--profile', 'v6.0');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^v6\.0\s+release-isolated\s+§4, S19, S21\s+SKIP {2}the adapter has no release hook$/m,
    );
    expect(r.out).not.toMatch(/release-isolated.*pass/);
    expect(r.out).toContain('all rules pass (1 not checked)');
  }, 30_000);

  it('mops check-plugin runs the release rule for a plugin that exports a release hook', async () => {
    const r = await mops('check-plugin', 'zsmalloc', '--profile', 'v6.3');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^v6\.3\s+release-isolated\s+§4, S19, S21\s+pass$/m);
    expect(r.out).toContain('all rules pass');
    expect(r.out).not.toContain('not checked');
  }, 30_000);

  it('mops check-plugin loads a plugin by path and finds its conformance hooks', async () => {
    const path = fileURLToPath(new URL('../examples/write-a-driver/src/index.ts', import.meta.url));
    const r = await mops('check-plugin', path, '--profile', 'v6.3');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^v6\.3\s+migrate\s+.*pass$/m);
    expect(r.out).toContain('all rules pass');
  }, 30_000);

  it('mops proc shows plugin views', async () => {
    const r = await mops(
      'proc',
      'zsmalloc/classes',
      '--memory',
      '64M',
      '--plugin',
      'zsmalloc',
      '--workload',
      'zsmalloc',
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ class\s+size/);
    const e = await mops('proc', 'extfrag_index', '--memory', '64M');
    expect(e.out).toMatch(/^Node 0, zone\s+DMA /);
  });

  it('mops proc buddyinfo --from-proc prints a real machine buddyinfo back, line for line', async () => {
    const r = await mops('proc', 'buddyinfo', '--from-proc', samples);
    expect(r.code).toBe(0);
    expect(r.out).toBe(readFileSync(`${samples}/buddyinfo`, 'utf8'));
    // It prints back as it is: nothing to note.
    expect(r.err).toBe('');
  });

  it('mops proc zoneinfo --from-proc says on standard error where it prints the copy back otherwise', async () => {
    const r = await mops('proc', 'zoneinfo', '--from-proc', samples, '--profile', 'v6.17');
    expect(r.code).toBe(0);
    const notes = r.err.trimEnd().split('\n');
    expect(notes.every((l) => l.startsWith('mops: note: zoneinfo: '))).toBe(true);
    expect(r.err).toContain(
      'mops: note: zoneinfo: zone Normal has 688128 present pages, not 5505024',
    );
    expect(r.out).toMatch(/^Node 0, zone {6}DMA\n/);
  });

  it('mops proc --from-proc with a plugin that keeps data in pages builds the machine with contents', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-proc-'));
    for (const f of ['buddyinfo', 'pagetypeinfo'])
      writeFileSync(join(dir, f), (await mops('proc', f, '--memory', '256M')).out);
    const r = await mops('proc', 'zsmalloc/classes', '--plugin', 'zsmalloc', '--from-proc', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ class\s+size/);
    rmSync(dir, { recursive: true });
    // The sample's machine spans 25 GiB: too big for contents, and the message says so.
    const big = await mops(
      'proc',
      'zsmalloc/classes',
      '--plugin',
      'zsmalloc',
      '--from-proc',
      samples,
    );
    expect(big.code).toBe(2);
    expect(big.err).toContain('at most 4 GiB');
    // What the command line can do about it: it has no way to leave the contents out.
    expect(big.err).toContain('leave out --plugin zsmalloc');
    expect(big.err).not.toContain('contents: false');
  });

  it('mops proc pagetypeinfo --from-proc reproduces the free and block counts', async () => {
    const r = await mops('proc', 'pagetypeinfo', '--from-proc', samples);
    expect(r.out).toBe(readFileSync(`${samples}/pagetypeinfo`, 'utf8'));
  });

  it.each(['v4.8', 'v6.17'])(
    '%s: mops compact reports the deltas under the names and in the order of its /proc/vmstat',
    async (profile) => {
      const args = ['--memory', '64M', '--workload', 'filler', '--profile', profile];
      const r = await mops('compact', ...args, '--json', '-');
      const names = Object.keys(JSON.parse(r.out).vmstat);
      expect(names).toContain('compact_isolated');
      const file = (await mops('proc', 'vmstat', ...args)).out
        .split('\n')
        .map((l) => l.split(' ')[0]);
      const at = names.map((n) => file.indexOf(n));
      expect(at.every((i) => i >= 0)).toBe(true);
      expect(at).toEqual([...at].sort((a, b) => a - b));
    },
    30_000,
  );

  it('mops proc vmstat after a workload counts the allocations', async () => {
    const r = await mops('proc', 'vmstat', '--memory', '64M', '--workload', 'churn');
    expect(r.code).toBe(0);
    expect(Number(/^pgalloc_dma32 (\d+)$/m.exec(r.out)?.[1])).toBeGreaterThan(0);
  });

  it('--sysctl sets the machine settings: vm.min_free_kbytes changes the watermarks', async () => {
    const min = async (...extra: string[]) => {
      const r = await mops('proc', 'zoneinfo', '--memory', '64M', ...extra);
      expect(r.code).toBe(0);
      return Number(/zone +DMA32[\s\S]*?\n +min +(\d+)/.exec(r.out)?.[1]);
    };
    const base = await min();
    expect(await min('--sysctl', 'vm.min_free_kbytes=8192')).toBeGreaterThan(base);
    // Sysctls the view does not show are accepted too (ranges checked).
    const r = await mops(
      'proc',
      'buddyinfo',
      '--memory',
      '64M',
      '--profile',
      'v6.17',
      '--sysctl',
      'vm.defrag_mode=1',
      '--sysctl',
      'watermark_boost_factor=0',
      '--sysctl',
      'vm.compaction_proactiveness=40',
    );
    expect(r.code).toBe(0);
  });

  it('--mode takes sync-light as well as sync_light', async () => {
    const r = await mops('compact', '--memory', '64M', '--order', '3', '--mode', 'sync-light');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it.each([
    [['proc', 'nosuchview'], /known/],
    [['demo', '--memory', '3M'], /multiple of a pageblock/],
    [['demo', '--seed', 'x'], /--seed must be a decimal integer, got 'x'/],
    [['compact', '--seed', ''], /--seed must be a decimal integer, got ''/],
    [['compact', '--seed', '0x10'], /--seed must be a decimal integer, got '0x10'/],
    [['compact', '--seed', '1e3'], /--seed must be a decimal integer, got '1e3'/],
    [['explore', '9a', '--runs', ''], /--runs must be a decimal integer, got ''/],
    [
      ['proc', 'buddyinfo', '--profile', 'v9'],
      /--profile must be one of v4.8, v6.0, v6.3, v6.17, got 'v9'/,
    ],
    [['proc', 'buddyinfo', '--workload', 'nope'], /--workload must be one of/],
    [['compact', '--order', '11'], /--order must be an integer -1..10 .*, got 11 \[E_USAGE\]/],
    [
      ['compact', '--order', '3', '--mode', 'fast'],
      /--mode must be one of async, sync_light, sync-light, sync, got 'fast' \[E_USAGE\]/,
    ],
    [['proc', 'buddyinfo', '--plugin', '@mops/nope'], /cannot load it/],
    [['frobnicate'], /unknown command/],
    [
      ['proc', 'zoneinfo', '--sysctl', 'vm.nosuch=1'],
      /unknown sysctl vm.nosuch; known: vm.min_free_kbytes/,
    ],
    [['proc', 'zoneinfo', '--sysctl', 'defrag_mode'], /--sysctl: write vm.<name>=<integer>/],
    [['proc', 'zoneinfo', '--sysctl', 'vm.defrag_mode=1'], /defrag_mode does not exist in v6.3/],
    [
      ['proc', 'zoneinfo', '--profile', 'v6.17', '--sysctl', 'vm.defrag_mode=2'],
      /vm.defrag_mode must be 0 or 1, got 2/,
    ],
    [['proc', 'zoneinfo', '--sysctl', 'vm.extfrag_threshold=1001'], /extfrag_threshold must be/],
    [
      ['proc', 'zoneinfo', '--profile', 'v4.8', '--sysctl', 'vm.compaction_proactiveness=20'],
      /vm.compaction_proactiveness does not exist in v4.8/,
    ],
    [
      ['proc', 'zoneinfo', '--sysctl', 'vm.min_free_kbytes=2147483648'],
      /--sysctl vm.min_free_kbytes must be an integer 0..2147483647, got 2147483648/,
    ],
    [
      ['proc', 'zoneinfo', '--sysctl', 'vm.min_free_kbytes=-1'],
      /^mops: --sysctl vm.min_free_kbytes must be an integer 0..2147483647, got -1 \[E_RANGE\]/,
    ],
    // One line, even where commander suggests a spelling.
    [
      ['compact', '--memroy', '1G'],
      /^mops: unknown option '--memroy' \(Did you mean --memory\?\); see mops compact --help \[E_USAGE\]\n$/,
    ],
    [[], /\nmops: give a command; see mops --help \[E_USAGE\]\n$/],
    [['help', 'nosuch'], /\nmops: unknown command 'nosuch'; see mops --help \[E_USAGE\]\n$/],
    [
      ['proc', 'buddyinfo', '--from-proc', samples, '--memory', '64M'],
      /--memory and --from-proc: the machine's size comes from the \/proc sample/,
    ],
    [
      ['explore', '9a', '--variant', 'buggy', '--runs', '10', '--shard', '1/100'],
      /--shard 1\/100: none of the --runs seeds falls in this shard, so nothing ran/,
    ],
    [
      ['explore', '9a', '--bound', '2'],
      /bound \(--bound\) is DFS's preemption bound; this run's strategy is random/,
    ],
    [
      ['compact', '--memory', '64M', '--trace', '-', '--json', '-'],
      /--trace - and --json - would both write to standard output/,
    ],
    [['compact', '--memory', '64M', '--trace-filter', 'nr_migrated > 0'], /give --trace/],
    [
      ['compact', '--memory', '64M', '--trace-events', 'compaction'],
      /--trace-events .*give --trace/,
    ],
    [
      ['compact', '--memory', '64M', '--trace', '-', '--trace-events', 'compaction,vmscan'],
      /--trace-events: no event or system 'vmscan'; systems: kmem, compaction, migrate; v6\.3's events: mm_page_alloc, /,
    ],
    [['proc', 'zsmalloc/classes', '--memory', '64M'], /add --plugin zsmalloc/],
    [['proc', 'zram/mm_stat', '--memory', '64M'], /add --plugin zsmalloc/],
    [['proc', 'balloon/stats', '--memory', '64M', '--plugin', 'zsmalloc'], /add --plugin balloon/],
  ])('usage errors exit 2 with a message, no stack trace: %j', async (args, msg) => {
    const r = await mops(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe('values the command line cannot act on as given', () => {
  it.each([
    [
      ['proc', 'zoneinfo', '--from-proc', ''],
      '--from-proc',
      /^mops: --from-proc needs a directory/,
    ],
    [
      ['proc', 'zoneinfo', '--from-proc', '  '],
      '--from-proc',
      /^mops: --from-proc needs a directory/,
    ],
    [
      ['compact', '--memory', '64M', '--trace', ''],
      '--trace',
      /^mops: --trace needs a file name, or - for standard output, got ""/,
    ],
    [
      ['compact', '--memory', '64M', '--json', ''],
      '--json',
      /^mops: --json needs a file name, or - for standard output, got ""/,
    ],
    [
      ['compact', '--memory', '64M', '--trace', '', '--trace-filter', 'nr_migrated > 0'],
      '--trace',
      /^mops: --trace needs a file name/,
    ],
    [
      ['proc', 'buddyinfo', '--plugin', ''],
      '--plugin',
      /^mops: --plugin needs zsmalloc, balloon, a package name or a path, got ""/,
    ],
    [
      ['compact', '--memory', '64M', '--plugin', 'zsmalloc', '--plugin', ''],
      '--plugin',
      /^mops: --plugin needs/,
    ],
    [
      ['check-plugin', ''],
      'check-plugin',
      /^mops: check-plugin needs a plugin: zsmalloc, balloon, a package name or a path, got ""/,
    ],
  ])('an empty value: %j is E_USAGE naming the option', async (args, option, msg) => {
    const r = await mops(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
    expect(r.err).toMatch(/ \[E_USAGE\]\n$/);
    expect(r.err.split('\n')).toHaveLength(2);
    expect(r.err).toContain(option);
  });

  it.each([
    ['watermark_boost_factor', '99999999999999999999', '0..2147483647'],
    ['watermark_boost_factor', '-1', '0..2147483647'],
    ['extfrag_threshold', '99999999999999999999', '0..1000'],
    ['compaction_proactiveness', '1000000000000000000000', '0..100'],
    ['compact_unevictable_allowed', '00002', '0..1'],
  ])('--sysctl vm.%s=%s: the range error quotes the value as given', async (name, value, range) => {
    const r = await mops('proc', 'zoneinfo', '--memory', '64M', '--sysctl', `vm.${name}=${value}`);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `mops: --sysctl vm.${name} must be an integer ${range}, got ${value} [E_RANGE]\n`,
    );
  });

  it('a seed the PRNG would not keep whole (32 bits) is out of range, not "not a decimal integer"', async () => {
    for (const cmd of [['compact'], ['proc', 'buddyinfo'], ['demo'], ['compaction-test']])
      for (const seed of ['9007199254740992', '4294967297', '2147483648', '-2147483649']) {
        const r = await mops(...cmd, '--seed', seed);
        expect(r.code).toBe(2);
        expect(r.err).toBe(
          `mops: --seed must be an integer from -2147483648 to 2147483647, got '${seed}' [E_USAGE]\n`,
        );
      }
  });

  it('too much memory for page contents: says the memory that works, not an API option', async () => {
    const demo = await mops('demo', '--memory', '6G');
    expect(demo.code).toBe(2);
    expect(demo.err).toBe(
      'mops: --memory 6G: the zsmalloc plugin keeps its data in page contents, which mops holds for at most 4 GiB of memory; give --memory 4G or less [E_CONFIG]\n',
    );
    const proc = await mops('proc', 'zsmalloc/classes', '--memory', '8G', '--plugin', 'zsmalloc');
    expect(proc.code).toBe(2);
    expect(proc.err).toMatch(/^mops: --memory 8G: .*; give --memory 4G or less \[E_CONFIG\]\n$/);
    const sample = await mops('proc', 'buddyinfo', '--from-proc', samples, '--plugin', 'zsmalloc');
    expect(sample.code).toBe(2);
    expect(sample.err).toMatch(
      /^mops: --from-proc .*: the sample's machine is larger than 4 GiB, .*; leave out --plugin zsmalloc, or use --memory 4G or less instead of --from-proc \[E_CONFIG\]\n$/,
    );
    for (const r of [demo, proc, sample]) expect(r.err).not.toContain('contents: false');
  });
});

describe('files the command writes', () => {
  it.each([
    [
      ['--trace', '/nonexistent/dir/t.txt'],
      /^mops: --trace \/nonexistent\/dir\/t\.txt: cannot write it \(ENOENT: [^)]*\) \[E_USAGE\]$/,
    ],
    [
      ['--json', '/nonexistent/dir/r.json'],
      /^mops: --json \/nonexistent\/dir\/r\.json: cannot write it \(ENOENT: [^)]*\) \[E_USAGE\]$/,
    ],
    [['--json', tmpdir()], /^mops: --json .*: cannot write it \(EISDIR: [^)]*\) \[E_USAGE\]$/],
  ])(
    'an unwritable %j is a usage error naming the option, the path and the reason, before the run',
    async (opt, msg) => {
      const r = await mops('compact', '--memory', '64M', ...opt);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err.trimEnd().split('\n')).toHaveLength(1);
      expect(r.err.trimEnd()).toMatch(msg);
    },
  );

  it('a file that cannot be written after the run is a usage error too', async () => {
    const { writeOutputFile } = await import('../packages/cli/src/io.js');
    const dir = mkdtempSync(join(tmpdir(), 'mops-'));
    try {
      expect(() => writeOutputFile('--trace', dir, 'x')).toThrow(
        expect.objectContaining({
          code: 'E_USAGE',
          field: '--trace',
          message: expect.stringMatching(/^--trace .*: cannot write it \(EISDIR: [^)]*\)$/),
        }),
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('--trace and --json files are written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-'));
    try {
      const r = await mops(
        'compact',
        '--memory',
        '32M',
        '--trace',
        join(dir, 't.txt'),
        '--json',
        join(dir, 'r.json'),
      );
      expect(r.code).toBe(0);
      expect(readFileSync(join(dir, 't.txt'), 'utf8')).toContain('mm_compaction');
      expect(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')).memory).toBe('32M');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe("commander's parse errors", () => {
  it.each([
    [['foo'], "mops: unknown command 'foo'; see mops --help [E_USAGE]"],
    [['--bogus'], "mops: unknown option '--bogus'; see mops --help [E_USAGE]"],
    [['proc'], "mops: missing required argument 'view'; see mops proc --help [E_USAGE]"],
    [['compact', '--bogus'], "mops: unknown option '--bogus'; see mops compact --help [E_USAGE]"],
    [['explore'], "mops: missing required argument 'scenario'; see mops explore --help [E_USAGE]"],
    [
      ['explore', '9a', '--runs'],
      "mops: option '--runs <n>' argument missing; see mops explore --help [E_USAGE]",
    ],
    [
      ['replay', '9a'],
      "mops: required option '--schedule <str>' not specified; see mops replay --help [E_USAGE]",
    ],
    [
      ['demo', 'extra'],
      "mops: too many arguments for 'demo'. Expected 0 arguments but got 1; see mops demo --help [E_USAGE]",
    ],
  ])('%j prints one line in the mops format and exits 2', async (args, line) => {
    const r = await mops(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${line}\n`);
  });

  it('--help and --version print to standard output and exit 0', async () => {
    for (const args of [['--help'], ['compact', '--help'], ['help', 'explore']]) {
      const r = await mops(...args);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Usage: mops /);
      expect(r.err).toBe('');
    }
    expect((await mops('explore', '--help')).out).toContain('--load <module>');
    const v = await mops('--version');
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
