// ESM JavaScript consumer: the core, the memory store and the Express middleware, over real HTTP.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import express from 'express'
import { KeyManager, KeywardenError } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth } from 'keywarden/express'
// The Redis and SQL stores must load although this project has none of their drivers (optional peers).
import { RedisStore } from 'keywarden/adapters/redis'
import { MySqlStore, PostgresStore, SqliteStore } from 'keywarden/adapters/sql'

const require = createRequire(import.meta.url)
for (const driver of ['ioredis', 'redis', 'pg', 'mysql2', 'better-sqlite3']) {
  assert.throws(() => require.resolve(driver), `${driver} should not be installed in this consumer`)
}
for (const Store of [RedisStore, PostgresStore, MySqlStore, SqliteStore]) assert.equal(typeof Store, 'function')

const keys = new KeyManager({ store: new MemoryStore(), prefix: 'esm' })
const { key, token } = await keys.create({ name: 'esm consumer', environment: 'live' })
// Errors thrown by the core are the package's one KeywardenError class.
assert.ok((await keys.create({ name: '' }).catch((error) => error)) instanceof KeywardenError)

const app = express()
app.get('/whoami', apiKeyAuth(keys), (req, res) => void res.json({ keyId: req.apiKey.id }))
const server = app.listen(0, '127.0.0.1')
await once(server, 'listening')
const url = `http://127.0.0.1:${server.address().port}/whoami`

try {
  const granted = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(granted.status, 200)
  assert.deepEqual(await granted.json(), { keyId: key.id })

  const anonymous = await fetch(url)
  assert.equal(anonymous.status, 401)
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/)
} finally {
  server.close()
  await keys.close()
}
console.log(`Express (ESM): 200 with a fresh key (handler saw req.apiKey.id ${key.id}), 401 without`)
