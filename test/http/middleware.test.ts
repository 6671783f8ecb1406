import { afterEach, describe, expect, it } from 'vitest'
import type { ApiKeyAuthOptions, KeyManager, KeyStore, Rejection } from '../../src/index.js'
import { countingStore, DAY, forgeToken, recordEvents, setup } from '../helpers.js'
import { breakableStore, FRAMEWORKS, JOINS_REPEATED_HEADERS, rawRequest, startServer, withoutDate, type Framework, type TestServer } from './servers.js'

const servers: TestServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

async function serve(framework: Framework, keys: KeyManager, options: ApiKeyAuthOptions = {}) {
  const server = await startServer(framework, keys, options)
  servers.push(server)
  return server
}

async function fixture(framework: Framework, options: ApiKeyAuthOptions = {}, store?: KeyStore) {
  const context = setup(store ? { store } : {})
  const rejections: Rejection[] = []
  const server = await serve(framework, context.keys, { onReject: (rejection) => void rejections.push(rejection), ...options })
  const reader = await context.keys.create({ name: 'reader', ownerId: 'u1', environment: 'live', roles: ['readonly'] })
  return { ...context, server, rejections, reader }
}

function problem(body: string) {
  return JSON.parse(body) as { type: string; title: string; status: number; detail: string; code: string }
}

