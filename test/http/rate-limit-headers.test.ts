import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { LimitState } from '../../src/index.js'
import { rateLimitHeaders, retryAfterSeconds, secondsUntil, sfString, type LimitRefusal } from '../../src/http/rate-limit-headers.js'

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0)

function limit(name: string, values: Partial<Omit<LimitState, 'name'>> = {}): LimitState {
  return { policy: 'free', name, limit: 10, remaining: 10, resetAt: new Date(NOW), windowMs: 1000, ...values }
}

type Item = { value: string; params: Record<string, number> }

/**
 * An RFC 9651 List parser for what these fields may hold (sf-string items with integer parameters),
 * written from the spec's parsing algorithm (section 4.2) and independent of the serialiser under test.
 * Throws where a conforming parser fails the field.
 */
function parseList(input: string): Item[] {
  let i = 0
  const fail = (why: string): never => {
    throw new Error(`${why} at ${i} in ${JSON.stringify(input)}`)
  }
  const skipSp = () => {
    while (input[i] === ' ') i++
  }
  const skipOws = () => {
    while (input[i] === ' ' || input[i] === '\t') i++
  }
  const parseString = (): string => {
    if (input[i] !== '"') fail('expected a string')
    i++
    let out = ''
    for (;;) {
      const char = input[i++]
      if (char === undefined) fail('unterminated string')
      if (char === '\\') {
        const next = input[i++]
        if (next !== '"' && next !== '\\') fail('bad escape')
        out += next
      } else if (char === '"') return out
      else if (char! < ' ' || char! > '~') fail('character outside sf-string')
      else out += char
    }
  }
  const parseInteger = (): number => {
    const match = /^-?[0-9]{1,15}/.exec(input.slice(i))
    if (!match) fail('expected an integer')
    if (input[i + match![0].length] === '.') fail('a decimal, not an integer')
    i += match![0].length
    return Number(match![0])
  }
  const items: Item[] = []
  skipSp()
  while (i < input.length) {
    const value = parseString()
    const params: Record<string, number> = {}
    while (input[i] === ';') {
      i++
      skipSp()
      const key = /^[a-z*][a-z0-9_.*-]*/.exec(input.slice(i))?.[0] ?? fail('expected a key')
      i += key.length
      if (input[i] !== '=') fail('expected a value (bare true is not used here)')
      i++
      params[key] = parseInteger()
    }
    items.push({ value, params })
    skipOws()
    if (i >= input.length) return items
    if (input[i] !== ',') fail('expected a comma')
    i++
    skipOws()
    if (i >= input.length) fail('trailing comma')
  }
  return items
}

describe('rateLimitHeaders', () => {
  it('sends no fields for a key without limits', () => {
    expect(rateLimitHeaders([], NOW)).toEqual({})
  })

  it('serialises one limit exactly as the draft shows it', () => {
    expect(rateLimitHeaders([limit('burst', { remaining: 0, resetAt: new Date(NOW + 100) })], NOW)).toEqual({
      'RateLimit-Policy': '"burst";q=10;w=1',
      RateLimit: '"burst";r=0;t=1',
    })
  })

  it('lists several limits as comma-separated members, in the order given', () => {
    const headers = rateLimitHeaders(
      [
        limit('burst', { limit: 10, remaining: 7, resetAt: new Date(NOW + 100), windowMs: 1000 }),
        limit('daily', { limit: 1000, remaining: 997, resetAt: new Date(NOW + 43_200_000), windowMs: 86_400_000 }),
        limit('month:v2', { limit: 50_000, remaining: 0, resetAt: new Date(NOW + 1), windowMs: 2_592_000_000 }),
      ],
      NOW,
    )
    expect(headers).toEqual({
      'RateLimit-Policy': '"burst";q=10;w=1, "daily";q=1000;w=86400, "month:v2";q=50000;w=2592000',
      RateLimit: '"burst";r=7;t=1, "daily";r=997;t=43200, "month:v2";r=0;t=1',
    })
  })

  it.each([
    ['exactly now', 0, 0],
    ['in the past', -5_000, 0],
    ['1 ms ahead', 1, 1],
    ['exactly 1 s ahead', 1_000, 1],
    ['1001 ms ahead', 1_001, 2],
    ['59.999 s ahead', 59_999, 60],
  ])('rounds t up and never below 0: reset %s', (_, offsetMs, t) => {
    expect(rateLimitHeaders([limit('burst', { resetAt: new Date(NOW + offsetMs) })], NOW).RateLimit).toBe(`"burst";r=10;t=${t}`)
  })

  it.each([
    [250, 1],
    [1_000, 1],
    [1_500, 2],
    [60_000, 60],
  ])('gives a window of %i ms as w=%i (whole seconds, rounded up)', (windowMs, w) => {
    expect(rateLimitHeaders([limit('x', { windowMs })], NOW)['RateLimit-Policy']).toBe(`"x";q=10;w=${w}`)
  })

  it('escapes " and \\ in names as RFC 9651 requires', () => {
    const headers = rateLimitHeaders([limit('a"b\\c')], NOW)
    expect(headers['RateLimit-Policy']).toBe('"a\\"b\\\\c";q=10;w=1')
    expect(parseList(headers['RateLimit-Policy']!)[0]!.value).toBe('a"b\\c')
  })

  it('leaves out a member whose name has no sf-string form, and keeps the others', () => {
    const headers = rateLimitHeaders([limit('bad\r\nSet-Cookie: x'), limit('caf\u00e9'), limit('ok')], NOW)
    expect(headers).toEqual({ 'RateLimit-Policy': '"ok";q=10;w=1', RateLimit: '"ok";r=10;t=0' })
    expect(rateLimitHeaders([limit('\u0000')], NOW)).toEqual({})
  })

  it('keeps every number a valid sf-integer', () => {
    const headers = rateLimitHeaders([limit('huge', { limit: 1e20, remaining: Number.NaN, resetAt: new Date(Number.NaN), windowMs: Infinity })], NOW)
    expect(parseList(headers['RateLimit-Policy']!)).toEqual([{ value: 'huge', params: { q: 999_999_999_999_999, w: 999_999_999_999_999 } }])
    expect(parseList(headers.RateLimit!)).toEqual([{ value: 'huge', params: { r: 0, t: 0 } }])
  })

  it('produces fields an RFC 9651 parser reads back to the same names and numbers, for any printable name', () => {
    const state = fc.record({
      name: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), minLength: 1, maxLength: 20 }),
      limit: fc.integer({ min: 1, max: 1e9 }),
      remaining: fc.integer({ min: 0, max: 1e9 }),
      resetOffsetMs: fc.integer({ min: -1e6, max: 1e10 }),
      windowMs: fc.integer({ min: 1, max: 3.2e12 }),
    })
    fc.assert(
      fc.property(fc.array(state, { minLength: 1, maxLength: 5 }), (states) => {
        const limits = states.map((s) => limit(s.name, { limit: s.limit, remaining: s.remaining, resetAt: new Date(NOW + s.resetOffsetMs), windowMs: s.windowMs }))
        const headers = rateLimitHeaders(limits, NOW)
        expect(parseList(headers['RateLimit-Policy']!)).toEqual(
          states.map((s) => ({ value: s.name, params: { q: s.limit, w: Math.ceil(s.windowMs / 1000) } })),
        )
        expect(parseList(headers.RateLimit!)).toEqual(
          states.map((s) => ({ value: s.name, params: { r: s.remaining, t: Math.max(0, Math.ceil(s.resetOffsetMs / 1000)) } })),
        )
      }),
      { numRuns: 500 },
    )
  })

  it('the test parser itself refuses what a conforming parser refuses', () => {
    for (const bad of ['burst;q=1', '"a";q=1.5', '"a", ', '"a\\x"', '"a";q', '"unterminated']) expect(() => parseList(bad), bad).toThrow()
  })
})

