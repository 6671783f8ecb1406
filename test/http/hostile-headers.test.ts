import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createRequestVerifier } from '../../src/index.js'
import { countingStore, setup } from '../helpers.js'
import { FRAMEWORKS, rawRequest, startServer, withoutDate, type Framework, type TestServer } from './servers.js'

/** Header values from every corner: arbitrary Unicode, look-alikes, control characters, long runs. */
const headerValue = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.stringMatching(/^[A-Za-z0-9_\-.~+/=]{0,120}$/),
  fc.constantFrom('Bearer', 'Api-Key', 'bearer ', 'API-KEY', 'Basic', 'Ｂｅａｒｅｒ', 'Веаrer', 'acme_live_').chain((scheme) =>
    fc.string({ maxLength: 100 }).map((rest) => `${scheme} ${rest}`),
  ),
  fc.integer({ min: 100, max: 9000 }).map((length) => 'acme_live_' + 'A'.repeat(length)),
)
const headerName = fc.constantFrom('Authorization', 'authorization', 'X-API-Key', 'x-api-key', 'X-Api-Key', 'X-Other')

describe('hostile headers against the request verifier', () => {
  it('never throws, never answers 5xx, and never reaches the store with a token that fails the format', async () => {
    const { store, calls } = countingStore()
    const { keys } = setup({ store })
    const verify = createRequestVerifier(keys, { scopes: ['data:read'] })
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 }), async (pairs) => {
        const before = calls.get ?? 0
        const decision = await verify(pairs.flat())
        expect(decision.ok).toBe(false)
        expect(decision.status).toBeGreaterThanOrEqual(400)
        expect(decision.status).toBeLessThan(500)
        expect(calls.get ?? 0).toBe(before)
      }),
      { numRuns: 10_000 },
    )
  })
})

describe.each(FRAMEWORKS)('hostile headers against the %s middleware', (framework: Framework) => {
  let server: TestServer
  let calls: Record<string, number>
  /** Every answer a rejected request can get, byte for byte (Date aside): nothing in them comes from the request. */
  let canonical: Set<string>
  beforeAll(async () => {
    const counting = countingStore()
    calls = counting.calls
    server = await startServer(framework, setup({ store: counting.store }).keys)
    const answers = await Promise.all(
      [
        [], // 401 without error
        ['Authorization: Bearer a b'], // 400 invalid_request
        ['X-API-Key: acme_live_x'], // 401 invalid_token
        ['X-API-Key: \u0000'], // node's own 400 for a header it cannot parse
        [`X-Other: ${'A'.repeat(20_000)}`], // node's own 431 for headers over its limit
      ].map((lines) => rawRequest(server.port, lines)),
    )
    canonical = new Set(answers.map(withoutDate))
    expect(answers.map((answer) => answer.status)).toEqual([401, 400, 401, 400, 431])
  })
  afterAll(() => server.close())

  it('answers every request below 500 with one of the fixed responses, lets none through and never calls the store', async () => {
    // CR and LF would end the header line itself; everything else goes out as raw bytes.
    const lineSafe = headerValue.map((value) => value.replace(/[\r\n]/g, ''))
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(headerName, lineSafe), { minLength: 1, maxLength: 3 }), async (pairs) => {
        const response = await rawRequest(server.port, pairs.map(([name, value]) => `${name}: ${value}`))
        expect(response.status).toBeGreaterThanOrEqual(400)
        expect(response.status).toBeLessThan(500)
        // Byte-identical to a fixed answer: no header value, header name or body text reflects the request.
        expect(canonical.has(withoutDate(response)), withoutDate(response)).toBe(true)
      }),
      { numRuns: 1_000 },
    )
    expect(server.passed).toEqual([])
    expect(server.errors).toEqual([])
    expect(calls.get ?? 0).toBe(0)
  }, 120_000)
})

describe.each(FRAMEWORKS)('the %s middleware reflects nothing of the request', (framework: Framework) => {
  let server: TestServer
  let tokens: { reader: string; other: string }
  beforeAll(async () => {
    const { keys } = setup()
    server = await startServer(framework, keys)
    const reader = await keys.create({ name: 'reader', environment: 'live', roles: ['readonly'] })
    const other = await keys.create({ name: 'no scopes', environment: 'live' })
    tokens = { reader: reader.token, other: other.token }
  })
  afterAll(() => server.close())

  /** Request headers an app might be tempted to echo (CORS, tracing, forwarding) and odd credentials. */
  const MARK = 'Zq7Reflected'
  const noise = [
    `Origin: https://${MARK}.example`,
    `X-Request-Id: ${MARK}-id`,
    `X-Forwarded-For: 10.0.0.1, ${MARK}`,
    `X-Forwarded-Host: ${MARK}.example`,
    `Access-Control-Request-Headers: x-${MARK.toLowerCase()}`,
    `Cookie: session=${MARK}`,
    `User-Agent: ${MARK}/1.0`,
    `Accept-Language: ${MARK}`,
  ]
  const credentials = (token: () => string): [string, () => string[]][] => [
    ['no credentials', () => []],
    ['an unsupported scheme', () => [`Authorization: Basic ${Buffer.from(`${MARK}:x`).toString('base64')}`]],
    ['a malformed header', () => [`Authorization: Bearer ${MARK} ${MARK}`]],
    ['two different credentials', () => [`Authorization: Bearer ${token()}`, `X-API-Key: ${MARK}`]],
    ['a garbage token', () => [`X-API-Key: acme_live_${MARK}`]],
    ['a valid token', () => [`X-API-Key: ${token()}`]],
  ]

  it.each([
    ...credentials(() => tokens.reader).map(([label, lines]) => [`${label} (reader)`, lines] as const),
    ['a valid token without the scope (403)', () => [`X-API-Key: ${tokens.other}`]] as const,
  ])('%s: no response header or body carries any request value', async (_, lines) => {
    const sent = [...lines(), ...noise]
    const response = await rawRequest(server.port, sent)
    const values = sent.map((line) => line.slice(line.indexOf(':') + 1).trim())
    const head = response.raw.slice(0, response.raw.indexOf('\r\n\r\n'))
    for (const value of values) {
      expect(head).not.toContain(value)
      if (response.status !== 200) expect(response.body).not.toContain(value)
    }
    expect(response.raw).not.toContain(MARK)
    expect(response.raw.toLowerCase()).not.toContain(MARK.toLowerCase())
  })
})
