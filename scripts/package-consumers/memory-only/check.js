// A project that installs keywarden alone: no optional peer may come along, and the memory store,
// every middleware subpath and both driver-backed store subpaths must still load and work.
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { RedisStore } from 'keywarden/adapters/redis'
import { SqliteStore } from 'keywarden/adapters/sql'
import { apiKeyAuth as expressAuth } from 'keywarden/express'
import { apiKeyAuth as koaAuth } from 'keywarden/koa'
import { apiKeyAuth as fastifyAuth } from 'keywarden/fastify'
import { apiKeyAuth as honoAuth } from 'keywarden/hono'
import { withApiKey } from 'keywarden/fetch'

const peers = ['ioredis', 'redis', 'pg', 'mysql2', 'better-sqlite3', 'express', 'koa', 'fastify', 'hono']
const installed = readdirSync('node_modules').flatMap((name) =>
  name.startsWith('@') ? readdirSync(`node_modules/${name}`).map((scoped) => `${name}/${scoped}`) : name.startsWith('.') ? [] : [name],
)
const leaked = peers.filter((peer) => installed.includes(peer))
assert.deepEqual(leaked, [], `optional peers installed with keywarden alone: ${leaked.join(', ')}`)

for (const value of [RedisStore, SqliteStore, expressAuth, koaAuth, fastifyAuth, honoAuth, withApiKey]) assert.equal(typeof value, 'function')
// The migrations ship as files behind their own export.
const require = createRequire(import.meta.url)
for (const dialect of ['postgres', 'mysql', 'sqlite']) require.resolve(`keywarden/adapters/sql/migrations/${dialect}.sql`)

const keys = new KeyManager({ store: new MemoryStore(), prefix: 'solo' })
const { key, token } = await keys.create({ name: 'memory only', environment: 'live', scopes: ['data:read'] })
const granted = await keys.verify(token, { scopes: ['data:read'] })
assert.ok(granted.valid && granted.key.id === key.id)
await keys.revoke(key.id)
const revoked = await keys.verify(token)
assert.ok(!revoked.valid && revoked.reason === 'revoked')
await keys.close()

console.log(`memory only: node_modules holds ${installed.join(', ')}; no optional peer; create, verify, revoke work`)