describe('sfString and secondsUntil', () => {
  it('quote and escape, or refuse', () => {
    expect(sfString('burst')).toBe('"burst"')
    expect(sfString('')).toBe('""')
    expect(sfString('\\"')).toBe('"\\\\\\""')
    expect(sfString('\t')).toBeNull()
    expect(sfString('\u007f')).toBeNull()
  })

  it('count whole seconds rounded up, never negative', () => {
    expect(secondsUntil(NOW + 1, NOW)).toBe(1)
    expect(secondsUntil(new Date(NOW + 2_000), NOW)).toBe(2)
    expect(secondsUntil(NOW - 1, NOW)).toBe(0)
  })
})

describe('retryAfterSeconds', () => {
  const rateLimited = (retryAfterMs: number, limits: LimitState[], violated: string[]): LimitRefusal => ({
    valid: false,
    reason: 'rate_limited',
    keyId: 'k',
    retryAfterMs,
    limits,
    violated,
  })
  const usageExceeded = (refillAt: Date | null): LimitRefusal => ({ valid: false, reason: 'usage_exceeded', keyId: 'k', credits: { remaining: 0, refillAt }, limits: [] })

  it.each([
    [1, 1],
    [334, 1],
    [1_000, 1],
    [1_001, 2],
    [43_199_500, 43_200],
  ])('rounds retryAfterMs %i up to %i s', (ms, seconds) => {
    expect(retryAfterSeconds(rateLimited(ms, [limit('burst', { resetAt: new Date(NOW) })], ['burst']), NOW)).toBe(seconds)
  })

  it('is never earlier than the reset of a violated limit, and ignores limits that were not violated', () => {
    const limits = [limit('burst', { resetAt: new Date(NOW + 100) }), limit('daily', { resetAt: new Date(NOW + 3_600_000) }), limit('monthly', { resetAt: new Date(NOW + 9e9) })]
    expect(retryAfterSeconds(rateLimited(200, limits, ['burst', 'daily']), NOW)).toBe(3_600)
    expect(retryAfterSeconds(rateLimited(200, limits, ['burst']), NOW)).toBe(1)
  })

  it('is at least 1 even when the core says 0', () => {
    expect(retryAfterSeconds(rateLimited(0, [limit('burst', { resetAt: new Date(NOW - 10) })], ['burst']), NOW)).toBe(1)
  })

  it('counts until the refill for spent credits, and is null without one', () => {
    expect(retryAfterSeconds(usageExceeded(new Date(NOW + 2_500)), NOW)).toBe(3)
    expect(retryAfterSeconds(usageExceeded(new Date(NOW + 30 * 86_400_000)), NOW)).toBe(2_592_000)
    expect(retryAfterSeconds(usageExceeded(new Date(NOW - 1)), NOW)).toBe(1)
    expect(retryAfterSeconds(usageExceeded(null), NOW)).toBeNull()
  })
})
