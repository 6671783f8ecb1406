import { describe, expect, it } from 'vitest'
import { createHash, createHmac } from 'node:crypto'
import { MemoryStore } from '../../adapters/memory/index.js'
import { HashMatch, SecretHasher } from '../../src/crypto/hash.js'
import { constantTimeEqual, constantTimeEqualAt } from '../../src/crypto/constant-time.js'
import { PEPPER, setup } from '../helpers.js'

const SECRET = 'k'.repeat(32)
const MESSAGE = `keywarden/v1\0live\0AbCdEfGh01234567\0${SECRET}`

describe('SecretHasher', () => {
  it('stores HMAC-SHA-256 keyed by the pepper, tagged with scheme and pepper ID (agrees with node:crypto)', () => {
    const hasher = new SecretHasher([{ id: 'p1', secret: PEPPER }])
    const expected = createHmac('sha256', PEPPER).update(MESSAGE).digest('hex')
    expect(hasher.hash('live', 'AbCdEfGh01234567', SECRET)).toBe(`kw1$hmac-sha256$p1$${expected}`)
  })

  it('falls back to plain SHA-256 without a pepper', () => {
    const hasher = new SecretHasher([])
    const expected = createHash('sha256').update(MESSAGE).digest('hex')
    expect(hasher.hash('live', 'AbCdEfGh01234567', SECRET)).toBe(`kw1$sha256$-$${expected}`)
    expect(hasher.peppered).toBe(false)
  })

  it('binds the hash to environment and key ID', () => {
    const hasher = new SecretHasher([{ id: 'p1', secret: PEPPER }])
    const stored = hasher.hash('live', 'AbCdEfGh01234567', SECRET)
    expect(hasher.compare(stored, 'live', 'AbCdEfGh01234567', SECRET)).toBe(HashMatch.Current)
    expect(hasher.compare(stored, 'test', 'AbCdEfGh01234567', SECRET)).toBe(HashMatch.None)
    expect(hasher.compare(stored, 'live', 'AbCdEfGh01234568', SECRET)).toBe(HashMatch.None)
  })

  it('verifies older peppers as stale and unknown ones not at all', () => {
    const old = new SecretHasher([{ id: 'old', secret: PEPPER }])
    const stored = old.hash('live', 'AbCdEfGh01234567', SECRET)
    const rotated = new SecretHasher([
      { id: 'new', secret: 'a-new-pepper-for-2027-0123456789' },
      { id: 'old', secret: PEPPER },
    ])
    expect(rotated.compare(stored, 'live', 'AbCdEfGh01234567', SECRET)).toBe(HashMatch.Stale)
    const retired = new SecretHasher([{ id: 'new', secret: 'a-new-pepper-for-2027-0123456789' }])
    expect(retired.compare(stored, 'live', 'AbCdEfGh01234567', SECRET)).toBe(HashMatch.None)
    expect(retired.compare('md5$whatever', 'live', 'AbCdEfGh01234567', SECRET)).toBe(HashMatch.None)
  })
})

describe('native and portable hashing', () => {
  it('give the same digests (node:crypto vs @noble/hashes), peppered or not', () => {
    const peppers = [{ id: 'p1', secret: PEPPER }, { id: 'p0', secret: new Uint8Array(40).fill(7) }]
    const native = new SecretHasher(peppers)
    const portable = new SecretHasher(peppers, { native: false })
    const plainNative = new SecretHasher([])
    const plainPortable = new SecretHasher([], { native: false })
    for (const secret of [SECRET, 'a'.repeat(32), '0123456789ABCDEFabcdef0123456789']) {
      const stored = native.hash('live', 'AbCdEfGh01234567', secret)
      expect(portable.hash('live', 'AbCdEfGh01234567', secret)).toBe(stored)
      expect(portable.compare(stored, 'live', 'AbCdEfGh01234567', secret)).toBe(HashMatch.Current)
      expect(plainPortable.hash('test', 'AbCdEfGh01234567', secret)).toBe(plainNative.hash('test', 'AbCdEfGh01234567', secret))
      const underOld = new SecretHasher([peppers[1]!], { native: false }).hash('live', 'AbCdEfGh01234567', secret)
      expect(native.compare(underOld, 'live', 'AbCdEfGh01234567', secret)).toBe(HashMatch.Stale)
    }
  })
})

