import { describe, expect, it } from 'vitest'
import { ValidationError } from '../../src/index.js'
import { setup } from '../helpers.js'

describe('key ID + secret', () => {
  it('splitToken and joinToken round-trip, with the checksum recomputed', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'test' })
    const pair = keys.splitToken(token)!
    expect(pair).toEqual({ keyId: key.id, secret: expect.stringMatching(/^[0-9A-Za-z]{32}$/), environment: 'test' })
    expect(token).toContain(pair.secret)
    expect(keys.joinToken(pair)).toBe(token)
  })

  it('splitToken answers null for anything that is not a well-formed token', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    const last = token.at(-1)!
    for (const bad of ['', 'nonsense', token.slice(0, -1) + (last === 'a' ? 'b' : 'a'), 42 as never, null as never]) expect(keys.splitToken(bad)).toBeNull()
  })

  it('joinToken needs the environment when more than one is configured, and names every bad part', () => {
    const { keys } = setup()
    const pair = { keyId: 'Ab3dEf6hIj9kLm2n', secret: 'Zx8cVb7nMq6wEr5tYu4iOp3aSd2fGh1j' }
    expect(() => keys.joinToken(pair)).toThrow(ValidationError)
    const error = (() => {
      try {
        keys.joinToken({ keyId: 'short', secret: 'has spaces in it', environment: 'prod' })
      } catch (caught) {
        return caught as ValidationError
      }
    })()!
    expect(error.issues.map((issue) => issue.path[0])).toEqual(['keyId', 'secret', 'environment'])
    expect(error.message).not.toContain('has spaces')
    const single = setup({ environments: ['live'] }).keys
    expect(single.joinToken(pair)).toMatch(/^acme_live_Ab3dEf6hIj9kLm2n_Zx8c/)
  })

  it('verify accepts { keyId, secret } and checks it exactly like the token', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live', roles: ['readonly'] })
    const { keyId, secret } = keys.splitToken(token)!
    expect(await keys.verify({ keyId, secret }, { scopes: ['data:read'] })).toMatchObject({ valid: true, key: { id: key.id } })
    expect(await keys.verify({ keyId, secret }, { scopes: ['data:write'] })).toMatchObject({ valid: false, reason: 'insufficient_scope' })
    expect(await keys.verify({ keyId, secret }, { environment: 'test' })).toMatchObject({ valid: false, reason: 'wrong_environment' })
    const wrong = secret.slice(0, -1) + (secret.endsWith('a') ? 'b' : 'a')
    expect(await keys.verify({ keyId, secret: wrong })).toMatchObject({ valid: false, reason: 'wrong_secret' })
    expect(await keys.verify({ keyId: 'Unknown000000000', secret })).toMatchObject({ valid: false, reason: 'unknown_key' })
    await keys.disable(key.id)
    expect(await keys.verify({ keyId, secret })).toMatchObject({ valid: false, reason: 'disabled' })
  })

  it('verify rejects a malformed pair as malformed, without a store read', async () => {
    const { keys } = setup()
    for (const bad of [{ keyId: 'x', secret: 'y' }, { keyId: 'Ab3dEf6hIj9kLm2n' }, { keyId: 'Ab3dEf6hIj9kLm2n', secret: 'Zx8cVb7nMq6wEr5tYu4iOp3aSd2fGh1!' }, {}]) {
      expect(await keys.verify(bad as never)).toMatchObject({ valid: false, reason: 'malformed', keyId: null })
    }
  })

  it('a pair of a rotated key works during the grace period only', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    await keys.rotate(key.id, { gracePeriod: '1m' })
    const old = keys.splitToken(token)!
    expect((await keys.verify(old)).valid).toBe(true)
    time.advance(60_000)
    expect(await keys.verify(old)).toMatchObject({ valid: false, reason: 'wrong_secret' })
  })

  it('a pair verifies on the one-round-trip path of a limited key too', async () => {
    const { keys } = setup({ limits: { policies: { basic: { rate: [{ name: 'second', limit: 100, window: '1s' }] } }, defaultPolicy: 'basic' } })
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    const pair = keys.splitToken(token)!
    for (let i = 0; i < 3; i++) expect((await keys.verify(pair)).valid).toBe(true)
    const wrong = { keyId: pair.keyId, secret: pair.secret.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')) }
    expect(await keys.verify(wrong)).toMatchObject({ valid: false, reason: 'wrong_secret' })
  })
})
