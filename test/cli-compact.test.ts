/**
 * `mops compact`'s reports: the warnings in full (`--warnings`) and per kind, views after
 * the compaction (`--proc`), tracefs's `set_event` forms in `--trace-events`, the vmstat
 * deltas, and the defaults its help shows.
 */
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ftraceEventNames, getProfile, profileHasEvent } from '@mops/core';
import { describe, expect, it } from 'vitest';
import { type Health, healthLines, warningsPointer } from '../packages/cli/src/health.js';
import { mops } from './cli_helpers.js';

const driver = fileURLToPath(new URL('./fixtures/forgetful-driver.ts', import.meta.url));
const forgetful = ['compact', '--memory', '64M', '--plugin', driver, '--workload', 'plugin'];

describe('compact --warnings: each warning in full, with its kind and page', () => {
  it('--warnings FILE holds every warning with its dump_page; the report points to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-warnings-'));
    const file = join(dir, 'warnings.txt');
    try {
      const r = await mops(...forgetful, '--warnings', file);
      expect(r.code).toBe(1);
      const n = Number(/^warnings: (\d+) protocol_violation /m.exec(r.out)?.[1]);
      expect(n).toBeGreaterThan(0);
      expect(r.out).toContain(
        `protocol_violation (mops's checks of the movable_ops protocol); first lines below, each in full, with its dump_page, in ${file}\n`,
      );
      const text = readFileSync(file, 'utf8');
      const heads = [...text.matchAll(/^warning (\d+) of (\d+): (\w+), pfn 0x([0-9a-f]+)$/gm)];
      expect(heads.length).toBe(n);
      expect(heads.every((h, i) => Number(h[1]) === i + 1 && Number(h[2]) === n)).toBe(true);
      expect(heads.every((h) => h[3] === 'protocol_violation')).toBe(true);
      // Each warning's text follows its heading, the page dump included.
      const first = text.split('\n\n')[0].split('\n');
      expect(first[1]).toBe(
        'forgetful: migrate_page returned success without __ClearPageMovable(src)',
      );
      expect(first[2]).toMatch(new RegExp(` pfn:0x${heads[0][4]}$`));
      expect(first).toContain(
        'page dumped because: migrate_page returned success without __ClearPageMovable(src)',
      );
      // The JSON gives each one's kind, page and text, beside the first lines it had.
      const j = JSON.parse((await mops(...forgetful, '--json', '-')).out);
      expect(j.warnings.length).toBe(n);
      expect(j.warningDetails.length).toBe(n);
      expect(j.warningDetails[0]).toEqual({
        kind: 'protocol_violation',
        pfn: Number.parseInt(heads[0][4], 16),
        text: text.split('\n\n')[0].split('\n').slice(1).join('\n'),
      });
      expect(j.warningDetails.map((w: { text: string }) => w.text.split('\n')[0])).toEqual(
        j.warnings,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  }, 30_000);

  it('--warnings - writes them alone to standard output, the report to standard error', async () => {
    const r = await mops(...forgetful, '--warnings', '-');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^warning 1 of \d+: protocol_violation, pfn 0x/);
    expect(r.out).not.toContain('/proc/buddyinfo');
    expect(r.err).toContain('/proc/buddyinfo before');
    expect(r.err).toMatch(
      /; first lines below, each in full, with its dump_page, on standard output$/m,
    );
    const both = await mops('compact', '--json', '-', '--warnings', '-');
    expect(both.code).toBe(2);
    expect(both.err).toBe(
      'mops: --json - and --warnings - would both write to standard output; send one of them to a file [E_USAGE]\n',
    );
  }, 30_000);

  it('two outputs naming one file: E_USAGE before the run, the file untouched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-same-'));
    const file = join(dir, 'out.txt');
    try {
      writeFileSync(file, 'keep\n');
      const r = await mops(
        'compact',
        '--memory',
        '64M',
        '--json',
        file,
        '--trace',
        `${dir}/./out.txt`,
      );
      expect(r.code).toBe(2);
      expect(r.err).toBe(
        `mops: --trace and --json would both write to ${dir}/./out.txt, the one over the other; give each a file of its own [E_USAGE]\n`,
      );
      expect(readFileSync(file, 'utf8')).toBe('keep\n');
      // Through a symbolic link (to a file not written yet) or a hard link, the same.
      symlinkSync('new.json', join(dir, 'link.json'));
      const viaLink = await mops(
        'compact',
        '--memory',
        '64M',
        '--trace',
        join(dir, 'link.json'),
        '--json',
        join(dir, 'new.json'),
      );
      expect(viaLink.code).toBe(2);
      expect(viaLink.err).toMatch(
        /--trace and --json would both write to .*link\.json.* \[E_USAGE\]/,
      );
      linkSync(file, join(dir, 'hard.txt'));
      const viaHard = await mops(
        'compact',
        '--memory',
        '64M',
        '--trace',
        file,
        '--warnings',
        join(dir, 'hard.txt'),
      );
      expect(viaHard.code).toBe(2);
      expect(viaHard.err).toMatch(/--trace and --warnings would both write to /);
      // A `..` after a symbolic link goes up from where the link leads, as the system walks it.
      mkdirSync(join(dir, 'a'));
      mkdirSync(join(dir, 'w'));
      symlinkSync(join(dir, 'a'), join(dir, 'w', 'link'));
      const up = `${dir}/w/link/../u.txt`;
      const traceUpAndJson = (json: string) =>
        mops('compact', '--memory', '64M', '--trace', up, '--json', json);
      const same = await traceUpAndJson(`${dir}/u.txt`);
      expect(same.code).toBe(2);
      expect(same.err).toContain(`would both write to ${up}`);
      const two = await traceUpAndJson(`${dir}/w/u.txt`);
      expect(two.code).toBe(0);
      // A dangling link whose relative target is read from where its directory really is.
      symlinkSync('../v.json', join(dir, 'a', 'dang'));
      const far = await mops(
        'compact',
        '--memory',
        '64M',
        '--json',
        `${dir}/v.json`,
        '--trace',
        `${dir}/w/link/dang`,
      );
      expect(far.code).toBe(2);
      expect(readFileSync(file, 'utf8')).toBe('keep\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('proc --warnings FILE writes them too; standard output stays the view', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mops-warnings-'));
    const file = join(dir, 'w.txt');
    try {
      const args = ['proc', 'buddyinfo', '--memory', '64M', '--plugin', driver];
      const r = await mops(...args, '--workload', 'plugin', '--warnings', file);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/^Node 0, zone {6}DMA/);
      // This workload's mistake is the invariant checker's to find: no warning is logged.
      expect(readFileSync(file, 'utf8')).toBe('');
      const dash = await mops(...args, '--warnings', '-');
      expect(dash.code).toBe(2);
      expect(dash.err).toBe(
        "mops: --warnings -: proc's standard output is the view; give --warnings a file [E_USAGE]\n",
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("the report counts the warnings per kind, mops's protocol checks apart from the kernel's", () => {
    const w = (kind: string, text: string, pfn: number | null = 1) => ({ kind, pfn, text });
    const h: Health = {
      ok: false,
      details: [
        w('protocol_violation', 'drv: isolate_page returned 1, not a boolean\npage:…'),
        w('VM_WARN_ON_ONCE', 'WARNING: VM_WARN_ON_ONCE(…)', null),
        w('protocol_violation', 'drv: isolate_page returned 1, not a boolean\npage:…'),
        w('bad_page', 'BUG: Bad page state in process x  pfn:00001\n…'),
      ],
      warnings: [],
      violations: [],
    };
    expect(healthLines(h, warningsPointer(undefined, '--warnings FILE'))).toEqual([
      "warnings: 4, of which 2 protocol_violation (mops's checks of the movable_ops protocol), 1 VM_WARN_ON_ONCE (the kernel's) and 1 bad_page (the kernel's); first lines below, --warnings FILE writes each in full, with its dump_page",
      '  2× [protocol_violation] drv: isolate_page returned 1, not a boolean',
      '  [VM_WARN_ON_ONCE] WARNING: VM_WARN_ON_ONCE(…)',
      '  [bad_page] BUG: Bad page state in process x  pfn:00001',
    ]);
  });
});