describe('the one-shot HMAC (node:crypto.hash over prepared pads)', () => {
  const keys: Array<[string, string | Uint8Array]> = [
    ['a 29-byte ASCII pepper', PEPPER],
    ['a pepper of exactly one block (64 bytes)', 'b'.repeat(64)],
    ['a pepper longer than one block (hashed first)', 'c'.repeat(65)],
    ['a non-ASCII pepper', 'poivre-🌶️-é-0123456789abcdef'],
    ['a binary pepper with high bytes', new Uint8Array(48).map((_, i) => 255 - i)],
  ]
  for (const [label, secret] of keys) {
    it(`agrees with createHmac for ${label}`, () => {
      const hasher = new SecretHasher([{ id: 'p', secret }])
      const expected = createHmac('sha256', secret).update(MESSAGE).digest('hex')
      expect(hasher.hash('live', 'AbCdEfGh01234567', SECRET)).toBe(`kw1$hmac-sha256$p$${expected}`)
    })
  }

  it('gives the digest 0.1.0 stored, byte for byte (a fixed vector, not recomputed here)', () => {
    const hasher = new SecretHasher([{ id: 'default', secret: PEPPER }])
    const stored = 'kw1$hmac-sha256$default$62eade52b7b9080693b878cd0f266db11f5711aeb2e1039b00d8d1b071f0e31e'
    expect(hasher.hash('live', 'AbCdEfGh01234567', SECRET)).toBe(stored)
    expect(hasher.compare(stored, 'live', 'AbCdEfGh01234567', SECRET)).toBe(HashMatch.Current)
  })

  it('agrees with createHmac where Buffer has only write, no utf8Write or latin1Write (platforms other than node)', () => {
    const secrets = [SECRET, 'é'.repeat(20)]
    const expected = secrets.map((secret) => `kw1$hmac-sha256$p$${createHmac('sha256', PEPPER).update(`keywarden/v1\0live\0AbCdEfGh01234567\0${secret}`).digest('hex')}`)
    const writes: string[] = []
    const alloc = Buffer.alloc
    const prototype = Buffer.prototype as unknown as Record<'utf8Write' | 'latin1Write', (this: Buffer, text: string, offset: number) => number>
    Buffer.alloc = ((size: number) => {
      const buffer = alloc(size)
      // What such a platform offers: `write` with an encoding, and no writer per encoding.
      Object.defineProperties(buffer, {
        utf8Write: { value: undefined },
        latin1Write: { value: undefined },
        write: {
          value: (text: string, offset: number, encoding: 'utf8' | 'latin1') => {
            writes.push(encoding)
            return prototype[`${encoding}Write`].call(buffer, text, offset)
          },
        },
      })
      return buffer
    }) as typeof Buffer.alloc
    let hasher: SecretHasher
    try {
      hasher = new SecretHasher([{ id: 'p', secret: PEPPER }])
    } finally {
      Buffer.alloc = alloc
    }
    expect(secrets.map((secret) => hasher.hash('live', 'AbCdEfGh01234567', secret))).toEqual(expected)
    expect(writes).toEqual(['utf8', 'latin1', 'utf8', 'latin1'])
  })

  it('stays correct for a short message after a long one, and for one too long for its buffer', () => {
    const hasher = new SecretHasher([{ id: 'p', secret: PEPPER }])
    const long = 'L'.repeat(300)
    expect(hasher.hash('live', 'AbCdEfGh01234567', long)).toBe(
      `kw1$hmac-sha256$p$${createHmac('sha256', PEPPER).update(`keywarden/v1\0live\0AbCdEfGh01234567\0${long}`).digest('hex')}`,
    )
    const unicode = 'é'.repeat(80)
    expect(hasher.hash('live', 'AbCdEfGh01234567', unicode)).toBe(
      `kw1$hmac-sha256$p$${createHmac('sha256', PEPPER).update(`keywarden/v1\0live\0AbCdEfGh01234567\0${unicode}`).digest('hex')}`,
    )
    expect(hasher.hash('live', 'AbCdEfGh01234567', SECRET)).toBe(`kw1$hmac-sha256$p$${createHmac('sha256', PEPPER).update(MESSAGE).digest('hex')}`)
  })
})

