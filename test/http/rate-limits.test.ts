/**
 * Rate limits and credits over real sockets, every adapter alike: the 429s (headers, body), the
 * `RateLimit` fields of successes, the `rateLimitHeaders` switch and the `cost` option. The KeyManager's
 * clock is a manual one, so every `t` and `Retry-After` is an exact number.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, type KeyManager, type KeyStore, type LimitsOptions, type Rejection } from '../../src/index.js'
import { DEFAULT_MESSAGES } from '../../src/http/responses.js'
import { DAY, setup } from '../helpers.js'
import { breakableStore, FRAMEWORKS, rawRequest, startRoutes, withoutDate, type Framework, type GuardedRoute, type RawResponse, type TestServer } from './servers.js'

const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded'
/** From START (12:00 UTC) to the end of the UTC day, where the fixed daily window resets. */
const HALF_DAY_S = 43_200

const LIMITS: LimitsOptions = {
  policies: {
    free: {
      rate: [
        { name: 'burst', limit: 3, window: '1s' },
        { name: 'daily', limit: 1000, window: '1d', algorithm: 'fixed-window' },
      ],
      credits: { refill: { amount: 100, interval: '30d' } },
    },
    daily5: {
      rate: [
        { name: 'burst', limit: 100, window: '1s' },
        { name: 'daily', limit: 5, window: '1d', algorithm: 'fixed-window' },
      ],
    },
    prepaid: { credits: {} },
  },
  defaultPolicy: null,
}

const servers: TestServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

async function fixture(framework: Framework, routes: (record: (rejection: Rejection) => void) => GuardedRoute[], limits: LimitsOptions | null = LIMITS, store?: KeyStore) {
  const context = setup({ ...(limits === null ? {} : { limits }), ...(store === undefined ? {} : { store }) })
  const rejections: Rejection[] = []
  const server = await startRoutes(framework, context.keys, routes((rejection) => void rejections.push(rejection)))
  servers.push(server)
  return { ...context, server, rejections }
}

/** GET /read needs data:read, POST /write needs data:write; both share one set of options. */
function readWrite(options: GuardedRoute['options'] = {}) {
  return (onReject: (rejection: Rejection) => void): GuardedRoute[] => {
    const read = { scopes: ['data:read'], onReject, ...options }
    return [
      { method: 'GET', path: '/read', options: read },
      { method: 'POST', path: '/write', options: { ...read, scopes: ['data:write'] } },
    ]
  }
}

function reader(keys: KeyManager, policy: string | null, credits?: number) {
  return keys.create({ name: 'reader', environment: 'live', roles: ['readonly'], policy, ...(credits === undefined ? {} : { credits }) })
}

function get(server: TestServer, token: string, target = '/read', extra: string[] = []) {
  return rawRequest(server.port, [`Authorization: Bearer ${token}`, ...extra], target)
}

function problem(response: RawResponse) {
  return JSON.parse(response.body) as Record<string, unknown>
}

/** The headers this feature is about, as received (absent ones left out). */
function limitHeaders(response: RawResponse) {
  const names = ['ratelimit-policy', 'ratelimit', 'retry-after', 'cache-control', 'content-type', 'www-authenticate']
  return Object.fromEntries(names.flatMap((name) => (response.header(name) === undefined ? [] : [[name, response.header(name)]])))
}

const FREE_POLICY = '"burst";q=3;w=1, "daily";q=1000;w=86400'

