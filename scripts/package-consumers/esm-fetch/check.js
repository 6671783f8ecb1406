// ESM JavaScript consumer of keywarden/fetch with no framework at all: handlers are called with
// `Request` objects as Next.js, Bun, Deno and Workers call them; the CommonJS entry loads too.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { createManagementHandler, withApiKey } from 'keywarden/fetch'

const require = createRequire(import.meta.url)
assert.equal(typeof require('keywarden/fetch').withApiKey, 'function')
for (const framework of ['express', 'koa', 'fastify', 'hono']) assert.throws(() => require.resolve(framework), `${framework} should not be installed`)

const keys = new KeyManager({ store: new MemoryStore(), prefix: 'ftc' })
const { key, token } = await keys.create({ name: 'fetch consumer', environment: 'live', scopes: ['data:read'] })
// A Worker-style handler: env comes after the request and reaches the guarded handler after the auth.
const GET = withApiKey(keys, { scopes: ['data:read'] }, (request, { key: verified }, env) => Response.json({ keyId: verified.id, bucket: env.BUCKET }))
const call = (headers) => GET(new Request('https://api.example.com/whoami', { headers }), { BUCKET: 'reports' })

const granted = await call({ authorization: `Bearer ${token}` })
assert.equal(granted.status, 200)
assert.deepEqual(await granted.json(), { keyId: key.id, bucket: 'reports' })
const anonymous = await call({})
assert.equal(anonymous.status, 401)
assert.equal(anonymous.headers.get('content-type'), 'application/problem+json')
const management = createManagementHandler(keys, { basePath: '/keys', authorize: () => null })
assert.equal((await management(new Request('https://app.example.com/keys'))).status, 401)
await keys.close()
console.log(`Fetch (ESM, no framework): 200 with a fresh key (auth.key.id ${key.id}, env passed on), 401 without; CommonJS loads`)
