#!/usr/bin/env node
import { main } from './index.js';

// A reader that stops early (`mops scenarios | head`) closes the pipe: stop quietly.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });

process.exitCode = await main(process.argv.slice(2));
