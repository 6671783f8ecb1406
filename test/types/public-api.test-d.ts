import { describe, expectTypeOf, it } from 'vitest'
import { KeyManager, type ApiKey, type Duration, type KeyStore, type VerifyFailureReason, type VerifyResult } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'

describe('public types', () => {
  const keys = new KeyManager({ store: new MemoryStore() })

  it('narrows the verify result on valid', async () => {
    const result = await keys.verify('token')
    expectTypeOf(result).toEqualTypeOf<VerifyResult>()
    if (result.valid) {
      expectTypeOf(result.key).toEqualTypeOf<ApiKey>()
      expectTypeOf(result.scopes).toEqualTypeOf<readonly string[]>()
    } else {
      expectTypeOf(result.reason).toEqualTypeOf<VerifyFailureReason>()
      expectTypeOf(result.keyId).toEqualTypeOf<string | null>()
    }
  })

  it('keeps the hash out of ApiKey and makes it read-only', () => {
    expectTypeOf<ApiKey>().not.toHaveProperty('hash')
    expectTypeOf<ApiKey>().not.toHaveProperty('secret')
    expectTypeOf<ApiKey['expiresAt']>().toEqualTypeOf<Date | null>()
  })

  it('accepts durations as strings with a unit or milliseconds, and rejects others', () => {
    expectTypeOf<'30d'>().toExtend<Duration>()
    expectTypeOf<5000>().toExtend<Duration>()
    expectTypeOf<'30 days'>().not.toExtend<Duration>()
    void keys.create({ name: 'x', expiresIn: '15m' })
    // @ts-expect-error a duration needs a known unit
    void keys.create({ name: 'x', expiresIn: '30 days' })
    // @ts-expect-error name is required
    void keys.create({ environment: 'live' })
  })

  it('types event payloads by name', () => {
    keys.on('rejected', (event) => {
      expectTypeOf(event.reason).toEqualTypeOf<VerifyFailureReason>()
    })
    keys.on('rotated', (event) => {
      expectTypeOf(event.previousSecretValidUntil).toEqualTypeOf<Date | null>()
    })
  })

  it('lets MemoryStore stand for any KeyStore', () => {
    expectTypeOf<MemoryStore>().toMatchTypeOf<KeyStore>()
  })
})
