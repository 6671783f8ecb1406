// TypeScript consumer of the Fastify, Hono and Fetch adapters (ESM side): the typed request in each.
import Fastify from 'fastify'
import { Hono } from 'hono'
import { KeyManager, type ApiKey } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth as fastifyAuth, apiKeyPlugin } from 'keywarden/fastify'
import { apiKeyAuth as honoAuth, type ApiKeyEnv } from 'keywarden/hono'
import { withApiKey } from 'keywarden/fetch'

const keys = new KeyManager({ store: new MemoryStore(), prefix: 'acme' })

const fastify = Fastify()
fastify.get('/whoami', { onRequest: fastifyAuth(keys, { scopes: ['data:read'] }) }, async (request) => {
  const key: ApiKey = request.apiKey
  // @ts-expect-error request.apiKey must stay an ApiKey, not any: an unknown field is an error
  void request.apiKey.nonexistentField
  return { id: request.apiKey.id, owner: key.ownerId }
})
await fastify.register(async (api) => {
  await api.register(apiKeyPlugin(keys, { cost: (request) => (request.method === 'POST' ? 2 : 1) }))
  api.get('/reports', async (request) => ({ scopes: request.apiKeyScopes }))
})

const hono = new Hono()
hono.get('/whoami', honoAuth(keys, { scopes: ['data:read'] }), (c) => {
  const key: ApiKey = c.get('apiKey')
  // @ts-expect-error c.get('apiKey') must stay an ApiKey, not any: an unknown field is an error
  void c.get('apiKey').nonexistentField
  return c.json({ id: c.get('apiKey').id, owner: key.ownerId })
})
const api = new Hono<ApiKeyEnv>()
api.use(honoAuth(keys))
api.get('/me', (c) => c.json({ id: c.get('apiKey').id, scopes: c.get('apiKeyScopes') }))

export const GET = withApiKey(keys, { scopes: ['data:read'] }, (request, { key, scopes }) => {
  // @ts-expect-error the auth's key must stay an ApiKey, not any
  void key.nonexistentField
  return Response.json({ id: key.id, scopes, url: request.url })
})