describe('compact --proc: views after the compaction', () => {
  it('prints each view named, as mops proc does, after the compaction; --json holds them', async () => {
    const views = 'zoneinfo,/proc/extfrag_index,buddyinfo';
    const args = ['compact', '--memory', '64M', '--proc', views];
    const r = await mops(...args);
    expect(r.code).toBe(0);
    const at = r.out.indexOf('\nzoneinfo after compaction\n');
    expect(at).toBeGreaterThan(r.out.indexOf('/proc/vmstat deltas'));
    expect(r.out.slice(at)).toMatch(/^\nzoneinfo after compaction\nNode 0, zone {6}DMA\n/);
    expect(r.out).toMatch(/\nextfrag_index after compaction\nNode 0, zone {6}DMA /);
    const j = JSON.parse((await mops(...args, '--json', '-')).out);
    expect(Object.keys(j.proc)).toEqual(['zoneinfo', 'extfrag_index', 'buddyinfo']);
    // After the compaction, not before.
    expect(j.proc.buddyinfo).toBe(j.buddyinfo.after);
    expect(j.proc.buddyinfo).not.toBe(j.buddyinfo.before);
    expect(r.out).toContain(`zoneinfo after compaction\n${j.proc.zoneinfo}`);
    expect(JSON.parse((await mops('compact', '--memory', '64M', '--json', '-')).out).proc).toEqual(
      {},
    );
  });

  it('an unknown view is refused before the run; a plugin view says which --plugin has it', async () => {
    const bad = await mops('compact', '--memory', '64M', '--proc', 'buddyinfo,nosuch');
    expect(bad.code).toBe(2);
    expect(bad.out).toBe('');
    expect(bad.err).toBe(
      "mops: --proc: no proc view 'nosuch'; known views: buddyinfo, pagetypeinfo, vmstat, zoneinfo, extfrag_index, unusable_index [E_USAGE]\n",
    );
    const plugin = await mops('compact', '--memory', '64M', '--proc', 'zsmalloc/classes');
    expect(plugin.err).toBe(
      "mops: --proc: proc view 'zsmalloc/classes' comes from a plugin: add --plugin zsmalloc [E_USAGE]\n",
    );
    const ok = await mops(
      'compact',
      '--memory',
      '64M',
      '--plugin',
      'zsmalloc',
      '--workload',
      'zsmalloc',
      '--proc',
      'zsmalloc/classes',
    );
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/\nzsmalloc\/classes after compaction\n class {2}size /);
  });
});

