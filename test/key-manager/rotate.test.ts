import { describe, expect, it } from 'vitest'
import { ValidationError } from '../../src/index.js'
import { DAY, recordEvents, rejectionOf, setup } from '../helpers.js'

describe('rotate', () => {
  it('keeps the key ID and settings, issues a new secret and stops the old one at once by default', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', scopes: ['a'], ownerId: 'u1', metadata: { m: 1 } })
    time.advance(1000)
    const rotated = await keys.rotate(key.id)
    expect(rotated.key).toEqual({ ...key, start: rotated.token.split('_')[3]!.slice(0, 4), updatedAt: new Date(time.now), version: key.version + 1 })
    expect(rotated.token).not.toBe(token)
    expect(rotated.previousSecretValidUntil).toBeNull()
    expect(keys.parseToken(rotated.token)).toEqual({ prefix: 'acme', environment: 'live', keyId: key.id })
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })
    expect((await keys.verify(rotated.token)).valid).toBe(true)
  })

  it('keeps the old secret valid until exactly the end of the grace period', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const rotated = await keys.rotate(key.id, { gracePeriod: '1h' })
    const graceEnd = time.now + 3_600_000
    expect(rotated.previousSecretValidUntil).toEqual(new Date(graceEnd))
    time.set(graceEnd - 1)
    expect((await keys.verify(token)).valid).toBe(true)
    expect((await keys.verify(rotated.token)).valid).toBe(true)
    time.set(graceEnd)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })
    expect((await keys.verify(rotated.token)).valid).toBe(true)
  })

  it('keeps at most one old secret alive', async () => {
    const { keys } = setup()
    const { key, token: first } = await keys.create({ name: 'x', environment: 'live' })
    const { token: second } = await keys.rotate(key.id, { gracePeriod: '1d' })
    const { token: third } = await keys.rotate(key.id, { gracePeriod: '1d' })
    expect(await keys.verify(first)).toMatchObject({ reason: 'wrong_secret' })
    expect((await keys.verify(second)).valid).toBe(true)
    expect((await keys.verify(third)).valid).toBe(true)
    await keys.rotate(key.id)
    expect(await keys.verify(third)).toMatchObject({ reason: 'wrong_secret' })
  })

  it('applies every other check to the old secret during grace', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.rotate(key.id, { gracePeriod: '1d' })
    await keys.disable(key.id)
    expect(await keys.verify(token)).toMatchObject({ reason: 'disabled' })
    await keys.revoke(key.id)
    expect(await keys.verify(token)).toMatchObject({ reason: 'wrong_secret' })
  })

  it('leaves exactly one current secret when rotations race', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const results = await Promise.all(Array.from({ length: 10 }, () => keys.rotate(key.id, { gracePeriod: '1d' })))
    const valid = await Promise.all(results.map(async ({ token }) => (await keys.verify(token)).valid))
    // One current secret and at most one secret in grace.
    expect(valid.filter(Boolean).length).toBeLessThanOrEqual(2)
    expect(valid[valid.length - 1]).toBe(true)
  })

  it('loses nothing when a disable races a rotate', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const [rotated] = await Promise.all([keys.rotate(key.id), keys.disable(key.id)])
    expect((await keys.get(key.id))!.enabled).toBe(false)
    await keys.enable(key.id)
    expect((await keys.verify(rotated.token)).valid).toBe(true)
  })

  it('emits rotated with the end of the grace period', async () => {
    const { keys, time } = setup()
    const events = recordEvents(keys, ['rotated'])
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    await keys.rotate(key.id, { gracePeriod: '15m' })
    await keys.rotate(key.id)
    expect(events).toEqual([
      expect.objectContaining({ type: 'rotated', previousSecretValidUntil: new Date(time.now + 900_000) }),
      expect.objectContaining({ type: 'rotated', previousSecretValidUntil: null }),
    ])
  })

  it.each([[{ gracePeriod: -1 }], [{ gracePeriod: '1 day' }], [{ grace: '1d' }]])('rejects %j', async (options) => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const error = await rejectionOf(keys.rotate(key.id, options as never))
    expect(error).toBeInstanceOf(ValidationError)
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('rotates an expired key without reviving it', async () => {
    const { keys, time } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1d' })
    time.advance(2 * DAY)
    const { token } = await keys.rotate(key.id)
    expect(await keys.verify(token)).toMatchObject({ reason: 'expired' })
  })
})

describe('rotate: bounded grace period (security review, finding 6)', () => {
  it('refuses a grace period beyond rotation.maxGracePeriod (default 7 days) and changes nothing', async () => {
    const { keys, store } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const before = await store.get(key.id)
    for (const gracePeriod of ['36500d', '8d', 7 * DAY + 1] as const) {
      const error = await rejectionOf(keys.rotate(key.id, { gracePeriod }))
      expect(error).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).field).toBe('gracePeriod')
    }
    expect(await store.get(key.id)).toEqual(before)
    expect((await keys.verify(token)).valid).toBe(true)
    expect((await keys.rotate(key.id, { gracePeriod: '7d' })).previousSecretValidUntil).not.toBeNull()
  })

  it('takes the maximum from the rotation option', async () => {
    const { keys, time } = setup({ rotation: { maxGracePeriod: '30d' } })
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    expect((await keys.rotate(key.id, { gracePeriod: '30d' })).previousSecretValidUntil).toEqual(new Date(time.now + 30 * DAY))
    await expect(keys.rotate(key.id, { gracePeriod: '31d' })).rejects.toBeInstanceOf(ValidationError)
  })

  it('never keeps the old secret past the key\'s own expiry', async () => {
    const { keys, store, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '2d' })
    const rotated = await keys.rotate(key.id, { gracePeriod: '7d' })
    expect(rotated.previousSecretValidUntil).toEqual(key.expiresAt)
    expect((await store.get(key.id))!.previousHashExpiresAt).toBe(key.expiresAt!.getTime())
    time.set(key.expiresAt!.getTime() - 1)
    expect((await keys.verify(token)).valid).toBe(true)
    // Extending the key afterwards does not bring the old secret's grace back.
    await keys.update(key.id, { expiresIn: '90d' })
    time.set(key.expiresAt!.getTime())
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })
    expect((await keys.verify(rotated.token)).valid).toBe(true)
  })
})
