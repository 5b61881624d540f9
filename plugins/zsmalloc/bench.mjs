/**
 * zsmalloc benchmarks: `zs_malloc_free_ns`, the median time of one zsMalloc + zsFree pair
 * on a warm pool (plain calls, a 64 MiB machine with contents, sizes cycling over the
 * classes). Build first (`pnpm exec tsc -b`).
 */
const here = new URL('.', import.meta.url);

export async function run(core) {
  const { createZsPool } = await import(new URL('./dist/index.js', here).href);
  const m = core.createMachine({ memory: '64M', profile: 'v6.3', contents: true, seed: 1 });
  const pool = createZsPool(m);
  const sizes = [48, 100, 200, 333, 700, 1000, 1500, 2500, 3000, 3600];
  // Warm: a resident population so every class has partly used zspages.
  const keep = [];
  // 401 objects per size leaves a partly used zspage in each class.
  for (let i = 0; i < 4010; i++) keep.push(pool.zsMalloc(sizes[i % sizes.length]));
  const batch = 20000;
  const runs = [];
  for (let b = 0; b < 15; b++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) pool.zsFree(pool.zsMalloc(sizes[i % sizes.length]));
    runs.push(Number(process.hrtime.bigint() - t) / batch);
  }
  runs.sort((a, b) => a - b);
  const value = Math.round(runs[runs.length >> 1]);
  for (const h of keep) pool.zsFree(h);
  return [{ id: 'zs_malloc_free_ns', value, unit: 'ns', target: 1000 }];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const core = await import('@mops/core');
  console.log(JSON.stringify(await run(core)));
}
