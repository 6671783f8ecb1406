import { describe, expect, it } from 'vitest'
import { ConfigError, createRequestVerifier, type ApiKeyAuthOptions, type RequestHeaders } from '../../src/index.js'
import { apiKeyAuth as expressAuth } from '../../src/http/express.js'
import { apiKeyAuth as koaAuth } from '../../src/http/koa.js'
import { setup } from '../helpers.js'

describe('createRequestVerifier', () => {
  it('reads node rawHeaders, a Fetch Headers object and a plain header object alike', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', scopes: ['data:read'] })
    const verify = createRequestVerifier(keys, { scopes: ['data:read'] })
    for (const headers of [
      ['Host', 'x', 'Authorization', `Bearer ${token}`],
      new Headers({ authorization: `Api-Key ${token}` }),
      { 'x-api-key': token },
      { 'X-API-Key': [token] },
    ]) {
      const decision = await verify(headers)
      expect(decision).toEqual({
        ok: true,
        status: 200,
        key: expect.objectContaining({ id: key.id }),
        scopes: ['data:read'],
        limits: [],
        credits: null,
        headers: {},
      })
    }
  })

  // A choice against djangorestframework-api-key, which refuses it: RFC 9110 separates the scheme from
  // the credentials with 1*SP, so several spaces are still one well-formed header. Tabs and trailing
  // spaces stay malformed (the credential itself is never trimmed).
  it('accepts several spaces between the scheme and the token, as RFC 9110 allows, and nothing else around it', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const verify = createRequestVerifier(keys)
    for (const line of [`Api-Key  ${token}`, `Bearer   ${token}`]) {
      expect(await verify({ authorization: line })).toMatchObject({ ok: true, key: { id: key.id } })
    }
    for (const line of [`Api-Key\t${token}`, `Api-Key ${token} `, ` Api-Key ${token}`, `Api-Key  ${token}  `]) {
      expect(await verify({ authorization: line })).toMatchObject({ ok: false, status: 400, reason: 'malformed_header' })
    }
  })

  it('sees repeated lines in every shape', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const verify = createRequestVerifier(keys)
    const fetchHeaders = new Headers()
    fetchHeaders.append('x-api-key', token)
    fetchHeaders.append('x-api-key', token)
    for (const headers of [['X-API-Key', token, 'x-api-key', token], fetchHeaders, { 'x-api-key': [token, token] }]) {
      expect(await verify(headers)).toMatchObject({ ok: false, status: 400, reason: expect.stringMatching(/ambiguous|malformed/) })
    }
  })

  // Fetch Headers join repeated lines with ", ": Authorization is split back where a second scheme
  // starts, so two lines (whatever their schemes) stay ambiguous and never fall back to "no credential".
  it('tells two joined Authorization lines apart in a Fetch Headers object, and leaves one line with auth-params whole', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const verify = createRequestVerifier(keys)
    const joined = (...lines: string[]) => {
      const headers = new Headers()
      for (const line of lines) headers.append('authorization', line)
      return headers
    }
    for (const headers of [joined('Basic dXNlcjpwYXNz', `Bearer ${token}`), joined(`Bearer ${token}`, 'Digest username="a"'), joined(`Bearer ${token}`, `Api-Key ${token}`)]) {
      expect(await verify(headers)).toMatchObject({ ok: false, status: 400, reason: 'ambiguous_credentials' })
    }
    // One line of another scheme whose parameters hold commas is not ours: no credential, as with node.
    expect(await verify(joined('Digest username="a", realm="api", nonce="n, m"'))).toMatchObject({ ok: false, status: 401, reason: 'unsupported_scheme' })
    expect(await verify(joined(`Bearer ${token}`))).toMatchObject({ ok: true })
  })

  it('returns the response to send, shared by every request that fails the same way', async () => {
    const { keys } = setup()
    const verify = createRequestVerifier(keys)
    const a = await verify({})
    const b = await verify({ authorization: 'Digest abc' })
    expect(a).toMatchObject({ ok: false, status: 401, reason: 'missing_credentials', code: 'missing_credentials' })
    expect(b).toMatchObject({ ok: false, status: 401, reason: 'unsupported_scheme' })
    if (a.ok || b.ok) throw new Error('unreachable')
    expect(b.body).toBe(a.body)
    expect(b.headers).toBe(a.headers)
    expect(Object.isFrozen(a.headers)).toBe(true)
  })

  it('turns a headers object that throws into a 400, not an exception', async () => {
    const { keys } = setup()
    const verify = createRequestVerifier(keys)
    const hostile = {
      get() {
        throw new Error('boom')
      },
    }
    expect(await verify(hostile)).toMatchObject({ ok: false, status: 400 })
  })

  it('hands a cost function the second argument, else the headers, and returns the headers to send', async () => {
    const { keys } = setup({ limits: { policies: { free: { rate: [{ name: 'burst', limit: 5, window: '1s' }] } }, defaultPolicy: 'free' } })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const seen: unknown[] = []
    const verify = createRequestVerifier<{ units: number } | RequestHeaders>(keys, {
      cost: (request) => {
        seen.push(request)
        return 'units' in request && typeof request.units === 'number' ? request.units : 1
      },
    })
    const headers = { authorization: `Bearer ${token}` }
    const weighed = await verify(headers, { units: 3 })
    expect(weighed).toMatchObject({
      ok: true,
      limits: [expect.objectContaining({ name: 'burst', remaining: 2 })],
      credits: null,
      headers: { 'RateLimit-Policy': '"burst";q=5;w=1', RateLimit: '"burst";r=2;t=1' },
    })
    expect(Object.isFrozen(weighed.ok && weighed.headers)).toBe(true)
    await verify(headers)
    expect(seen).toEqual([{ units: 3 }, headers])
    const refused = await verify(headers, { units: 3 })
    expect(refused).toMatchObject({ ok: false, status: 429, code: 'rate_limited', reason: 'rate_limited' })
    if (refused.ok) throw new Error('unreachable')
    expect(refused.headers).toMatchObject({ 'Retry-After': '1', RateLimit: '"burst";r=1;t=1', 'Cache-Control': 'no-store' })
    expect(Object.isFrozen(refused.headers)).toBe(true)
  })

  it.each<[string, ApiKeyAuthOptions, string]>([
    ['a scope with a quote', { scopes: ['data"read'] }, 'scopes[0]'],
    ['an unknown environment', { environment: 'prod' }, 'environment'],
    ['a scheme with a space', { schemes: ['Api Key'] }, 'schemes[0]'],
    ['Authorization as the header', { header: 'Authorization' }, 'header'],
    ['no source at all', { schemes: [], header: false }, 'schemes'],
    ['a realm with a quote', { realm: 'a"b' }, 'realm'],
    ['an unknown message code', { messages: { nope: 'x' } as never }, 'messages.(unknown field)'],
    ['a zero timeout', { timeout: 0 }, 'timeout'],
    ['a negative Retry-After', { retryAfterSeconds: -1 }, 'retryAfterSeconds'],
    ['an onReject that is not a function', { onReject: 'log' as never }, 'onReject'],
    ['a negative cost', { cost: -1 }, 'cost'],
    ['a fractional cost', { cost: 1.5 }, 'cost'],
    ['a cost that is a string', { cost: '2' as never }, 'cost'],
    ['rateLimitHeaders that is not a boolean', { rateLimitHeaders: 'no' as never }, 'rateLimitHeaders'],
    ['a message for an unknown 429 code', { messages: { quota_exceeded: 'x' } as never }, 'messages.(unknown field)'],
    ['an unknown option', { scope: ['x'] } as never, '(unknown field)'],
  ])('throws a ConfigError when built with %s, in every form', (_, options, path) => {
    const { keys } = setup()
    for (const build of [() => createRequestVerifier(keys, options), () => expressAuth(keys, options), () => koaAuth(keys, options)]) {
      let error: unknown
      try {
        build()
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).issues.map((issue) => issue.path.join('.').replace(/\.(\d+)/g, '[$1]'))).toContain(path)
    }
  })
})
