// ESM JavaScript consumer: the Hono middleware and management router, served by @hono/node-server.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth, keyManagementRouter } from 'keywarden/hono'

// hono's `exports` leave out its package.json.
const { version } = JSON.parse(readFileSync(new URL('./node_modules/hono/package.json', import.meta.url), 'utf8'))
const keys = new KeyManager({ store: new MemoryStore(), prefix: 'hno' })
const { key, token } = await keys.create({ name: 'hono consumer', environment: 'live', scopes: ['data:read'] })

const app = new Hono()
app.use(keyManagementRouter(keys, { basePath: '/keys', authorize: (c) => (c.req.header('x-user') === 'ana' ? { id: 'ana', tenantId: null, role: 'admin' } : null) }))
app.get('/whoami', apiKeyAuth(keys, { scopes: ['data:read'] }), (c) => c.json({ keyId: c.get('apiKey').id }))
const server = createAdaptorServer({ fetch: app.fetch })
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const base = `http://127.0.0.1:${server.address().port}`

try {
  const granted = await fetch(`${base}/whoami`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(granted.status, 200)
  assert.deepEqual(await granted.json(), { keyId: key.id })
  const anonymous = await fetch(`${base}/whoami`)
  assert.equal(anonymous.status, 401)
  assert.equal(anonymous.headers.get('content-type'), 'application/problem+json')
  assert.equal((await fetch(`${base}/keys`)).status, 401)
  const listed = await fetch(`${base}/keys`, { headers: { 'x-user': 'ana' } })
  assert.equal(listed.status, 200)
  assert.equal((await listed.json()).items.length, 1)
} finally {
  server.close()
  await keys.close()
}
console.log(`Hono ${version} (ESM, @hono/node-server): 200 with a fresh key (c.get('apiKey').id), 401 without, management router lists keys`)