describe("compact --trace-events: tracefs's set_event forms", () => {
  const args = ['compact', '--memory', '16M', '--trace', '-'];
  const eventsOf = (out: string) =>
    new Set([...out.matchAll(/^\s+\S+\s+\[\d+\] \S+\s+[\d.]+: (\w+):/gm)].map((x) => x[1]));

  it('SYSTEM:EVENT, SYSTEM:*, SYSTEM:, *:EVENT, :EVENT and *:* choose what the bare forms do', async () => {
    const of = async (list: string) => {
      const r = await mops(...args, '--trace-events', list);
      expect(r.code, list).toBe(0);
      return [...eventsOf(r.out)].sort();
    };
    const pageFree = await of('mm_page_free');
    expect(pageFree).toEqual(['mm_page_free']);
    expect(await of('kmem:mm_page_free')).toEqual(pageFree);
    expect(await of('*:mm_page_free')).toEqual(pageFree);
    expect(await of(':mm_page_free')).toEqual(pageFree);
    const compaction = await of('compaction');
    expect(compaction.length).toBeGreaterThan(1);
    expect(compaction.every((e) => e.startsWith('mm_compaction_'))).toBe(true);
    expect(await of('compaction:*')).toEqual(compaction);
    expect(await of('compaction:')).toEqual(compaction);
    const all = [...eventsOf((await mops(...args)).out)].sort();
    expect(await of('*:*')).toEqual(all);
    expect(await of('compaction:*,migrate:mm_migrate_pages')).toEqual(
      [...compaction, 'mm_migrate_pages'].sort(),
    );
  });

  it('an unknown system, or an event of another system, is a usage error, as -EINVAL is', async () => {
    for (const [list, why] of [
      ['kmem:mm_migrate_pages', 'mm_migrate_pages is an event of migrate, not of kmem'],
      ['nosuch:*', "no system 'nosuch'"],
      ['kmem:nosuch', "no event 'nosuch'"],
      ['*', "no event or system '*'"],
    ]) {
      const r = await mops(...args, '--trace-events', list);
      expect(r.code, list).toBe(2);
      expect(r.out, list).toBe('');
      expect(r.err, list).toMatch(
        new RegExp(
          `^mops: --trace-events: ${why.replace(/[*]/g, '\\*')}.*; systems: kmem, compaction, migrate; v6\\.3's events: .*\\[E_USAGE\\]\\n$`,
        ),
      );
    }
  });

  it('in v4.8, SYSTEM:* stands for the events 4.8 has; SYSTEM:EVENT it lacks is refused', async () => {
    const v48 = ['compact', '--memory', '16M', '--profile', 'v4.8', '--trace', '-'];
    const r = await mops(...v48, '--trace-events', 'migrate:*');
    expect(r.code).toBe(0);
    expect([...eventsOf(r.out)]).toEqual(['mm_migrate_pages']);
    const bad = await mops(...v48, '--trace-events', 'migrate:mm_migrate_pages_start');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/v4\.8 has no event 'mm_migrate_pages_start'/);
  });
});

