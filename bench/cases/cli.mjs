// The mops command as a user runs it: `mops demo` and `mops --help`, spawned from the build.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median } from '../lib.mjs';

const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

function timeRun(args, reps) {
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`mops ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return median(times);
}

export async function run() {
  return [
    { id: 'cli_demo_ms', value: timeRun(['demo'], 3), unit: 'ms', target: 3000 },
    { id: 'cli_help_ms', value: timeRun(['--help'], 5), unit: 'ms', target: 300 },
  ];
}
