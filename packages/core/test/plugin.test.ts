import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  __SetPageMovable,
  allocPages,
  createMachine,
  defineMovableOps,
  GFP,
  installedPlugins,
  installPlugin,
  loadPlugin,
  type Machine,
  MIGRATE_MODE,
  MopsError,
  moduleTarget,
  PG,
  PGTY,
  pluginExport,
  procViewNames,
  registerProcView,
  SetPageMovableOps,
  setMovableOps,
  setPageType,
  traceRecorder,
  trylockPage,
  unlockPage,
  validatePlugin,
} from '../src/index.js';
import { RING } from './fixtures/ring-plugin.js';
import { expectInvariants } from './helpers.js';
import { isolate, migrate, putback, rig } from './migrate/harness.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

function fieldOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof MopsError && e.code === 'E_PLUGIN') return e.field;
    throw e;
  }
  return 'did not throw';
}

describe('plugins', () => {
  it('loads a plugin by path and installs it into one machine container only', async () => {
    const p = await loadPlugin('./ring-plugin.ts', fixtures);
    const a = createMachine({ memory: '4M' });
    const b = createMachine({ memory: '4M' });
    installPlugin(a, p);
    expect(installedPlugins(a).map((x) => x.manifest.name)).toEqual(['ring-test']);
    expect(installedPlugins(b)).toEqual([]);
    expect(a.container.resolve<{ machine: unknown }>(RING).machine).toBe(a);
    expect(b.container.isRegistered(RING)).toBe(false);
    expect(a.invariantCheckers.has('ring-test')).toBe(true);
  });

  it('refuses a machine whose profile the plugin does not support', async () => {
    const p = await loadPlugin('./ring-plugin.ts', fixtures);
    const m = createMachine({ memory: '4M', profile: 'v4.8' });
    expect(() => installPlugin(m, p)).toThrow(/supports v6.0, v6.3; this machine runs v4.8/);
  });

  it('a plugin that needs page contents refuses a machine without them (E_STATE), nothing installed', () => {
    let registered = 0;
    const p = validatePlugin(
      {
        manifest: { name: 'keeps-data', version: '1.0.0', profiles: ['v6.3'], needsContents: true },
        register() {
          registered++;
        },
      },
      'test',
    );
    const bare = createMachine({ memory: '4M', contents: false });
    expect(() => installPlugin(bare, p)).toThrow(
      expect.objectContaining({ code: 'E_STATE', field: 'contents' }),
    );
    expect(installedPlugins(bare)).toEqual([]);
    installPlugin(createMachine({ memory: '4M', contents: true }), p);
    expect(registered).toBe(1);
  });

  it('a plugin that imports another copy of @mops/core is refused (E_PLUGIN), naming both; one beside it that it does not import is no matter', async () => {
    const dir = coreCopyFixture();
    expect((await loadPlugin('./p.mjs', dir)).manifest.name).toBe('alone');
    await expect(loadPlugin('./q.mjs', dir)).rejects.toMatchObject({
      code: 'E_PLUGIN',
      message: expect.stringMatching(
        /^plugin \.\/q\.mjs: importing it loaded another copy of @mops\/core, at .*mops-copy-.*node_modules\/@mops\/core, while mops runs the one at .*; two copies share no machine services or registries/,
      ),
    });
    // Asked again, the same answer; and while that copy is loaded, no plugin is trusted.
    await expect(loadPlugin('./q.mjs', dir)).rejects.toMatchObject({
      message: expect.stringMatching(
        /^plugin \.\/q\.mjs: another copy of @mops\/core is loaded in this process/,
      ),
    });
    forgetCoreCopies();
  });

  it('loads beside one that brings another copy of @mops/core: neither is said to have imported it, one after it names a plugin loaded before', async () => {
    const dir = coreCopyFixture();
    const [q, p] = await Promise.allSettled([
      loadPlugin('./q.mjs', dir),
      loadPlugin('./p.mjs', dir),
    ]);
    const later = await loadPlugin('./p.mjs', dir).catch((e: Error) => e);
    forgetCoreCopies();
    const beside =
      /^plugin \.\/[pq]\.mjs: another copy of @mops\/core was loaded while it and other plugins were loading \(one of them brought it\)/;
    const before =
      /^plugin \.\/p\.mjs: another copy of @mops\/core is loaded in this process \(a plugin loaded before brought it\)/;
    expect(q).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringMatching(beside) },
    });
    // p's import may end before q's brings the copy (p passes), or after (a load beside it).
    if (p.status === 'rejected') expect(p.reason.message).toMatch(beside);
    expect(later).toMatchObject({ code: 'E_PLUGIN', message: expect.stringMatching(before) });
  });

  it('a plugin whose module loads another plugin as it is imported loads (no load waits for another)', async () => {
    const dir = coreCopyFixture();
    const key = Symbol.for('mops test: loadPlugin');
    (globalThis as Record<symbol, unknown>)[key] = loadPlugin;
    writeFileSync(
      join(dir, 'outer.mjs'),
      `const inner = await globalThis[Symbol.for('mops test: loadPlugin')]('./p.mjs', ${JSON.stringify(dir)});\n` +
        "export default { manifest: { name: 'outer-' + inner.manifest.name, version: '1.0.0', profiles: ['v6.3'] }, register() {} };\n",
    );
    try {
      expect((await loadPlugin('./outer.mjs', dir)).manifest.name).toBe('outer-alone');
    } finally {
      delete (globalThis as Record<symbol, unknown>)[key];
    }
  }, 5000);

  it('a package that cannot be loaded is an E_PLUGIN error naming it', async () => {
    await expect(loadPlugin('@mops/no-such-driver')).rejects.toMatchObject({
      code: 'E_PLUGIN',
      field: 'plugin',
    });
  });

  it.each([
    [null, 'export'],
    [{ register() {} }, 'manifest'],
    [{ manifest: { version: '1.0.0', profiles: ['v6.3'] }, register() {} }, 'manifest.name'],
    [
      { manifest: { name: '  ', version: '1.0.0', profiles: ['v6.3'] }, register() {} },
      'manifest.name',
    ],
    [
      { manifest: { name: ' x', version: '1.0.0', profiles: ['v6.3'] }, register() {} },
      'manifest.name',
    ],
    [
      { manifest: { name: 'x', version: '1.0.0', profiles: ['v6.3', 'v6.3'] }, register() {} },
      'manifest.profiles',
    ],
    [
      { manifest: { name: 'x', version: 'one', profiles: ['v6.3'] }, register() {} },
      'manifest.version',
    ],
    [
      { manifest: { name: 'x', version: '1.0.0', profiles: [] }, register() {} },
      'manifest.profiles',
    ],
    [
      { manifest: { name: 'x', version: '1.0.0', profiles: ['v5.10'] }, register() {} },
      'manifest.profiles',
    ],
    [
      {
        manifest: { name: 'x', version: '1.0.0', profiles: ['v6.3'], needsContents: 'yes' },
        register() {},
      },
      'manifest.needsContents',
    ],
    [{ manifest: { name: 'x', version: '1.0.0', profiles: ['v6.3'] } }, 'register'],
  ])('a bad plugin is rejected naming the field: %j', (x, field) => {
    expect(fieldOf(() => validatePlugin(x, 'test'))).toBe(field);
  });

  it.each([
    [{ migratePage: () => 0, putbackPage: () => {} }, 'isolatePage'],
    [{ isolatePage: 5, migratePage: () => 0, putbackPage: () => {} }, 'isolatePage'],
    [
      {
        isolatePage: () => true,
        migratePage: (_a: number, _b: number, _c: number, _d: number) => 0,
        putbackPage: () => {},
      },
      'migratePage',
    ],
  ])(
    'ops missing a callback or of the wrong shape are rejected at definition: %#',
    (ops, field) => {
      expect(fieldOf(() => defineMovableOps('bad', ops as never))).toBe(field);
    },
  );
});

