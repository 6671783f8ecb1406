import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { crc32 } from '../../src/token/crc32.js'
import { encodeBase62 } from '../../src/token/base62.js'
import { TokenParser, formatToken, tokenPatternSource } from '../../src/token/format.js'
import { setup } from '../helpers.js'

describe('crc32', () => {
  it('matches the IEEE reference values', () => {
    expect(crc32('')).toBe(0)
    expect(crc32('123456789')).toBe(0xcbf43926)
    expect(crc32('The quick brown fox jumps over the lazy dog')).toBe(0x414fa339)
  })
})

describe('base62', () => {
  it('encodes with padding and covers the whole 32-bit range in 6 characters', () => {
    expect(encodeBase62(0, 6)).toBe('000000')
    expect(encodeBase62(61, 2)).toBe('0z')
    expect(encodeBase62(62, 2)).toBe('10')
    expect(encodeBase62(0xffffffff, 6)).toHaveLength(6)
  })
})

describe('token format', () => {
  const parser = new TokenParser('acme', ['live', 'test'])
  const parts = { prefix: 'acme', environment: 'live', keyId: 'AbCdEfGh01234567', secret: 'S'.repeat(32) }

  it('round-trips through the parser', () => {
    const token = formatToken(parts)
    expect(token).toMatch(/^acme_live_AbCdEfGh01234567_S{32}[0-9A-Za-z]{6}$/)
    expect(parser.parse(token)).toEqual(parts)
  })

  it('is one word (a double-click selects all of it) and legal after Bearer without quoting', () => {
    const token = formatToken(parts)
    expect(token).toMatch(/^\w+$/)
    expect(token).toMatch(/^[A-Za-z0-9\-._~+/]+=*$/) // RFC 6750 b64token
  })

  it('rejects every single-character substitution through the checksum or the format', () => {
    const token = formatToken(parts)
    for (let i = 0; i < token.length; i++) {
      const replacement = token[i] === 'x' ? 'y' : 'x'
      expect(parser.parse(token.slice(0, i) + replacement + token.slice(i + 1))).toBeNull()
    }
  })

  it('rejects adjacent transpositions', () => {
    const token = formatToken(parts)
    for (let i = 11; i < token.length - 1; i++) {
      if (token[i] === token[i + 1]) continue
      const swapped = token.slice(0, i) + token[i + 1] + token[i] + token.slice(i + 2)
      expect(parser.parse(swapped)).toBeNull()
    }
  })

  it('rejects tokens of other prefixes and environments even with a valid checksum', () => {
    expect(parser.parse(formatToken({ ...parts, prefix: 'other' }))).toBeNull()
    expect(parser.parse(formatToken({ ...parts, environment: 'prod' }))).toBeNull()
  })

  it('rejects look-alikes, whitespace and oversized input', () => {
    const token = formatToken(parts)
    for (const candidate of [
      token.replace('a', '\u0430'), // Cyrillic a
      token.replace('_', '\uff3f'), // fullwidth low line
      `${token} `,
      `\t${token}`,
      token + '\u0000',
      token.repeat(2),
      'acme_live_' + 'A'.repeat(10_000),
    ]) {
      expect(parser.parse(candidate)).toBeNull()
    }
  })

  it('publishes a scanner pattern that finds issued tokens in text', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'test' })
    const text = `config: API_KEY="${token}" # leaked`
    expect(text.match(new RegExp(keys.tokenPattern, 'g'))).toEqual([token])
    expect('acme_live_short'.match(keys.tokenPattern)).toBeNull()
  })

  it('parses public parts without the secret', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'test' })
    expect(keys.parseToken(token)).toEqual({ prefix: 'acme', environment: 'test', keyId: key.id })
    expect(keys.parseToken('garbage')).toBeNull()
  })

  it('handles environments of different lengths, including one that prefixes another', () => {
    const multi = new TokenParser('acme', ['dev', 'develop', 'x'])
    for (const environment of ['dev', 'develop', 'x']) {
      const token = formatToken({ ...parts, environment })
      expect(multi.parse(token)).toEqual({ ...parts, environment })
    }
    expect(multi.parse(formatToken({ ...parts, environment: 'deve' }))).toBeNull()
    expect(multi.parse(formatToken({ ...parts, environment: 'live' }))).toBeNull()
  })

  it('accepts exactly what the published pattern matches with a valid checksum (differential, fast-check)', () => {
    const environments = ['live', 'test', 'staging']
    const multi = new TokenParser('acme', environments)
    const anchored = new RegExp(`^${tokenPatternSource('acme', environments)}$`)
    const reference = (candidate: string) =>
      anchored.test(candidate) && encodeBase62(crc32(candidate.slice(0, -6)), 6) === candidate.slice(-6)
    const base62 = fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_ -\u0430\u00e9'.split(''))
    const valid = fc
      .record({
        environment: fc.constantFrom(...environments, 'prod', 'liv'),
        keyId: fc.string({ unit: base62, minLength: 15, maxLength: 17 }),
        secret: fc.string({ unit: base62, minLength: 31, maxLength: 33 }),
      })
      .map((candidate) => formatToken({ prefix: 'acme', ...candidate }))
    // Well-formed tokens, then the same with one character changed, dropped or added anywhere.
    const mutated = fc.tuple(valid, fc.nat(), base62, fc.constantFrom('replace', 'drop', 'insert', 'keep')).map(([token, at, character, how]) => {
      const i = at % token.length
      if (how === 'keep') return token
      if (how === 'drop') return token.slice(0, i) + token.slice(i + 1)
      return token.slice(0, i) + character + token.slice(how === 'replace' ? i + 1 : i)
    })
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string({ maxLength: 90 })), (candidate) => {
        expect(multi.parse(candidate) !== null).toBe(reference(candidate))
      }),
      { numRuns: 20_000 },
    )
  })
})
