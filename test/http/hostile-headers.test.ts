import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createRequestVerifier } from '../../src/index.js'
import { countingStore, setup } from '../helpers.js'
import { rawRequest, startServer, type Framework, type TestServer } from './servers.js'

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

describe.each(['express', 'koa'] as const)('hostile headers against the %s middleware', (framework: Framework) => {
  let server: TestServer
  let calls: Record<string, number>
  beforeAll(async () => {
    const counting = countingStore()
    calls = counting.calls
    server = await startServer(framework, setup({ store: counting.store }).keys)
  })
  afterAll(() => server.close())

  it('answers every request below 500, lets none through and never calls the store', async () => {
    // CR and LF would end the header line itself; everything else goes out as raw bytes.
    const lineSafe = headerValue.map((value) => value.replace(/[\r\n]/g, ''))
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(headerName, lineSafe), { minLength: 1, maxLength: 3 }), async (pairs) => {
        const response = await rawRequest(server.port, pairs.map(([name, value]) => `${name}: ${value}`))
        expect(response.status).toBeGreaterThanOrEqual(400)
        expect(response.status).toBeLessThan(500)
      }),
      { numRuns: 1_000 },
    )
    expect(server.passed).toEqual([])
    expect(server.errors).toEqual([])
    expect(calls.get ?? 0).toBe(0)
  }, 120_000)
})