describe('a plugin whose register fails leaves nothing behind (issue 3, bad input)', () => {
  const manifest = (name: string, profiles = ['v6.3']) => ({ name, version: '1.0.0', profiles });

  it.each([
    [
      'throws',
      (): void => {
        throw Object.create(null);
      },
    ],
    ['returns a Promise', (): Promise<void> => Promise.reject(new Error('later'))],
  ])(
    'register %s: E_PLUGIN naming the plugin and register; its checker and view are gone',
    (_, tail) => {
      const m = createMachine({ memory: '4M' });
      const p = validatePlugin(
        {
          manifest: manifest('half'),
          register(_c: unknown, machine: Machine) {
            machine.registerInvariantChecker('half', () => ['always broken']);
            registerProcView(machine, 'half/stats', () => 'x\n');
            return tail();
          },
        },
        'test',
      );
      expect(() => installPlugin(m, p)).toThrow(
        expect.objectContaining({
          code: 'E_PLUGIN',
          field: 'register',
          message: expect.stringMatching(/^plugin half: register/),
        }),
      );
      expect(installedPlugins(m)).toEqual([]);
      expect(m.invariantCheckers.has('half')).toBe(false);
      expect(procViewNames(m)).not.toContain('half/stats');
      expectInvariants(m);
      // The name is free again: a working install goes through.
      installPlugin(m, validatePlugin({ manifest: manifest('half'), register() {} }, 'test'));
      expect(installedPlugins(m).map((x) => x.manifest.name)).toEqual(['half']);
    },
  );

  it('register throwing after a trace listener and, in v6.17, set_movable_ops and published pages: the listener is gone, the ops of the published pages stay, the checker passes', () => {
    for (const profile of ['v6.3', 'v6.17'] as const) {
      const m = createMachine({ memory: '4M', profile });
      const heard: string[] = [];
      // A listener there before, which register adds again (with another `this`).
      const before = function (this: { who: string } | undefined) {
        heard.push(this?.who ?? 'before');
      };
      m.trace.on('mm_page_alloc', before);
      // A one-shot listener that register's allocation uses up: it stays used up.
      m.trace.once('mm_page_alloc', () => heard.push('once'));
      const ops = defineMovableOps('half', {
        isolatePage: () => false,
        migratePage: () => -16,
        putbackPage: () => {},
      });
      const p = validatePlugin(
        {
          manifest: manifest('half', [profile]),
          register(_c: unknown, machine: Machine) {
            machine.trace.on('mm_page_alloc', () => heard.push('alloc'));
            machine.trace.on('mm_page_alloc', before);
            machine.trace.on('mm_page_alloc', before, { who: 'plugin' });
            machine.allocPages(GFP.KERNEL, 0, 'half');
            if (profile === 'v6.17') {
              setMovableOps(machine.mem, ops, PGTY.offline);
              const pfn = machine.allocPages(GFP.HIGHUSER_MOVABLE, 0, 'half');
              setPageType(machine.mem, pfn, PGTY.offline);
              SetPageMovableOps(machine.mem, pfn);
            }
            throw new Error('probe failed');
          },
        },
        'test',
      );
      expect(() => installPlugin(m, p)).toThrow(
        /^plugin half: register threw \(Error: probe failed\)/,
      );
      heard.length = 0;
      m.allocPages(GFP.KERNEL, 0, 'other');
      expect(heard).toEqual(['before']);
      m.trace.off('mm_page_alloc', before);
      expect(m.trace.enabled.mm_page_alloc).toBe(false);
      expectInvariants(m);
    }
  });

  it('a module whose default export is the driver class: the `plugin` export is the plugin; a class alone says so', () => {
    const plugin = { manifest: manifest('cls'), register() {} };
    class Driver {}
    expect(pluginExport({ default: Driver, plugin })).toBe(plugin);
    expect(pluginExport({ default: plugin, plugin: {} })).toBe(plugin);
    expect(() => validatePlugin(Driver, 'test')).toThrow(
      expect.objectContaining({
        code: 'E_PLUGIN',
        field: 'export',
        message: expect.stringMatching(
          /got a function: export the plugin object as the module's default export or as `plugin`/,
        ),
      }),
    );
  });

  it('the same plugin twice: E_PLUGIN on manifest.name, the first stays', () => {
    const m = createMachine({ memory: '4M' });
    let calls = 0;
    const p = validatePlugin({ manifest: manifest('twice'), register: () => void calls++ }, 'test');
    installPlugin(m, p);
    expect(fieldOf(() => installPlugin(m, p))).toBe('manifest.name');
    expect(calls).toBe(1);
    expect(installedPlugins(m)).toHaveLength(1);
  });

  it('v6.17: a second driver for a page type that ignores -EBUSY is refused, naming the holder; the first keeps the type', () => {
    const m = createMachine({ memory: '4M', profile: 'v6.17' });
    const driver = (name: string) =>
      validatePlugin(
        {
          manifest: manifest(name, ['v6.17']),
          register(_c: unknown, machine: Machine) {
            const ops = defineMovableOps(name, {
              isolatePage: () => true,
              migratePage: () => -11,
              putbackPage: () => {},
            });
            setMovableOps(machine.mem, ops, PGTY.offline);
          },
        },
        'test',
      );
    installPlugin(m, driver('first'));
    expect(() => installPlugin(m, driver('second'))).toThrow(
      expect.objectContaining({
        code: 'E_PLUGIN',
        field: 'setMovableOps',
        message: expect.stringContaining('page type Offline already has the movable_ops of first'),
      }),
    );
    expect(installedPlugins(m).map((x) => x.manifest.name)).toEqual(['first']);
    expectInvariants(m);
  });

  it.each([
    ['an async function', { isolatePage: async () => true }],
    ['an async generator function', { migratePage: async function* () {} }],
    ['a class', { putbackPage: class {} }],
  ])('a callback that is %s is refused at definition', (_, bad) => {
    const ops = { isolatePage: () => true, migratePage: () => 0, putbackPage: () => {}, ...bad };
    expect(fieldOf(() => defineMovableOps('bad', ops as never))).toBe(Object.keys(bad)[0]);
  });
});

