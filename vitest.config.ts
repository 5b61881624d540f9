import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Legacy decorators + metadata for files outside a package tsconfig's "include" (test/).
  oxc: {
    decorator: { legacy: true, emitDecoratorMetadata: true },
  },
  // Resolve workspace packages to their TypeScript sources, so tests need no build.
  ssr: {
    resolve: { conditions: ['@mops/source', 'module', 'node', 'development|production'] },
  },
  test: {
    setupFiles: ['reflect-metadata'],
    include: ['{packages,plugins,examples}/*/test/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
