import { afterEach, describe, expect, it } from 'vitest'
import type { Rejection } from '../../src/index.js'
import { setup } from '../helpers.js'
import { FRAMEWORKS, GUARD_FACTORIES, startRoutes, type GuardedRoute, type TestServer } from './servers.js'

describe.each(FRAMEWORKS)('route requirements (%s)', (framework) => {
  let server: TestServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  async function start(routes: GuardedRoute[]) {
    const { keys } = setup({ roles: { reader: ['data:read'], writer: ['data:write'] }, groups: {} })
    server = await startRoutes(framework, keys, routes)
    return { keys, url: (path: string) => `http://127.0.0.1:${server!.port}${path}` }
  }

  const call = (url: string, headers: Record<string, string>, method = 'GET') => fetch(url, { method, headers })
  const basic = (text: string) => `Basic ${Buffer.from(text, 'utf8').toString('base64')}`

  it('hands the handler the effective scopes, role-derived ones included', async () => {
    const { keys, url } = await start([{ method: 'GET', path: '/read', options: { scopes: ['data:read'] } }])
    const { token } = await keys.create({ name: 'r', environment: 'live', scopes: ['own'], roles: ['reader'] })
    const response = await call(url('/read'), { authorization: `Bearer ${token}` })
    expect(response.status).toBe(200)
    expect(((await response.json()) as { scopes: string[] }).scopes).toEqual(['own', 'data:read'])
  })

  it('types: a key of another type (or none) is refused with 403 wrong_key_type', async () => {
    const rejections: Rejection[] = []
    const { keys, url } = await start([{ method: 'POST', path: '/ingest', options: { types: ['ingestion'], onReject: (r) => void rejections.push(r) } }])
    const ingest = await keys.create({ name: 'i', environment: 'live', type: 'ingestion' })
    const access = await keys.create({ name: 'a', environment: 'live', type: 'access' })
    const untyped = await keys.create({ name: 'u', environment: 'live' })
    expect((await call(url('/ingest'), { authorization: `Bearer ${ingest.token}` }, 'POST')).status).toBe(200)
    for (const { token } of [access, untyped]) {
      const response = await call(url('/ingest'), { authorization: `Bearer ${token}` }, 'POST')
      expect(response.status).toBe(403)
      expect(await response.json()).toMatchObject({ status: 403, code: 'wrong_key_type' })
    }
    expect(rejections.map((r) => r.reason)).toEqual(['wrong_key_type', 'wrong_key_type'])
  })

  it('scopes as a function of the request: the scopes it returns are required, per request', async () => {
    const options = { scopes: (request: { method: string }) => (request.method === 'POST' ? ['data:write'] : ['data:read']) }
    const { keys, url } = await start([
      { method: 'GET', path: '/data', options },
      { method: 'POST', path: '/data', options },
    ])
    const { token } = await keys.create({ name: 'r', environment: 'live', roles: ['reader'] })
    expect((await call(url('/data'), { authorization: `Bearer ${token}` })).status).toBe(200)
    const refused = await call(url('/data'), { authorization: `Bearer ${token}` }, 'POST')
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({ code: 'insufficient_scope' })
    expect(refused.headers.get('www-authenticate')).toContain('scope="data:write"')
  })

  it.each([
    ['throws', () => {
      throw new Error('boom')
    }],
    ['returns a string', () => 'data:read'],
    ['returns a bad scope', () => ['has space']],
  ])('a scopes function that %s refuses with 403, never 500', async (_label, scopes) => {
    const rejections: Rejection[] = []
    const { keys, url } = await start([{ method: 'GET', path: '/x', options: { scopes: scopes as never, onReject: (r) => void rejections.push(r) } }])
    const { token } = await keys.create({ name: 'r', environment: 'live', roles: ['reader'] })
    const response = await call(url('/x'), { authorization: `Bearer ${token}` })
    expect(response.status).toBe(403)
    expect(rejections[0]).toMatchObject({ reason: 'invalid_scopes', status: 403 })
    expect(rejections[0]!.error).toBeDefined()
    expect(server!.errors).toEqual([])
  })

  it('check: true lets through; false, a rejected promise or a throw answer 403 check_failed', async () => {
    const rejections: Rejection[] = []
    const onReject = (r: Rejection) => void rejections.push(r)
    const { keys, url } = await start([
      { method: 'GET', path: '/own/:tenant', options: { check: async (key: { tenantId: string | null }, request: { params?: Record<string, string> }) => key.tenantId === (request.params?.['tenant'] ?? ''), onReject } },
      { method: 'GET', path: '/throws', options: { check: () => { throw new Error('host bug') }, onReject } },
      { method: 'GET', path: '/rejects', options: { check: () => Promise.reject(new Error('host bug')), onReject } },
    ])
    const { token } = await keys.create({ name: 'r', environment: 'live', tenantId: 'acme' })
    const auth = { authorization: `Bearer ${token}` }
    // Every adapter's request carries the route parameter (Express's req.params, Koa's ctx.params, Fastify's request.params, Hono's c.req.param())
    expect((await call(url('/own/acme'), auth)).status).toBe(200)
    for (const path of ['/own/globex', '/throws', '/rejects']) {
      const response = await call(url(path), auth)
      expect(response.status).toBe(403)
      expect(await response.json()).toMatchObject({ code: 'check_failed' })
    }
    expect(rejections.map((r) => r.reason)).toEqual(['check_failed', 'check_failed', 'check_failed'])
    expect(rejections[0]!.error).toBeUndefined()
    expect(rejections[1]!.error).toBeDefined()
    expect(server!.errors).toEqual([])
  })

  it('HTTP Basic (curl -u keyId:secret) is accepted only when schemes include it', async () => {
    const { keys, url } = await start([
      { method: 'GET', path: '/basic', options: { schemes: ['Bearer', 'Basic'] } },
      { method: 'GET', path: '/bearer', options: {} },
    ])
    const { key, token } = await keys.create({ name: 'b', environment: 'live' })
    const { keyId, secret } = keys.splitToken(token)!
    const accepted = await call(url('/basic'), { authorization: basic(`${keyId}:${secret}`) })
    expect(accepted.status).toBe(200)
    expect(((await accepted.json()) as { id: string }).id).toBe(key.id)
    expect((await call(url('/basic'), { authorization: `basic ${Buffer.from(`${keyId}:${secret}`).toString('base64')}` })).status).toBe(200)
    expect((await call(url('/bearer'), { authorization: basic(`${keyId}:${secret}`) })).status).toBe(401)
    const challenge = (await call(url('/basic'), {})).headers.get('www-authenticate')
    expect(challenge).toContain('Basic realm="api"')
  })

  it('a wrong Basic pair gets the uniform 401, a malformed one the 400 of malformed headers, and Basic with another credential is ambiguous', async () => {
    const { keys, url } = await start([{ method: 'GET', path: '/basic', options: { schemes: ['Basic', 'Bearer'] } }])
    const { token } = await keys.create({ name: 'b', environment: 'live' })
    const { keyId, secret } = keys.splitToken(token)!
    const wrongSecret = secret.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))
    // A pair that is not a key's: the one 401 of every credential failure.
    for (const authorization of [basic(`${keyId}:${wrongSecret}`), basic('x:y')]) {
      const response = await call(url('/basic'), { authorization })
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ code: 'invalid_token' })
    }
    // Not a Basic credential at all (no colon, an empty part, bad base64, not UTF-8): 400, as any malformed header.
    for (const authorization of [basic(`${keyId}${secret}`), basic(`:${secret}`), basic(`${keyId}:`), 'Basic !!!!', 'Basic YWJj=', `Basic ${Buffer.from([0xff, 0x3a, 0x41]).toString('base64')}`]) {
      const response = await call(url('/basic'), { authorization })
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ code: 'invalid_request' })
    }
    const both = await call(url('/basic'), { authorization: basic(`${keyId}:${secret}`), 'x-api-key': token })
    expect(both.status).toBe(400)
    expect(await both.json()).toMatchObject({ code: 'invalid_request' })
  })

  it('refuses bad route options at construction with a ConfigError naming the field', async () => {
    const { keys } = setup()
    const apiKeyAuth = GUARD_FACTORIES[framework]
    expect(() => apiKeyAuth(keys, { types: [] })).toThrow(/types/)
    expect(() => apiKeyAuth(keys, { check: 'yes' as never })).toThrow(/check/)
    expect(() => apiKeyAuth(keys, { scopes: 42 as never })).toThrow(/scopes/)
  })
})
