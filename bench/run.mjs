// pnpm bench: runs every bench/cases/*.mjs against the built packages, prints a table and
// writes bench/results.json (an array of { id, value, unit }).
//
// Each case file runs in a process of its own, so that what V8 compiled for one case (for
// another driver, another workload) does not shape the figures of the next.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ROWS = 'MOPS_BENCH_ROWS ';

if (process.env.MOPS_BENCH_CASE) {
  // A child: run one case file, report its rows on one line.
  const core = await import(pathToFileURL(join(here, '../packages/core/dist/index.js')).href);
  const mod = await import(pathToFileURL(process.env.MOPS_BENCH_CASE).href);
  const t0 = performance.now();
  const out = await mod.run(core);
  const seconds = (performance.now() - t0) / 1000;
  console.log(ROWS + JSON.stringify(out.map((r) => ({ ...r, seconds }))));
  process.exit(0);
}

const only = process.argv.slice(2);
// Cases: bench/cases/*.mjs, then each plugin's bench.mjs.
const cases = readdirSync(join(here, 'cases'))
  .filter((f) => f.endsWith('.mjs'))
  .sort()
  .map((f) => ({ f, path: join(here, 'cases', f) }));
for (const top of ['packages', 'plugins'])
  for (const dir of readdirSync(join(here, '..', top)).sort()) {
    const path = join(here, '..', top, dir, 'bench.mjs');
    if (existsSync(path)) cases.push({ f: `${dir}/bench.mjs`, path });
  }
const files = cases.filter(({ f }) => only.length === 0 || only.some((o) => f.includes(o)));

const rows = [];
for (const { f, path } of files) {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, MOPS_BENCH_CASE: path },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  const lines = (child.stdout ?? '').split('\n');
  for (const l of lines) if (l && !l.startsWith(ROWS)) console.log(l);
  const line = lines.find((l) => l.startsWith(ROWS));
  if (child.status !== 0 || !line) {
    console.error(`bench case ${f} failed (exit ${child.status ?? child.signal})`);
    process.exit(1);
  }
  for (const r of JSON.parse(line.slice(ROWS.length))) rows.push({ ...r, file: f });
}

const fmt = (v) => (Number.isInteger(v) ? String(v) : v.toPrecision(4));
const lines = [['id', 'value', 'unit', 'target', 'ok'].join('\t')];
for (const r of rows) {
  const ok =
    r.target === undefined
      ? ''
      : (r.higherIsBetter ? r.value >= r.target : r.value <= r.target)
        ? 'yes'
        : 'NO';
  const target = r.target === undefined ? '' : `${r.higherIsBetter ? '>=' : '<='} ${r.target}`;
  lines.push([r.id, fmt(r.value), r.unit, target, ok].join('\t'));
}
console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
const idWidth = Math.max(...rows.map((r) => r.id.length)) + 2;
console.log(
  lines
    .map((l) =>
      l
        .split('\t')
        .map((c, i) => c.padEnd(i === 0 ? idWidth : 12))
        .join(''),
    )
    .join('\n'),
);
writeFileSync(
  join(here, 'results.json'),
  `${JSON.stringify(
    rows.map(({ id, value, unit }) => ({ id, value, unit })),
    null,
    2,
  )}\n`,
);