describe("compact --trace-events: the refusal lists the profile's release's events", () => {
  it.each(['v4.8', 'v6.3'] as const)(
    '%s: every event listed is one the release has, each of them',
    async (profile) => {
      const args = ['compact', '--memory', '16M', '--profile', profile, '--trace', '-'];
      const r = await mops(...args, '--trace-events', 'foo');
      expect(r.code).toBe(2);
      const listed = new RegExp(
        `; ${profile.replace('.', '\\.')}'s events: (.*) \\[E_USAGE\\]\\n$`,
      ).exec(r.err)?.[1];
      const own = ftraceEventNames().filter((n) => profileHasEvent(getProfile(profile), n));
      expect(listed?.split(', ')).toEqual(own);
      // Each event listed is one the command then takes.
      const all = await mops(...args, '--trace-events', own.join(','));
      expect(all.code).toBe(0);
    },
  );

  it("v6.3's list leaves out the events it lacks, which it refuses when named", async () => {
    const args = ['compact', '--memory', '16M', '--trace', '-'];
    const r = await mops(...args, '--trace-events', 'foo');
    expect(r.err).toMatch(/mm_compaction_isolate_freepages, mm_compaction_migratepages/);
    expect(r.err).not.toMatch(/mm_compaction_fast_isolate_freepages/);
    const bad = await mops(...args, '--trace-events', 'mm_compaction_fast_isolate_freepages');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/v6\.3 has no event 'mm_compaction_fast_isolate_freepages'/);
  });
});

describe('/proc/vmstat deltas when no counter changed', () => {
  it('compact and demo say so in one line, rather than a heading with nothing under it', async () => {
    const c = await mops('compact', '--memory', '2M', '--workload', 'none');
    expect(c.code).toBe(0);
    expect(c.out).toContain('\n/proc/vmstat deltas: no event counter changed\nchecks: ');
    expect(c.out).not.toMatch(/^\/proc\/vmstat deltas$/m);
    const d = await mops('demo', '--memory', '2M');
    expect(d.code).toBe(0);
    expect(d.out).toContain(
      '\n/proc/vmstat deltas: no compaction, migration or balloon event counter changed\n',
    );
    expect(d.out).not.toMatch(/^\/proc\/vmstat deltas$/m);
    // With counters that moved: the heading, then one line each.
    const moved = await mops('compact', '--memory', '16M');
    expect(moved.out).toMatch(/\n\/proc\/vmstat deltas\n(\w+ -?\d+\n)+checks: /);
  });
});

describe('compact --help', () => {
  it('shows the --mode default for compact_memory and for an order, as the command runs them', async () => {
    const help = (await mops('compact', '--help')).out.replace(/\s+/g, ' ');
    expect(help).toContain(
      "(default: sync for --order -1, compact_memory's; sync_light for an order N)",
    );
    // Without --mode, an order runs sync_light and -1 runs sync: the same as giving them.
    const trace = async (...args: string[]) =>
      (await mops('compact', '--memory', '16M', '--trace', '-', ...args)).out;
    const order = await trace('--order', '9');
    expect(order).toMatch(/mm_compaction_begin: .* mode=sync/);
    expect(order).toBe(await trace('--order', '9', '--mode', 'sync_light'));
    expect(order).not.toBe(await trace('--order', '9', '--mode', 'async'));
    expect(await trace()).toBe(await trace('--mode', 'sync'));
  });
});
