import Fastify from 'fastify'
import { Hono } from 'hono'
import { describe, expectTypeOf, it } from 'vitest'
import { KeyManager, type ApiKey } from '../../src/index.js'
import { apiKeyAuth as fastifyAuth, apiKeyPlugin } from '../../src/http/fastify.js'
import { apiKeyAuth as honoAuth, type ApiKeyEnv, type ApiKeyVariables } from '../../src/http/hono.js'
import { withApiKey } from '../../src/http/fetch.js'
import { MemoryStore } from '../../adapters/memory/index.js'

const keys = new KeyManager({ store: new MemoryStore() })

describe('adapter typings', () => {
  it('types request.apiKey in Fastify routes guarded per route or by the plugin', async () => {
    const app = Fastify()
    app.get('/reports', { onRequest: fastifyAuth(keys, { scopes: ['data:read'] }) }, async (request) => {
      expectTypeOf(request.apiKey).toEqualTypeOf<ApiKey>()
      expectTypeOf(request.apiKeyScopes).toEqualTypeOf<readonly string[]>()
      return { id: request.apiKey.id }
    })
    // A route with its own generics still takes the guard in preHandler.
    app.get<{ Params: { id: string } }>('/reports/:id', { preHandler: fastifyAuth(keys) }, async (request) => ({ id: request.params.id, key: request.apiKey.id }))
    await app.register(apiKeyPlugin(keys, { cost: (request) => (request.method === 'POST' ? 2 : 1) }))
  })

  it('types c.get("apiKey") in Hono from the middleware, or from ApiKeyEnv on the app', () => {
    const app = new Hono()
    app.get('/reports', honoAuth(keys), (c) => {
      expectTypeOf(c.get('apiKey')).toEqualTypeOf<ApiKey>()
      expectTypeOf(c.get('apiKeyScopes')).toEqualTypeOf<readonly string[]>()
      return c.json({ id: c.get('apiKey').id })
    })
    const api = new Hono<{ Variables: ApiKeyVariables & { user: string } }>()
    api.use(honoAuth(keys, { cost: (c) => (c.req.path === '/bulk' ? 5 : 1) }))
    api.get('/me', (c) => c.text(`${c.get('user')} ${c.get('apiKey').ownerId}`))
    expectTypeOf(new Hono<ApiKeyEnv>()).toMatchTypeOf<Hono<ApiKeyEnv>>()
  })

  it('types the Fetch handler’s auth and keeps the runtime’s extra arguments', () => {
    const guarded = withApiKey(keys, {}, (request, auth, env: { BUCKET: string }) => {
      expectTypeOf(request).toEqualTypeOf<Request>()
      expectTypeOf(auth.key).toEqualTypeOf<ApiKey>()
      return new Response(env.BUCKET)
    })
    expectTypeOf(guarded).toEqualTypeOf<(request: Request, env: { BUCKET: string }) => Promise<Response>>()
    expectTypeOf(withApiKey(keys, {}, () => new Response())).toEqualTypeOf<(request: Request) => Promise<Response>>()
  })
})