describe('callbacks that misbehave at run time: a violation, the page put back, nothing lost', () => {
  /** A page published with `ops` on a v6.3 rig, isolated and on the rig's list. */
  function isolatedWith(ops: Parameters<typeof defineMovableOps>[1]) {
    const r = rig('v6.3');
    const d = defineMovableOps('odd', ops);
    const pfn = allocPages(r.m.mem, GFP.HIGHUSER_MOVABLE, 0);
    trylockPage(r.m.mem, pfn);
    __SetPageMovable(r.m.mem, pfn, d);
    unlockPage(r.m, pfn);
    expect(isolate(r, pfn)).toBe(true);
    return { r, pfn };
  }
  const violations = (r: ReturnType<typeof rig>) =>
    r.m.mem.warnings.filter((w) => w.kind === 'protocol_violation').map((w) => w.text);

  it.each([
    [
      'throws an object with no string form',
      () => {
        throw Object.create(null);
      },
      /migrate_page threw \(\[object Object\]\)/,
    ],
    ['returns the string "0"', () => '0', /migrate_page returned "0", not 0/],
    [
      'returns a Promise',
      () => Promise.reject(new Error('later')),
      /migrate_page returned a Promise/,
    ],
    [
      'is a generator that yields a bare value',
      function* () {
        yield undefined as never;
        return 0;
      },
      /not a scheduling point/,
    ],
  ])('migrate_page %s', (_, migratePage, text) => {
    let putBack = 0;
    const { r, pfn } = isolatedWith({
      isolatePage: () => true,
      migratePage: migratePage as never,
      putbackPage: () => void putBack++,
    });
    const res = migrate(r, MIGRATE_MODE.ASYNC);
    expect(res.rc).toBe(1);
    expect(violations(r).join('\n')).toMatch(text);
    putback(r);
    expect(putBack).toBe(1);
    expect(r.m.mem.pages.flags[pfn] & (1 << PG.isolated)).toBe(0);
    expect(r.m.mem.pages.refcount[pfn]).toBe(1);
    expectInvariants(r.m);
  });

  it('putback_page returning a Promise is a violation; the putback still finishes', () => {
    const { r, pfn } = isolatedWith({
      isolatePage: () => true,
      migratePage: () => -11,
      putbackPage: (() => Promise.reject(new Error('later'))) as never,
    });
    putback(r);
    expect(violations(r).join('\n')).toMatch(/putback_page returned a Promise/);
    expect(r.m.mem.pages.flags[pfn] & (1 << PG.isolated)).toBe(0);
    expectInvariants(r.m);
  });

  it('a task yielding something that is not a scheduling point gets it thrown back at the yield', () => {
    const m = createMachine({ memory: '4M' });
    const seen: unknown[] = [];
    const t = m.sched.spawn('odd', function* () {
      try {
        yield 42 as never;
      } catch (e) {
        seen.push((e as MopsError).code);
      }
      yield { op: 'fine' };
      return 'done';
    });
    m.sched.runAll();
    expect(t.state).toBe('done');
    expect(seen).toEqual(['E_USAGE']);
  });

  it('… and so does a block point without a string wait key; the machine runs on', () => {
    const m = createMachine({ memory: '4M' });
    for (const bad of [{ op: 'block' }, { op: 'block', key: 5 }]) {
      const r = m.run(function* () {
        try {
          yield bad as never;
        } catch (e) {
          return (e as MopsError).code;
        }
        return 'not thrown';
      });
      expect(r).toBe('E_USAGE');
    }
    expect(
      m.run(function* () {
        yield { op: 'fine' };
        return 5;
      }),
    ).toBe(5);
  });
});