describe('constantTimeEqual', () => {
  it('compares equal-length strings fully and refuses different lengths', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true)
    expect(constantTimeEqual('abc', 'abd')).toBe(false)
    expect(constantTimeEqual('abc', 'abcd')).toBe(false)
    expect(constantTimeEqual('', '')).toBe(true)
  })

  it('compares a suffix from an offset (constantTimeEqualAt)', () => {
    expect(constantTimeEqualAt('tag$abc', 4, 'abc')).toBe(true)
    expect(constantTimeEqualAt('tag$abc', 4, 'abd')).toBe(false)
    expect(constantTimeEqualAt('tag$abc', 3, 'abc')).toBe(false)
    expect(constantTimeEqualAt('tag$abc', 4, 'abcd')).toBe(false)
    expect(constantTimeEqualAt('tag$', 4, '')).toBe(true)
  })
})

describe('pepper rotation through the KeyManager', () => {
  it('keeps old keys working and re-hashes them to the current pepper on a successful verify', async () => {
    const store = new MemoryStore()
    const before = setup({ store, pepper: [{ id: 'v1', secret: PEPPER }] }).keys
    const { key, token } = await before.create({ name: 'x', environment: 'live' })
    expect((await store.get(key.id))!.hash.startsWith('kw1$hmac-sha256$v1$')).toBe(true)

    const during = setup({ store, pepper: [{ id: 'v2', secret: 'the-2027-pepper-0123456789abcdef' }, { id: 'v1', secret: PEPPER }] }).keys
    expect((await during.verify(token)).valid).toBe(true)
    expect((await store.get(key.id))!.hash.startsWith('kw1$hmac-sha256$v2$')).toBe(true)

    const after = setup({ store, pepper: [{ id: 'v2', secret: 'the-2027-pepper-0123456789abcdef' }] }).keys
    expect((await after.verify(token)).valid).toBe(true)
  })

  it('upgrades unpeppered hashes once a pepper is configured, in the opted-in migration window', async () => {
    const store = new MemoryStore()
    const plain = setup({ store, pepper: null }).keys
    const { key, token } = await plain.create({ name: 'x', environment: 'live' })
    expect((await store.get(key.id))!.hash.startsWith('kw1$sha256$-$')).toBe(true)
    const peppered = setup({ store, acceptUnpepperedHashes: true }).keys
    expect((await peppered.verify(token)).valid).toBe(true)
    expect((await store.get(key.id))!.hash.startsWith('kw1$hmac-sha256$default$')).toBe(true)
  })

  it('re-hashes a grace-period secret into the previous slot', async () => {
    const store = new MemoryStore()
    const before = setup({ store, pepper: [{ id: 'v1', secret: PEPPER }] }).keys
    const { key, token } = await before.create({ name: 'x', environment: 'live' })
    const { token: fresh } = await before.rotate(key.id, { gracePeriod: '1d' })
    const after = setup({ store, pepper: [{ id: 'v2', secret: 'the-2027-pepper-0123456789abcdef' }, { id: 'v1', secret: PEPPER }] }).keys
    expect((await after.verify(token)).valid).toBe(true)
    expect((await store.get(key.id))!.previousHash!.startsWith('kw1$hmac-sha256$v2$')).toBe(true)
    expect((await after.verify(fresh)).valid).toBe(true)
    expect((await after.verify(token)).valid).toBe(true)
  })
})
