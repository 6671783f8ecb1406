import { defineConfig } from 'tsup'

// One entry per public subpath. Splitting keeps shared modules (errors above all) in one chunk,
// so `instanceof KeywardenError` holds across `keywarden` and `keywarden/adapters/*`.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'adapters/memory/index': 'adapters/memory/index.ts',
    'adapters/redis/index': 'adapters/redis/index.ts',
    'adapters/sql/index': 'adapters/sql/index.ts',
    express: 'src/http/express.ts',
    koa: 'src/http/koa.ts',
    fastify: 'src/http/fastify.ts',
    hono: 'src/http/hono.ts',
    fetch: 'src/http/fetch.ts',
    // The conformance suite for store authors; nothing in the other entries imports it.
    'testing/index': 'src/testing/index.ts',
    // The `keywarden` bin (package.json `bin`); its `#!/usr/bin/env node` line comes from the source.
    cli: 'src/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  target: 'node20',
  platform: 'node',
})
