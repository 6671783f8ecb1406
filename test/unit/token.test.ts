import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { crc32 } from '../../src/token/crc32.js'
import { encodeBase62 } from '../../src/token/base62.js'
import { TokenParser, formatToken } from '../../src/token/format.js'
import { secretScanningPatternSource, tokenPatternSource } from '../../src/token/scanning-pattern.js'
import { setup } from '../helpers.js'
import { readPublishedPattern } from '../scanning/published-pattern.js'

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

  it('keeps the checksum lead of tokenPattern to 0-4, the only first digits a CRC-32 has in base62', () => {
    const { keys } = setup()
    expect(encodeBase62(0xffffffff, 6)[0]).toBe('4')
    const body = `acme_live_${'k'.repeat(16)}_${'s'.repeat(32)}`
    expect(`${body}4zzzzz`).toMatch(keys.tokenPattern)
    expect(`${body}000000`).toMatch(keys.tokenPattern)
    for (const lead of '59AZaz') expect(`${body}${lead}00000`).not.toMatch(keys.tokenPattern)
  })

  it('publishes the secret-scanning regex of the example configuration in docs/security.md, word for word', () => {
    const { keys } = setup()
    const published = readPublishedPattern()
    expect(published.regex).toBe(keys.secretScanningPattern)
    // GitHub's three custom-pattern fields put back together are the same regex.
    const { 'Before secret': before, 'Secret format': format, 'After secret': after } = published.fields
    expect(`(${before})(${format})(${after})`).toBe(keys.secretScanningPattern)
  })

  it('gives the token, its environment and its edges as groups 2, 3 and 1/4, also for environments that prefix others', async () => {
    const { keys } = setup({ environments: ['dev', 'develop', 'x'] })
    const tokens = await Promise.all(['dev', 'develop', 'x'].map(async (environment) => (await keys.create({ name: 'x', environment })).token))
    const text = `a=%3D${tokens[0]}\n{"b":"\\n${tokens[1]}"}\n_${tokens[2]}_`
    const matches = [...text.matchAll(new RegExp(keys.secretScanningPattern, 'gm'))]
    // Compared as "is the token" flags: a failure message must not print tokens (the leak canary reads it).
    expect(matches.map((match, i) => [match[1], match[2] === tokens[i], match[3], match[4]])).toEqual([
      ['%3D', true, 'dev', '\n'],
      ['\\n', true, 'develop', '"'],
      ['_', true, 'x', '_'],
    ])
  })

  it('builds scanning patterns only from labels that are literal in every regex dialect', () => {
    expect(() => secretScanningPatternSource('ac.me', ['live'])).toThrow(TypeError)
    expect(() => tokenPatternSource('acme', ['li|ve'])).toThrow(TypeError)
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