describe('migration tracepoints', () => {
  it('mm_migrate_pages_start and mm_migrate_pages carry the kernel fields and print in ftrace format', () => {
    const r = rig('v6.3');
    const rec = traceRecorder(r.m, { events: ['mm_migrate_pages_start', 'mm_migrate_pages'] });
    const [a, b] = r.drv.alloc(2);
    isolate(r, a);
    isolate(r, b);
    r.drv.migrateRc = (src) => (src === b ? -16 : 0); // b fails permanently (-EBUSY)
    migrate(r, MIGRATE_MODE.ASYNC);
    rec.stop();
    expect(rec.lines).toHaveLength(2);
    expect(rec.lines[0]).toMatch(/mm_migrate_pages_start: mode=MIGRATE_ASYNC reason=compaction$/);
    expect(rec.lines[1]).toMatch(
      /mm_migrate_pages: nr_succeeded=1 nr_failed=1 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_ASYNC reason=compaction$/,
    );
  });

  it('v4.8 has no mm_migrate_pages_start', () => {
    const r = rig('v4.8');
    const seen: string[] = [];
    r.m.trace.on('mm_migrate_pages_start', () => seen.push('start'));
    r.m.trace.on('mm_migrate_pages', (e) => seen.push(`end ${e.succeeded}`));
    isolate(r, r.drv.alloc(1)[0]);
    migrate(r, MIGRATE_MODE.SYNC);
    expect(seen).toEqual(['end 1']);
  });

  it('mm_page_alloc and mm_page_free fire after the change, with pfn and order', () => {
    const m = createMachine({ memory: '4M', zones: 'normal-only', minFreeKbytes: 0 });
    const seen: string[] = [];
    m.trace.on('mm_page_alloc', (e) =>
      seen.push(`alloc ${e.pfn} ${e.order} ${m.mem.pages.refcount[e.pfn]}`),
    );
    m.trace.on('mm_page_free', (e) =>
      seen.push(`free ${e.pfn} ${e.order} ${m.mem.pages.refcount[e.pfn]}`),
    );
    const pfn = m.allocPages(GFP.KERNEL, 2);
    m.freePages(pfn, 2);
    expect(seen).toEqual([`alloc ${pfn} 2 1`, `free ${pfn} 2 0`]);
  });
});

