// CommonJS JavaScript consumer: the core, the memory store and the Koa middleware, over real HTTP.
const assert = require('node:assert/strict')
const { once } = require('node:events')
const Koa = require('koa')
const { KeyManager, KeywardenError } = require('keywarden')
const { MemoryStore } = require('keywarden/adapters/memory')
const { apiKeyAuth } = require('keywarden/koa')
// The Redis and SQL stores must load although this project has none of their drivers (optional peers).
const { RedisStore } = require('keywarden/adapters/redis')
const { MySqlStore, PostgresStore, SqliteStore } = require('keywarden/adapters/sql')

async function main() {
  for (const driver of ['ioredis', 'redis', 'pg', 'mysql2', 'better-sqlite3']) {
    assert.throws(() => require.resolve(driver), `${driver} should not be installed in this consumer`)
  }
  for (const Store of [RedisStore, PostgresStore, MySqlStore, SqliteStore]) assert.equal(typeof Store, 'function')

  const keys = new KeyManager({ store: new MemoryStore(), prefix: 'cjs' })
  const { key, token } = await keys.create({ name: 'cjs consumer', environment: 'live' })
  // Errors thrown by the core are the package's one KeywardenError class.
  assert.ok((await keys.create({ name: '' }).catch((error) => error)) instanceof KeywardenError)

  const app = new Koa()
  app.use(apiKeyAuth(keys))
  app.use((ctx) => {
    ctx.body = { keyId: ctx.state.apiKey.id }
  })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${server.address().port}/whoami`

  try {
    const granted = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(granted.status, 200)
    assert.deepEqual(await granted.json(), { keyId: key.id })

    const anonymous = await fetch(url)
    assert.equal(anonymous.status, 401)
    assert.match(anonymous.headers.get('www-authenticate') || '', /^Bearer/)
  } finally {
    server.close()
    await keys.close()
  }
  console.log(`Koa (CommonJS): 200 with a fresh key (handler saw ctx.state.apiKey.id ${key.id}), 401 without`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
