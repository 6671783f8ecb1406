import { beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

const scenario = `
  const keys = new KeyManager({ store: new MemoryStore(), prefix: 'pkg' })
  const { key, token } = await keys.create({ name: 'from the package', environment: 'live' })
  const result = await keys.verify(token)
  const error = await keys.create({ name: '' }).catch((e) => e)
  console.log(JSON.stringify({ valid: result.valid, id: result.valid && result.key.id === key.id, typed: error instanceof KeywardenError && error.code }))
`

describe('the built package', () => {
  beforeAll(() => {
    // .ci/run builds before testing; a plain local `npm test` builds once if dist/ is missing.
    if (!existsSync(`${root}/dist/index.js`)) execFileSync('npx', ['tsup', '--silent'], { cwd: root, stdio: 'inherit' })
  }, 120_000)

  it('works for ESM consumers through the exports map', () => {
    const output = node([
      '--input-type=module',
      '-e',
      `import { KeyManager, KeywardenError } from 'keywarden'; import { MemoryStore } from 'keywarden/adapters/memory'; ${scenario}`,
    ])
    expect(JSON.parse(output)).toEqual({ valid: true, id: true, typed: 'validation_failed' })
  })

  it('works for CommonJS consumers through the exports map', () => {
    const output = node([
      '--input-type=commonjs',
      '-e',
      `const { KeyManager, KeywardenError } = require('keywarden'); const { MemoryStore } = require('keywarden/adapters/memory'); (async () => { ${scenario} })()`,
    ])
    expect(JSON.parse(output)).toEqual({ valid: true, id: true, typed: 'validation_failed' })
  })

  it.each(['node16', 'bundler'])('type-checks a TypeScript consumer with moduleResolution %s', (resolution) => {
    // Throws (failing the test) with tsc's diagnostics if the built types do not serve the consumer.
    node([`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/test/package/consumer/tsconfig.${resolution}.json`])
  }, 60_000)

  // The files moved to adapters/sql/<db>/migration.sql in 0.2.0; the published names must keep resolving.
  it('resolves the SQL migrations under their published names, in both module systems', () => {
    for (const database of ['postgres', 'mysql', 'sqlite']) {
      const expected = `${root}adapters/sql/${database}/migration.sql`
      expect(node(['-p', `require.resolve('keywarden/adapters/sql/migrations/${database}.sql')`]).trim()).toBe(expected)
      expect(node(['--input-type=module', '-e', `console.log(import.meta.resolve('keywarden/adapters/sql/migrations/${database}.sql'))`]).trim()).toBe(`file://${expected}`)
    }
  })

  it('loads the middleware subpaths in both module systems', () => {
    const esm = node([
      '--input-type=module',
      '-e',
      "import * as e from 'keywarden/express'; import * as k from 'keywarden/koa'; import * as f from 'keywarden/fastify'; import * as h from 'keywarden/hono'; import * as w from 'keywarden/fetch'; console.log(typeof e.apiKeyAuth, typeof k.apiKeyAuth, typeof f.apiKeyAuth, typeof h.apiKeyAuth, typeof w.withApiKey)",
    ])
    const cjs = node([
      '--input-type=commonjs',
      '-e',
      "console.log(typeof require('keywarden/express').apiKeyAuth, typeof require('keywarden/koa').apiKeyAuth, typeof require('keywarden/fastify').apiKeyAuth, typeof require('keywarden/hono').apiKeyAuth, typeof require('keywarden/fetch').withApiKey)",
    ])
    expect(esm.trim()).toBe('function function function function function')
    expect(cjs.trim()).toBe('function function function function function')
  })

  it('declares types for both module systems and only the three runtime dependencies', () => {
    const manifest = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'))
    for (const entry of Object.values(manifest.exports) as Record<string, { types: string; default: string }>[]) {
      if (typeof entry === 'string') continue
      for (const condition of [entry.import!, entry.require!]) {
        expect(existsSync(`${root}/${condition.types}`), condition.types).toBe(true)
        expect(existsSync(`${root}/${condition.default}`), condition.default).toBe(true)
      }
    }
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['@noble/hashes', 'nanoid', 'zod'])
    for (const peer of Object.keys(manifest.peerDependencies)) expect(manifest.peerDependenciesMeta[peer], peer).toEqual({ optional: true })
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['better-sqlite3', 'express', 'fastify', 'hono', 'ioredis', 'koa', 'mysql2', 'pg', 'redis'])
  })
})