describe('moduleTarget: what a plugin or scenario spec names', () => {
  const root = mkdtempSync(join(tmpdir(), 'mops-target-'));
  const pkg = (name: string, json: object): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify(json));
    return dir;
  };
  const url = (...p: string[]) => pathToFileURL(join(root, ...p)).href;

  it('a package name resolves an ES-module-only package (exports with `import` only) from a base or a directory above it', () => {
    pkg('node_modules/esm-only', { exports: { '.': { types: './x.d.ts', import: './main.js' } } });
    pkg('node_modules/@scope/esm-only', { type: 'module', exports: { import: './s.js' } });
    pkg('node_modules/@acme/drivers', { exports: { './zs': { import: './zs.js' } } });
    pkg('node_modules/plain', { main: 'index.js' });
    pkg('node_modules/pat', { exports: { './drivers/*': { import: './dist/drivers-*.js' } } });
    pkg('node_modules/arr', {
      exports: { './ring': [{ require: './r.cjs' }, { import: './r.js' }] },
    });
    pkg('node_modules/cond', {
      exports: { '.': { node: { import: './node.js' }, import: './b.js' } },
    });
    pkg('project/sub', {});
    const below = join(root, 'project', 'sub');
    expect(moduleTarget('esm-only', [below])).toBe(url('node_modules', 'esm-only', 'main.js'));
    expect(moduleTarget('@scope/esm-only', [below])).toBe(
      url('node_modules', '@scope', 'esm-only', 's.js'),
    );
    // And a subpath: from `exports`, or the file itself in a package without `exports`.
    expect(moduleTarget('@acme/drivers/zs', [below])).toBe(
      url('node_modules', '@acme', 'drivers', 'zs.js'),
    );
    expect(moduleTarget('plain/lib/x.js', [below])).toBe(
      url('node_modules', 'plain', 'lib', 'x.js'),
    );
    expect(moduleTarget('@acme/drivers/none', [below])).toBe('@acme/drivers/none');
    // As Node reads `exports`: patterns, arrays tried in turn, conditions in their own order.
    expect(moduleTarget('pat/drivers/ring', [below])).toBe(
      url('node_modules', 'pat', 'dist', 'drivers-ring.js'),
    );
    expect(moduleTarget('arr/ring', [below])).toBe(url('node_modules', 'arr', 'r.js'));
    expect(moduleTarget('cond', [below])).toBe(url('node_modules', 'cond', 'node.js'));
    // A name installed nowhere is left to import(), which names it in its error.
    expect(moduleTarget('not-installed-anywhere', [below])).toBe('not-installed-anywhere');
  });

  it('a directory stands for its package: exports (import or default), then main, then index.js', () => {
    pkg('a', { exports: { '.': { types: './x.d.ts', import: './dist/a.js' } } });
    pkg('b', { exports: { '.': { '@mops/source': './src/b.ts', default: './dist/b.js' } } });
    pkg('c', { exports: './c.js' });
    pkg('d', { main: 'lib/d.js' });
    pkg('e', {});
    expect(moduleTarget('./a', [root])).toBe(url('a', 'dist', 'a.js'));
    expect(moduleTarget('./b', [root])).toBe(url('b', 'dist', 'b.js'));
    expect(moduleTarget('./c', [root])).toBe(url('c', 'c.js'));
    expect(moduleTarget('./d', [root])).toBe(url('d', 'lib', 'd.js'));
    expect(moduleTarget('./e', [root])).toBe(url('e', 'index.js'));
  });

  it('a path that exists needs no ./; a name that is no path is left to package resolution', () => {
    writeFileSync(join(root, 'plain.js'), 'export default 1;');
    expect(moduleTarget('plain.js', [root])).toBe(url('plain.js'));
    expect(moduleTarget('a', [root])).toBe(url('a', 'dist', 'a.js'));
    expect(moduleTarget('no-such-package-here', [root])).toBe('no-such-package-here');
    expect(moduleTarget('./missing.js', [root])).toBe(url('missing.js'));
  });
});