describe.each(FRAMEWORKS)('%s: rate limits', (framework) => {
  it('sends RateLimit and RateLimit-Policy on success, timed by the KeyManager clock', async () => {
    const { keys, server, time } = await fixture(framework, readWrite())
    const { token } = await reader(keys, 'free')
    const first = await get(server, token)
    expect(first.status).toBe(200)
    expect(first.header('ratelimit-policy')).toBe(FREE_POLICY)
    // The bucket is 3 tokens a second: the next whole one is 334 ms away, which rounds up to 1 s.
    expect(first.header('ratelimit')).toBe(`"burst";r=2;t=1, "daily";r=999;t=${HALF_DAY_S}`)
    expect(first.header('retry-after')).toBeUndefined()
    time.advance(1_234)
    const second = await get(server, token)
    // 43 198.766 s to midnight, rounded up; the bucket refilled to 3 and this request took one.
    expect(second.header('ratelimit')).toBe(`"burst";r=2;t=1, "daily";r=998;t=${HALF_DAY_S - 1}`)
    expect(server.passed).toEqual(['/read', '/read'])
  })

  it('answers 429 rate_limited with every header and the problem body, and lets the caller in once Retry-After has passed', async () => {
    const { keys, server, time, rejections } = await fixture(framework, readWrite())
    const { token, key } = await reader(keys, 'free')
    for (let i = 0; i < 3; i++) expect((await get(server, token)).status).toBe(200)
    const refused = await get(server, token)
    expect(refused.status).toBe(429)
    expect(limitHeaders(refused)).toEqual({
      'ratelimit-policy': FREE_POLICY,
      ratelimit: `"burst";r=0;t=1, "daily";r=997;t=${HALF_DAY_S}`,
      'retry-after': '1',
      'cache-control': 'no-store',
      'content-type': 'application/problem+json',
    })
    expect(problem(refused)).toEqual({
      type: QUOTA_EXCEEDED,
      title: 'Too Many Requests',
      status: 429,
      detail: DEFAULT_MESSAGES.rate_limited,
      code: 'rate_limited',
      'violated-policies': ['burst'],
    })
    expect(Number(refused.header('content-length'))).toBe(Buffer.byteLength(refused.body))
    expect(rejections).toEqual([{ reason: 'rate_limited', status: 429, code: 'rate_limited', keyId: key.id, violated: ['burst'] }])
    expect(server.passed).toHaveLength(3)
    expect(server.errors).toEqual([])

    time.advance(1_000)
    expect((await get(server, token)).status).toBe(200)
  })

  it('never tells a client to retry before a violated fixed window resets', async () => {
    const { keys, server, time } = await fixture(framework, readWrite())
    const { token } = await reader(keys, 'daily5')
    for (let i = 0; i < 5; i++) expect((await get(server, token)).status).toBe(200)
    time.advance(1_234)
    const refused = await get(server, token)
    expect(refused.status).toBe(429)
    expect(refused.header('retry-after')).toBe(String(HALF_DAY_S - 1))
    expect(refused.header('ratelimit')).toBe(`"burst";r=100;t=0, "daily";r=0;t=${HALF_DAY_S - 1}`)
    expect(refused.header('ratelimit-policy')).toBe('"burst";q=100;w=1, "daily";q=5;w=86400')
    expect(problem(refused)).toMatchObject({ code: 'rate_limited', 'violated-policies': ['daily'] })
    // Retry-After is honest: a second earlier is still refused, at the reset it passes.
    time.advance((HALF_DAY_S - 2) * 1000)
    expect((await get(server, token)).status).toBe(429)
    time.advance(1000)
    expect((await get(server, token)).status).toBe(200)
  })

  it('answers 429 usage_exceeded with Retry-After until the refill', async () => {
    const { keys, server, time, rejections } = await fixture(framework, readWrite())
    const { token, key } = await reader(keys, 'free', 1)
    expect((await get(server, token)).status).toBe(200)
    time.advance(1_500)
    const refused = await get(server, token)
    expect(refused.status).toBe(429)
    expect(limitHeaders(refused)).toEqual({
      'ratelimit-policy': FREE_POLICY,
      // The refused request still counted against the rate limits.
      ratelimit: `"burst";r=2;t=1, "daily";r=998;t=${HALF_DAY_S - 1}`,
      // The key's balance refills 30 days after its creation: 2 591 998.5 s from now, rounded up.
      'retry-after': String(30 * 86_400 - 1),
      'cache-control': 'no-store',
      'content-type': 'application/problem+json',
    })
    expect(problem(refused)).toEqual({
      type: QUOTA_EXCEEDED,
      title: 'Too Many Requests',
      status: 429,
      detail: DEFAULT_MESSAGES.usage_exceeded,
      code: 'usage_exceeded',
      'violated-policies': ['credits'],
    })
    expect(rejections).toEqual([{ reason: 'usage_exceeded', status: 429, code: 'usage_exceeded', keyId: key.id, violated: ['credits'] }])
    time.advance(30 * DAY)
    expect((await get(server, token)).status).toBe(200)
  })

  it('sends no Retry-After when spent credits never refill, and no RateLimit fields for a key without rate limits', async () => {
    const { keys, server } = await fixture(framework, readWrite())
    const { token } = await reader(keys, 'prepaid', 1)
    const ok = await get(server, token)
    expect(ok.status).toBe(200)
    expect(limitHeaders(ok)).toEqual({ 'content-type': expect.stringContaining('application/json') })
    const refused = await get(server, token)
    expect(refused.status).toBe(429)
    expect(limitHeaders(refused)).toEqual({ 'cache-control': 'no-store', 'content-type': 'application/problem+json' })
    expect(problem(refused)).toMatchObject({ code: 'usage_exceeded', 'violated-policies': ['credits'] })
  })

  it('sends no rate-limit fields at all when the KeyManager has no limits', async () => {
    const { keys, server } = await fixture(framework, readWrite(), null)
    const { token } = await keys.create({ name: 'plain', environment: 'live', roles: ['readonly'] })
    const response = await get(server, token)
    expect(response.status).toBe(200)
    expect(response.raw.toLowerCase()).not.toContain('ratelimit')
  })

  it('leaves the RateLimit fields out with rateLimitHeaders: false, on successes and on 429s', async () => {
    const { keys, server } = await fixture(framework, readWrite({ rateLimitHeaders: false }))
    const { token } = await reader(keys, 'free')
    const ok = await get(server, token)
    expect(ok.status).toBe(200)
    expect(ok.raw.toLowerCase()).not.toContain('ratelimit')
    await get(server, token)
    await get(server, token)
    const refused = await get(server, token)
    expect(refused.status).toBe(429)
    expect(limitHeaders(refused)).toEqual({ 'retry-after': '1', 'cache-control': 'no-store', 'content-type': 'application/problem+json' })
    expect(problem(refused)).toMatchObject({ code: 'rate_limited', 'violated-policies': ['burst'] })
  })

  it('uses configured 429 messages', async () => {
    const { keys, server } = await fixture(framework, readWrite({ messages: { rate_limited: 'Slow down.', usage_exceeded: 'Buy credits.' } }))
    const { token } = await reader(keys, 'free', 0)
    expect(problem(await get(server, token))).toMatchObject({ code: 'usage_exceeded', detail: 'Buy credits.' })
    const other = await reader(keys, 'daily5')
    for (let i = 0; i < 5; i++) await get(server, other.token)
    expect(problem(await get(server, other.token))).toMatchObject({ code: 'rate_limited', detail: 'Slow down.' })
  })

  it('never counts a request refused for its scopes: the next one still sees the full allowance', async () => {
    const { keys, server, rejections } = await fixture(framework, readWrite())
    const { token } = await reader(keys, 'free', 1)
    for (let i = 0; i < 5; i++) {
      const refused = await rawRequest(server.port, [`Authorization: Bearer ${token}`], '/write', 'POST')
      expect(refused.status).toBe(403)
      expect(refused.raw.toLowerCase()).not.toContain('ratelimit')
    }
    const ok = await get(server, token)
    // Five 403s, more than the burst of 3 and the single credit: none of them spent anything.
    expect(ok.status).toBe(200)
    expect(ok.header('ratelimit')).toBe(`"burst";r=2;t=1, "daily";r=999;t=${HALF_DAY_S}`)
    expect(rejections.map((rejection) => rejection.reason)).toEqual(Array(5).fill('insufficient_scope'))
  })

  it('reflects nothing of the request in a 429', async () => {
    const { keys, server } = await fixture(framework, readWrite())
    const { token } = await reader(keys, 'free', 0)
    const marker = 'Zq8Reflected'
    const refused = await get(server, token, `/read?${marker}=1`, [`X-Request-Id: ${marker}`, `Origin: https://${marker}.example`])
    expect(refused.status).toBe(429)
    expect(refused.raw).not.toContain(marker)
    expect(refused.raw).not.toContain(token)
  })
})

