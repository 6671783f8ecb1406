/**
 * What the shared HTTP suite cannot say about the Fastify, Hono and Fetch adapters: each hands its own
 * request object (unwrapped) to `cost`, `scopes` and `check`, and each fits its framework's
 * conventions: Fastify's encapsulation and hooks, Hono's middleware and response headers, the Fetch
 * handler's extra arguments and immutable responses. Real sockets, except where a Fetch handler is
 * called as its runtime calls it.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { Hono, type Context } from 'hono'
import { cors } from 'hono/cors'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import type { LimitsOptions } from '../../src/index.js'
import { apiKeyAuth as fastifyAuth, apiKeyPlugin } from '../../src/http/fastify.js'
import { apiKeyAuth as honoAuth, type ApiKeyEnv } from '../../src/http/hono.js'
import { withApiKey } from '../../src/http/fetch.js'
import { setup } from '../helpers.js'
import { serveFetch } from '../support/fetch-server.js'

const LIMITS: LimitsOptions = { policies: { free: { rate: [{ name: 'burst', limit: 5, window: '1s' }] } }, defaultPolicy: 'free' }

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

async function keysWithToken(overrides: Parameters<typeof setup>[0] = {}) {
  const context = setup(overrides)
  const { key, token } = await context.keys.create({ name: 'reader', environment: 'live', roles: ['readonly'], tenantId: 'acme' })
  return { ...context, key, token, auth: { authorization: `Bearer ${token}` } }
}

async function listenFastify(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  closers.push(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function listenFetch(fetch: (request: Request) => Response | Promise<Response>): Promise<string> {
  const server: Server = serveFetch(fetch)
  await once(server, 'listening')
  closers.push(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('keywarden/fastify', () => {
  it('apiKeyPlugin guards the scope that registers it (and its children, and its earlier routes), never its parent or siblings', async () => {
    const { keys, key, auth } = await keysWithToken()
    let registered = false
    const app = Fastify()
    app.get('/public', async (request) => ({ decorated: 'apiKey' in request }))
    await app.register(
      async (api) => {
        api.get('/early', async (request) => ({ id: request.apiKey.id }))
        await api.register(apiKeyPlugin(keys, { scopes: ['data:read'] }))
        registered = api.hasPlugin('keywarden')
        api.get('/x', async (request) => ({ id: request.apiKey.id, scopes: request.apiKeyScopes }))
        await api.register(async (child) => {
          // A second guard below the first: both run (and the decorators are declared once).
          await child.register(apiKeyPlugin(keys, { scopes: ['data:read'] }))
          child.get('/y', async (request) => ({ id: request.apiKey.id }))
        }, { prefix: '/child' })
      },
      { prefix: '/a' },
    )
    await app.register(async (sibling) => {
      sibling.get('/x', async () => ({ open: true }))
    }, { prefix: '/b' })
    const base = await listenFastify(app)

    expect(registered).toBe(true)
    for (const path of ['/a/early', '/a/x', '/a/child/y']) expect((await fetch(base + path)).status, path).toBe(401)
    expect(await (await fetch(`${base}/b/x`)).json()).toEqual({ open: true })
    // The root scope is not decorated: the plugin's declarations stay in the scope that registered it.
    expect(await (await fetch(`${base}/public`)).json()).toEqual({ decorated: false })
    expect(await (await fetch(`${base}/a/x`, { headers: auth })).json()).toEqual({ id: key.id, scopes: ['data:read'] })
    expect(await (await fetch(`${base}/a/early`, { headers: auth })).json()).toEqual({ id: key.id })
    expect(await (await fetch(`${base}/a/child/y`, { headers: auth })).json()).toEqual({ id: key.id })
  })

  it('hands cost, scopes and check the FastifyRequest; in preHandler the body is parsed, in onRequest it is not read at all', async () => {
    const { keys, key, auth } = await keysWithToken({ limits: LIMITS })
    const seen: unknown[] = []
    const app = Fastify()
    const weighed = fastifyAuth(keys, {
      cost: (request: FastifyRequest) => (Array.isArray(request.body) ? request.body.length : 1),
      scopes: (request: FastifyRequest) => (request.method === 'POST' ? ['data:read'] : ['data:write']),
      check: (apiKey, request: FastifyRequest) => {
        seen.push(request.routeOptions.url, (request.params as { tenant: string }).tenant === apiKey.tenantId)
        return true
      },
    })
    app.post('/tenants/:tenant/imports', { preHandler: weighed }, async (request) => ({ id: request.apiKey.id }))
    app.post('/early', { onRequest: fastifyAuth(keys) }, async () => ({ reached: true }))
    const base = await listenFastify(app)

    const imported = await fetch(`${base}/tenants/acme/imports`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '[1,2,3]' })
    expect(imported.status).toBe(200)
    // Three records cost three of the five.
    expect(imported.headers.get('ratelimit')).toBe('"burst";r=2;t=1')
    expect(await imported.json()).toEqual({ id: key.id })
    expect(seen).toEqual(['/tenants/:tenant/imports', true])
    // Refused in onRequest: a body Fastify could not parse is never read, so the answer is the guard's 401.
    const refused = await fetch(`${base}/early`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('content-type')).toBe('application/problem+json')
  })
})

describe('keywarden/hono', () => {
  it('hands cost, scopes and check the context, which sees what earlier middleware set', async () => {
    const { keys, key, auth } = await keysWithToken({ limits: LIMITS })
    const app = new Hono<{ Variables: { plan: string } }>()
    app.use(async (c, next) => {
      c.set('plan', 'bulk')
      await next()
    })
    app.get(
      '/tenants/:tenant/search',
      honoAuth(keys, {
        cost: (c: Context) => (c.get('plan') === 'bulk' && c.req.path.endsWith('/search') ? 2 : 1),
        scopes: (c: Context) => (c.req.method === 'GET' ? ['data:read'] : ['data:write']),
        check: (apiKey, c: Context) => c.req.param('tenant') === apiKey.tenantId,
      }),
      (c) => c.json({ id: c.get('apiKey').id, plan: c.get('plan') }),
    )
    const base = await listenFetch(app.fetch)
    const response = await fetch(`${base}/tenants/acme/search`, { headers: auth })
    expect(await response.json()).toEqual({ id: key.id, plan: 'bulk' })
    expect(response.headers.get('ratelimit')).toBe('"burst";r=3;t=1')
    expect((await fetch(`${base}/tenants/globex/search`, { headers: auth })).status).toBe(403)
  })

  it('puts the RateLimit fields on every kind of route response, and earlier middleware headers on its rejections', async () => {
    const { keys, auth } = await keysWithToken({ limits: LIMITS })
    const api = new Hono<ApiKeyEnv>()
    api.use('*', cors({ origin: 'https://app.example.com' }))
    api.use('/api/*', honoAuth(keys))
    api.get('/api/json', (c) => c.json({ owner: c.get('apiKey').ownerId }))
    api.get('/api/raw', () => new Response('raw', { headers: { 'x-route': 'own' } }))
    api.get('/api/fetched', () => Response.redirect('https://example.com/', 302))
    const base = await listenFetch(api.fetch)
    for (const path of ['/api/json', '/api/raw', '/api/fetched']) {
      const response = await fetch(base + path, { headers: auth, redirect: 'manual' })
      expect(response.headers.get('ratelimit'), path).toMatch(/^"burst";r=\d;t=1$/)
      expect(response.headers.get('ratelimit-policy'), path).toBe('"burst";q=5;w=1')
    }
    expect((await fetch(`${base}/api/raw`, { headers: auth })).headers.get('x-route')).toBe('own')
    const refused = await fetch(`${base}/api/json`, { headers: { origin: 'https://app.example.com' } })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(refused.headers.get('content-type')).toBe('application/problem+json')
  })
})

describe('keywarden/fetch', () => {
  it('hands the handler what the runtime passes after the request, and cost, scopes and check the Request itself', async () => {
    const { keys, key, token } = await keysWithToken()
    const requests: unknown[] = []
    const env = { BUCKET: 'reports' }
    const handler = withApiKey(
      keys,
      {
        cost: (request: Request) => (requests.push(request), 1),
        scopes: (request: Request) => (new URL(request.url).pathname.startsWith('/reports') ? ['data:read'] : ['data:write']),
        check: (_key, request: Request) => request.headers.get('x-tenant') === 'acme',
      },
      (_request, { key: verified, scopes }, workerEnv: typeof env, ctx: { waitUntil(promise: Promise<unknown>): void }) => {
        ctx.waitUntil(Promise.resolve())
        return Response.json({ id: verified.id, scopes, bucket: workerEnv.BUCKET })
      },
    )
    const waited: unknown[] = []
    const request = new Request('https://api.example.com/reports', { headers: { authorization: `Bearer ${token}`, 'x-tenant': 'acme' } })
    const response = await handler(request, env, { waitUntil: (promise) => void waited.push(promise) })
    expect(await response.json()).toEqual({ id: key.id, scopes: ['data:read'], bucket: 'reports' })
    expect(requests).toEqual([request])
    expect(requests[0]).toBe(request)
    expect(waited).toHaveLength(1)
    const otherTenant = await handler(new Request('https://api.example.com/reports', { headers: { authorization: `Bearer ${token}` } }), env, { waitUntil: () => undefined })
    expect(otherTenant.status).toBe(403)
  })

  it('adds the RateLimit fields to the handler’s response, copying one whose headers are immutable', async () => {
    const { keys, token } = await keysWithToken({ limits: LIMITS })
    const own = new Response('mine')
    const mutable = withApiKey(keys, {}, () => own)
    const immutable = withApiKey(keys, {}, () => Response.redirect('https://example.com/next', 307))
    const request = () => new Request('https://api.example.com/', { headers: { authorization: `Bearer ${token}` } })
    const kept = await mutable(request())
    expect(kept).toBe(own)
    expect(kept.headers.get('ratelimit')).toBe('"burst";r=4;t=1')
    const copied = await immutable(request())
    expect(copied.status).toBe(307)
    expect(copied.headers.get('location')).toBe('https://example.com/next')
    expect(copied.headers.get('ratelimit')).toBe('"burst";r=3;t=1')
  })

  it('lets what the handler throws propagate, and answers rejections without calling it', async () => {
    const { keys, token } = await keysWithToken()
    let calls = 0
    const handler = withApiKey(keys, {}, () => {
      calls++
      throw new Error('host bug')
    })
    const base = await listenFetch(async (request) => handler(request).catch(() => new Response('host error handler', { status: 500 })))
    expect((await fetch(base)).status).toBe(401)
    expect(calls).toBe(0)
    const failed = await fetch(base, { headers: { authorization: `Bearer ${token}` } })
    expect(failed.status).toBe(500)
    expect(await failed.text()).toBe('host error handler')
    expect(calls).toBe(1)
  })
})