/**
 * A directory with two plugins, p.mjs (alone) and q.mjs (importing its own copy of
 * @mops/core, from the directory's node_modules).
 */
function coreCopyFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mops-copy-'));
  const copy = join(dir, 'node_modules', '@mops', 'core');
  mkdirSync(copy, { recursive: true });
  writeFileSync(
    join(copy, 'package.json'),
    JSON.stringify({ name: '@mops/core', type: 'module', exports: './index.js' }),
  );
  // What each copy does when it loads: add its package directory to the process's list.
  writeFileSync(
    join(copy, 'index.js'),
    "globalThis[Symbol.for('@mops/core: loaded copies')].add(new URL('.', import.meta.url).pathname.replace(/\\/$/, ''));\n",
  );
  const plugin = (name: string) =>
    `export default { manifest: { name: '${name}', version: '1.0.0', profiles: ['v6.3'] }, register() {} };\n`;
  writeFileSync(join(dir, 'p.mjs'), plugin('alone'));
  writeFileSync(join(dir, 'q.mjs'), `import '@mops/core';\n${plugin('copy')}`);
  return dir;
}

/** The process keeps a copy it loaded: take the fixtures' off the list for later tests. */
function forgetCoreCopies(): void {
  const copies = (globalThis as Record<symbol, unknown>)[
    Symbol.for('@mops/core: loaded copies')
  ] as Set<string>;
  for (const c of [...copies]) if (c.includes('mops-copy-')) copies.delete(c);
}