describe.each(FRAMEWORKS)('%s: cost', (framework) => {
  it('charges a fixed cost per route', async () => {
    const { keys, server } = await fixture(framework, (onReject) => [
      { method: 'GET', path: '/read', options: { scopes: ['data:read'], onReject } },
      { method: 'GET', path: '/heavy', options: { scopes: ['data:read'], cost: 3, onReject } },
    ])
    const { token } = await reader(keys, 'free')
    const heavy = await get(server, token, '/heavy')
    expect(heavy.status).toBe(200)
    expect(heavy.header('ratelimit')).toBe(`"burst";r=0;t=1, "daily";r=997;t=${HALF_DAY_S}`)
    const refused = await get(server, token, '/read')
    expect(refused.status).toBe(429)
    expect(server.passed).toEqual(['/heavy'])
  })

  it('charges what a cost function reads from a header', async () => {
    const cost = (request: { headers: IncomingHttpHeaders }) => Number(request.headers['x-cost'] ?? '1')
    const { keys, server } = await fixture(framework, readWrite({ cost }))
    const { token } = await reader(keys, 'free', 10)
    const two = await get(server, token, '/read', ['X-Cost: 2'])
    expect(two.header('ratelimit')).toBe(`"burst";r=1;t=1, "daily";r=998;t=${HALF_DAY_S}`)
    const one = await get(server, token)
    expect(one.header('ratelimit')).toBe(`"burst";r=0;t=1, "daily";r=997;t=${HALF_DAY_S}`)
    expect(await keys.getCredits({ keyId: keys.parseToken(token)!.keyId })).toMatchObject({ remaining: 7 })
  })

  it('hands a cost function the framework request, so it can weigh by route', async () => {
    const seen: string[] = []
    // One middleware instance on two routes; the route decides the weight.
    const shared: GuardedRoute['options'] = {
      scopes: ['data:read'],
      cost: (request: { path: string; method: string }) => {
        seen.push(`${request.method} ${request.path}`)
        return request.path === '/bulk' ? 3 : 1
      },
    }
    const { keys, server } = await fixture(framework, () => [
      { method: 'GET', path: '/read', options: shared },
      { method: 'GET', path: '/bulk', options: shared },
    ])
    const { token } = await reader(keys, 'free')
    expect((await get(server, token, '/read')).header('ratelimit')).toMatch(/^"burst";r=2;/)
    expect((await get(server, token, '/bulk')).status).toBe(429)
    expect(seen).toEqual(['GET /read', 'GET /bulk'])
    expect(server.passed).toEqual(['/read'])
  })

  it('lets cost 0 through on a key whose credits and rate limit are spent', async () => {
    const cost = (request: { headers: IncomingHttpHeaders }) => Number(request.headers['x-cost'] ?? '1')
    const { keys, server } = await fixture(framework, (onReject) => [
      { method: 'GET', path: '/read', options: { scopes: ['data:read'], onReject, cost } },
      { method: 'GET', path: '/free', options: { scopes: ['data:read'], onReject, cost: 0 } },
    ])
    const { token } = await reader(keys, 'free', 1)
    expect((await get(server, token)).status).toBe(200)
    expect(problem(await get(server, token))).toMatchObject({ code: 'usage_exceeded' })
    const zero = await get(server, token, '/free')
    expect(zero.status).toBe(200)
    expect(zero.header('ratelimit')).toMatch(/^"burst";r=1;/)
    expect((await get(server, token, '/read', ['X-Cost: 0'])).status).toBe(200)

    const other = await keys.create({ name: 'spent burst', environment: 'live', roles: ['readonly'], policy: 'free', credits: 50 })
    for (let i = 0; i < 3; i++) await get(server, other.token)
    expect((await get(server, other.token)).status).toBe(429)
    const through = await get(server, other.token, '/free')
    expect(through.status).toBe(200)
    expect(through.header('ratelimit')).toMatch(/^"burst";r=0;t=1, /)
  })

  it.each<[string, () => unknown]>([
    ['throws', () => {
      throw new Error('Zq9CostBug')
    }],
    ['returns a negative number', () => -1],
    ['returns a fraction', () => 1.5],
    ['returns NaN', () => Number.NaN],
    ['returns Infinity', () => Infinity],
    ['returns an unsafe integer', () => 2 ** 53],
    ['returns a numeric string', () => '2'],
    ['returns undefined', () => undefined],
    ['returns a promise', () => Promise.resolve(1)],
    ['returns a rejected promise', () => Promise.reject(new Error('Zq9CostBug'))],
    ['returns an object whose then getter throws', () => ({
      get then() {
        throw new Error('Zq9CostBug')
      },
    })],
  ])('answers 503 invalid_cost when the cost function %s, leaks nothing and spends nothing', async (_, cost) => {
    const { keys, server, rejections } = await fixture(framework, (onReject) => [
      { method: 'GET', path: '/read', options: { scopes: ['data:read'], onReject, cost: cost as () => number } },
      { method: 'GET', path: '/fixed', options: { scopes: ['data:read'], onReject } },
    ])
    const { token, key } = await reader(keys, 'free', 5)
    const broken = await get(server, token)
    expect(broken.status).toBe(503)
    expect(broken.header('retry-after')).toBe('5')
    expect(broken.header('cache-control')).toBe('no-store')
    expect(problem(broken)).toMatchObject({ type: 'about:blank', status: 503, code: 'service_unavailable' })
    expect(broken.raw).not.toContain('Zq9CostBug')
    expect(broken.raw).not.toContain('cost')
    expect(broken.raw.toLowerCase()).not.toContain('ratelimit')
    expect(rejections).toEqual([expect.objectContaining({ reason: 'invalid_cost', status: 503, code: 'service_unavailable', keyId: key.id })])
    const error = rejections[0]!.error as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.issues.map((issue) => issue.path.join('.'))).toEqual(['cost'])
    expect(server.passed).toEqual([])
    expect(server.errors).toEqual([])
    // Nothing was counted or charged: the next request sees the full allowance.
    const next = await get(server, token, '/fixed')
    expect(next.header('ratelimit')).toBe(`"burst";r=2;t=1, "daily";r=999;t=${HALF_DAY_S}`)
    expect(await keys.getCredits({ keyId: key.id })).toMatchObject({ remaining: 4 })
  })

  it('does not call the cost function for a request without a usable credential', async () => {
    let calls = 0
    const { server } = await fixture(
      framework,
      readWrite({
        cost: () => {
          calls++
          return 1
        },
      }),
    )
    expect((await rawRequest(server.port, [])).status).toBe(401)
    expect((await rawRequest(server.port, ['Authorization: Bearer a b'])).status).toBe(400)
    expect(calls).toBe(0)
  })

  it('answers a broken cost function with the same bytes as any other failure to check a key', async () => {
    const { keys, server, store } = await fixture(framework, readWrite({ cost: () => -1 }), LIMITS, breakableStore())
    const { token } = await reader(keys, 'free')
    const broken = await get(server, token)
    store.get = async () => {
      throw new Error('ECONNREFUSED')
    }
    const down = await get(server, token)
    expect(down.status).toBe(503)
    expect(withoutDate(broken)).toBe(withoutDate(down))
  })
})