describe.each(FRAMEWORKS)('%s middleware', (framework) => {
  describe('accepted credentials', () => {
    it.each([
      ['Authorization: Bearer', (token: string) => `Authorization: Bearer ${token}`],
      ['Authorization: Api-Key', (token: string) => `Authorization: Api-Key ${token}`],
      ['lower-case scheme', (token: string) => `authorization: bearer ${token}`],
      ['upper-case scheme', (token: string) => `AUTHORIZATION: API-KEY ${token}`],
      ['mixed-case scheme', (token: string) => `Authorization: BeArEr ${token}`],
      ['X-API-Key', (token: string) => `X-API-Key: ${token}`],
      ['x-api-key', (token: string) => `x-api-key: ${token}`],
    ])('passes a valid key in %s and exposes it to the route', async (_, line) => {
      const { server, reader } = await fixture(framework)
      const response = await rawRequest(server.port, [line(reader.token)])
      expect(response.status).toBe(200)
      expect(JSON.parse(response.body)).toEqual({ owner: 'u1', id: reader.key.id })
      expect(server.passed).toEqual(['/read'])
    })
  })

  it('answers 401 with a challenge without error when there are no credentials', async () => {
    const { server, rejections } = await fixture(framework)
    const response = await rawRequest(server.port, [])
    expect(response.status).toBe(401)
    expect(response.header('www-authenticate')).toBe('Bearer realm="api", Api-Key realm="api"')
    expect(response.header('content-type')).toBe('application/problem+json')
    expect(response.header('cache-control')).toBe('no-store')
    expect(problem(response.body)).toEqual({
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: expect.any(String),
      code: 'missing_credentials',
    })
    expect(rejections).toEqual([{ reason: 'missing_credentials', status: 401, code: 'missing_credentials', keyId: null }])
    expect(server.passed).toEqual([])
  })

  it('treats an unsupported scheme like no credentials, byte for byte', async () => {
    const { server, rejections } = await fixture(framework)
    const none = await rawRequest(server.port, [])
    const basic = await rawRequest(server.port, ['Authorization: Basic dXNlcjpwYXNz'])
    expect(withoutDate(basic)).toBe(withoutDate(none))
    expect(rejections.map((rejection) => rejection.reason)).toEqual(['missing_credentials', 'unsupported_scheme'])
  })

  it.each([
    ['a scheme without a token', ['Authorization: Bearer'], 'malformed_header'],
    ['two words after the scheme', ['Authorization: Bearer abc def'], 'malformed_header'],
    // The fourth column: the reason where repeated lines arrive joined by ", " (Fetch Headers), when it differs.
    ['a list of credentials', ['Authorization: Bearer abc, Bearer def'], 'malformed_header', 'ambiguous_credentials'],
    ['a token with a quote', ['Authorization: Api-Key "abc"'], 'malformed_header'],
    ['an empty X-API-Key', ['X-API-Key:'], 'malformed_header'],
    ['an X-API-Key with a space inside', ['X-API-Key: abc def'], 'malformed_header'],
    ['an empty Authorization', ['Authorization:'], 'malformed_header'],
    ['Authorization and X-API-Key', ['Authorization: Bearer abc', 'X-API-Key: abc'], 'ambiguous_credentials'],
    ['two X-API-Key lines', ['X-API-Key: abc', 'X-API-Key: abc'], 'ambiguous_credentials', 'malformed_header'],
    ['two Authorization lines', ['Authorization: Bearer abc', 'Authorization: Bearer abc'], 'ambiguous_credentials'],
    ['Basic and Bearer Authorization lines', ['Authorization: Basic abc', 'Authorization: Bearer abc'], 'ambiguous_credentials'],
  ])('answers 400 invalid_request for %s', async (_, lines, reason, joined = reason) => {
    const { server, rejections, reader } = await fixture(framework)
    // Use the real valid token where the line carries "abc", so only the header shape is at fault.
    const response = await rawRequest(server.port, lines.map((line) => line.replaceAll('abc', reader.token)))
    expect(response.status).toBe(400)
    expect(response.header('www-authenticate')).toBe('Bearer realm="api", error="invalid_request", Api-Key realm="api", error="invalid_request"')
    expect(problem(response.body)).toMatchObject({ status: 400, code: 'invalid_request', title: 'Bad Request' })
    expect(response.header('cache-control')).toBe('no-store')
    expect(rejections.map((rejection) => rejection.reason)).toEqual([JOINS_REPEATED_HEADERS.has(framework) ? joined : reason])
    expect(server.passed).toEqual([])
  })

  it('answers every invalid token with the very same 401 bytes, and tells onReject why', async () => {
    const { server, keys, time, rejections } = await fixture(framework)
    const make = (name: string, environment = 'live') => keys.create({ name, environment, roles: ['readonly'], expiresIn: '1d' })
    const [revoked, disabled, expired, otherEnvironment, rotated] = await Promise.all([
      make('revoked'),
      make('disabled'),
      make('expired'),
      make('test env', 'test'),
      make('rotated'),
    ])
    await keys.revoke(revoked.key.id)
    await keys.disable(disabled.key.id)
    await keys.rotate(rotated.key.id)
    const live = await serve(framework, keys, { environment: 'live', onReject: (rejection) => void rejections.push(rejection) })
    const cases: [string, number, string][] = [
      ['malformed', server.port, 'acme_live_nonsense'],
      ['too long', server.port, 'A'.repeat(5000)],
      ['unknown_key', server.port, forgeToken('0000000000000000')],
      ['wrong_secret', server.port, rotated.token],
      ['revoked', server.port, revoked.token],
      ['disabled', server.port, disabled.token],
      ['wrong_environment', live.port, otherEnvironment.token],
    ]
    const responses = []
    for (const [, port, token] of cases) responses.push(await rawRequest(port, [`Authorization: Bearer ${token}`]))
    time.advance(DAY)
    responses.push(await rawRequest(server.port, [`Authorization: Bearer ${expired.token}`]))

    const first = responses[0]!
    expect(first.status).toBe(401)
    expect(first.header('www-authenticate')).toBe('Bearer realm="api", error="invalid_token", Api-Key realm="api", error="invalid_token"')
    expect(problem(first.body)).toMatchObject({ status: 401, code: 'invalid_token' })
    for (const response of responses) expect(withoutDate(response)).toBe(withoutDate(first))
    expect(rejections.map((rejection) => rejection.reason)).toEqual([
      'malformed',
      'malformed',
      'unknown_key',
      'wrong_secret',
      'revoked',
      'disabled',
      'wrong_environment',
      'expired',
    ])
    expect(server.passed).toEqual([])
    expect(live.passed).toEqual([])
  })

  it('answers 403 insufficient_scope naming the required scopes', async () => {
    const { server, reader, rejections } = await fixture(framework)
    const response = await rawRequest(server.port, [`X-API-Key: ${reader.token}`], '/write', 'POST')
    expect(response.status).toBe(403)
    expect(response.header('www-authenticate')).toBe(
      'Bearer realm="api", error="insufficient_scope", scope="data:write", Api-Key realm="api", error="insufficient_scope", scope="data:write"',
    )
    expect(problem(response.body)).toMatchObject({ status: 403, code: 'insufficient_scope', title: 'Forbidden' })
    expect(rejections).toEqual([{ reason: 'insufficient_scope', status: 403, code: 'insufficient_scope', keyId: reader.key.id }])
    expect(server.passed).toEqual([])
  })

  it('answers 503 with Retry-After when the store throws, never 401, and does not pass the request on', async () => {
    const store = breakableStore()
    const { server, reader, rejections } = await fixture(framework, {}, store)
    store.get = async () => {
      throw new Error('ECONNREFUSED')
    }
    const response = await rawRequest(server.port, [`Authorization: Bearer ${reader.token}`])
    expect(response.status).toBe(503)
    expect(response.header('retry-after')).toBe('5')
    expect(response.header('www-authenticate')).toBeUndefined()
    expect(problem(response.body)).toMatchObject({ status: 503, code: 'service_unavailable' })
    expect(response.raw).not.toContain('ECONNREFUSED')
    expect(rejections).toEqual([expect.objectContaining({ reason: 'store_unavailable', status: 503, keyId: reader.key.id, error: expect.anything() })])
    expect(server.passed).toEqual([])
    expect(server.errors).toEqual([])
  })

  it('answers 503 when the store does not answer within the timeout', async () => {
    const store = breakableStore()
    const { server, reader, rejections } = await fixture(framework, { timeout: 50, retryAfterSeconds: 30 }, store)
    store.get = () => new Promise(() => undefined)
    const response = await rawRequest(server.port, [`Authorization: Bearer ${reader.token}`])
    expect(response.status).toBe(503)
    expect(response.header('retry-after')).toBe('30')
    expect(rejections.map((rejection) => rejection.reason)).toEqual(['store_timeout'])
    expect(server.passed).toEqual([])
  })

  it('never reads the query string or the body', async () => {
    const { server, reader } = await fixture(framework)
    const query = await rawRequest(server.port, [], `/read?api_key=${reader.token}&token=${reader.token}`)
    expect(query.status).toBe(401)
    expect(problem(query.body).code).toBe('missing_credentials')
    const body = await rawRequest(server.port, [], '/write', 'POST', JSON.stringify({ apiKey: reader.token, token: reader.token }))
    expect(body.status).toBe(401)
    expect(server.passed).toEqual([])
  })

  it('echoes nothing from the request', async () => {
    const { server } = await fixture(framework)
    const marker = 'Zq9marker'
    for (const lines of [
      [`X-API-Key: ${marker}`],
      [`Authorization: ${marker} ${marker}`],
      [`Authorization: Bearer ${marker} ${marker}`],
      [`X-API-Key: ${marker}`, `X-API-Key: ${marker}`],
    ]) {
      const response = await rawRequest(server.port, lines)
      expect(response.status).toBeGreaterThanOrEqual(400)
      expect(response.raw).not.toContain(marker)
    }
  })

  it('rejects over-long tokens without touching the store', async () => {
    const { store, calls } = countingStore()
    const { server } = await fixture(framework, {}, store)
    const before = calls.get ?? 0
    const response = await rawRequest(server.port, [`X-API-Key: acme_live_${'a'.repeat(8000)}`])
    expect(response.status).toBe(401)
    expect(calls.get ?? 0).toBe(before)
  })

  it('accepts only the configured sources', async () => {
    const { keys, reader } = await fixture(framework)
    const headerOnly = await serve(framework, keys, { schemes: [], header: 'X-Service-Key' })
    expect((await rawRequest(headerOnly.port, [`X-Service-Key: ${reader.token}`])).status).toBe(200)
    expect((await rawRequest(headerOnly.port, [`X-API-Key: ${reader.token}`])).status).toBe(401)
    const noLine = await rawRequest(headerOnly.port, [`Authorization: Bearer ${reader.token}`])
    expect(noLine.status).toBe(401)
    expect(noLine.header('www-authenticate')).toBe('Api-Key realm="api"')
    const bearerOnly = await serve(framework, keys, { schemes: ['Bearer'], header: false, realm: 'reports' })
    expect((await rawRequest(bearerOnly.port, [`Authorization: Bearer ${reader.token}`])).status).toBe(200)
    const apiKeyScheme = await rawRequest(bearerOnly.port, [`Authorization: Api-Key ${reader.token}`])
    expect(apiKeyScheme.status).toBe(401)
    expect(apiKeyScheme.header('www-authenticate')).toBe('Bearer realm="reports"')
    expect((await rawRequest(bearerOnly.port, [`X-API-Key: ${reader.token}`])).status).toBe(401)
  })

  it('uses configured messages', async () => {
    const { server } = await fixture(framework, { messages: { missing_credentials: 'Bring a key.' } })
    expect(problem((await rawRequest(server.port, [])).body).detail).toBe('Bring a key.')
  })

  it('reports rejections to KeyManager events and keeps a throwing onReject from changing the answer', async () => {
    const { keys, reader } = await fixture(framework)
    const events = recordEvents(keys, ['rejected', 'verified'])
    const server = await serve(framework, keys, {
      onReject: () => {
        throw new Error('hook bug')
      },
    })
    expect((await rawRequest(server.port, [`Authorization: Bearer ${forgeToken(reader.key.id)}`])).status).toBe(401)
    expect((await rawRequest(server.port, [`Authorization: Bearer ${reader.token}`])).status).toBe(200)
    expect(events.map((event) => event.type)).toEqual(['rejected', 'verified'])
    expect(server.errors).toEqual([])
  })
})
