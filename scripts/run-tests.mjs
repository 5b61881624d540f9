// Runs the vitest suite with the default reporter plus a JSON report in .vitest-results.json
// (read by .ci/run for its closing "N passed, N failed" line). Exits with vitest's code.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const vitest = require.resolve('vitest/vitest.mjs');
const r = spawnSync(
  process.execPath,
  [
    vitest,
    'run',
    '--reporter=default',
    '--reporter=json',
    '--outputFile.json=.vitest-results.json',
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
