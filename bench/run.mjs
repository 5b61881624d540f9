// pnpm bench: runs every bench/cases/*.mjs against the built packages, prints a table and
// writes bench/results.json (an array of { id, value, unit }).
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const core = await import(pathToFileURL(join(here, '../packages/core/dist/index.js')).href);
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
  const mod = await import(pathToFileURL(path).href);
  const t0 = performance.now();
  const out = await mod.run(core);
  for (const r of out) rows.push({ ...r, file: f, seconds: (performance.now() - t0) / 1000 });
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
console.log(
  lines
    .map((l) =>
      l
        .split('\t')
        .map((c, i) => c.padEnd(i === 0 ? 34 : 12))
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
