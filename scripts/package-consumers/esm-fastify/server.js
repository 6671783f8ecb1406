// ESM JavaScript consumer: the Fastify plugin (encapsulated), the per-route guard and the management
// router, over real HTTP. Run against Fastify 5 and, with another dependency range, Fastify 4.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth, apiKeyPlugin, keyManagementRouter } from 'keywarden/fastify'

const { version } = createRequire(import.meta.url)('fastify/package.json')
const keys = new KeyManager({ store: new MemoryStore(), prefix: 'fst' })
const { key, token } = await keys.create({ name: 'fastify consumer', environment: 'live', scopes: ['data:read'] })

const app = Fastify()
app.get('/health', async () => ({ ok: true }))
await app.register(async (api) => {
  await api.register(apiKeyPlugin(keys, { scopes: ['data:read'] }))
  api.get('/whoami', async (request) => ({ keyId: request.apiKey.id }))
}, { prefix: '/api' })
app.post('/write', { preHandler: apiKeyAuth(keys, { scopes: ['data:write'] }) }, async () => ({ written: true }))
await app.register(keyManagementRouter(keys, { authorize: (request) => (request.headers['x-user'] === 'ana' ? { id: 'ana', tenantId: null, role: 'admin' } : null) }), { prefix: '/keys' })
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${app.server.address().port}`

try {
  const granted = await fetch(`${base}/api/whoami`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(granted.status, 200)
  assert.deepEqual(await granted.json(), { keyId: key.id })
  const anonymous = await fetch(`${base}/api/whoami`)
  assert.equal(anonymous.status, 401)
  assert.equal(anonymous.headers.get('content-type'), 'application/problem+json')
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/)
  // The plugin guards its own scope only.
  assert.equal((await fetch(`${base}/health`)).status, 200)
  assert.equal((await fetch(`${base}/write`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, 403)
  assert.equal((await fetch(`${base}/keys`)).status, 401)
  const listed = await fetch(`${base}/keys`, { headers: { 'x-user': 'ana' } })
  assert.equal(listed.status, 200)
  assert.equal((await listed.json()).items.length, 1)
} finally {
  await app.close()
  await keys.close()
}
console.log(`Fastify ${version} (ESM): plugin scope 200 with a key, 401 without, public route open, preHandler 403 without the scope, management router lists keys`)
