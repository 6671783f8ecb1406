import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ConflictError, StoreError, ValidationError, type CreateKeyInput, type KeyStore, type StoredKey } from '../../src/index.js'
import { DAY, recordEvents, rejectionOf, setup } from '../helpers.js'

const IDEMPOTENCY_KEY = '6f1c2b8e-3d4a-4f5b-9c7d-0e1f2a3b4c5d'

/**
 * A real MemoryStore whose next insert or update is applied and then reported as failed: the
 * ambiguous failure of a cut connection after the commit.
 */
function storeThatLosesAnswers() {
  const inner = new MemoryStore()
  const lose = { insert: 0, update: 0 }
  const store: KeyStore = Object.assign(Object.create(inner) as KeyStore, {
    async insert(record: StoredKey, quota: Parameters<KeyStore['insert']>[1]) {
      const outcome = await inner.insert(record, quota)
      if (lose.insert > 0 && outcome === 'inserted') {
        lose.insert--
        throw new Error('connection reset after commit')
      }
      return outcome
    },
    async update(record: StoredKey, expectedVersion: number) {
      const outcome = await inner.update(record, expectedVersion)
      if (lose.update > 0 && outcome === 'updated') {
        lose.update--
        throw new Error('connection reset after commit')
      }
      return outcome
    },
  })
  return { store, inner, lose }
}

describe('idempotent create', () => {
  it('returns the same key and token on a retry, creates one key and emits one created event', async () => {
    const { keys } = setup()
    const events = recordEvents(keys, ['created'])
    const input = { name: 'CI', ownerId: 'u1', environment: 'live', scopes: ['data:read'], idempotencyKey: IDEMPOTENCY_KEY }
    const first = await keys.create(input)
    const second = await keys.create(input)
    expect(second.token).toBe(first.token)
    expect(second.key).toEqual(first.key)
    expect((await keys.list({ ownerId: 'u1' })).items).toHaveLength(1)
    expect(events).toHaveLength(1)
    expect(await keys.verify(second.token)).toMatchObject({ valid: true })
  })

  it('recovers from an ambiguous failure: the retry returns the committed key, nothing twice, quota counted once', async () => {
    const { store, lose } = storeThatLosesAnswers()
    const { keys } = setup({ store, maxKeysPerOwner: 1 })
    lose.insert = 1
    const input = { name: 'CI', ownerId: 'u1', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }
    const failure = await rejectionOf(keys.create(input))
    expect(failure).toBeInstanceOf(StoreError) // no token was handed out
    const retried = await keys.create(input)
    expect(await keys.verify(retried.token)).toMatchObject({ valid: true, key: { id: retried.key.id } })
    expect((await keys.list({ ownerId: 'u1' })).items.map((key) => key.id)).toEqual([retried.key.id])
    // The quota of 1 holds: another key is refused, another retry is still answered.
    await expect(keys.create({ ...input, idempotencyKey: `${IDEMPOTENCY_KEY}-2` })).rejects.toMatchObject({ code: 'quota_exceeded' })
    expect((await keys.create(input)).token).toBe(retried.token)
  })

  it('gives different keys to different owners, tenants and environments with the same idempotency key', async () => {
    const { keys } = setup()
    const tokens = await Promise.all(
      [
        { ownerId: 'u1', environment: 'live' },
        { ownerId: 'u2', environment: 'live' },
        { ownerId: 'u1', tenantId: 't1', environment: 'live' },
        { ownerId: 'u1', environment: 'test' },
      ].map(async (scope) => (await keys.create({ name: 'k', ...scope, idempotencyKey: IDEMPOTENCY_KEY })).token),
    )
    expect(new Set(tokens).size).toBe(4)
  })

  it('refuses the same idempotency key for a different request with an idempotency_conflict', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY })
    const error = await rejectionOf(keys.create({ name: 'Other', ownerId: 'u1', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }))
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({ code: 'idempotency_conflict', keyId: key.id })
    expect((error as Error).message).toBe('The idempotency key was already used for a different request')
  })

  it('replays for 24 hours, then refuses', async () => {
    const { keys, time } = setup()
    const input: CreateKeyInput = { name: 'CI', environment: 'live', expiresIn: '30d', idempotencyKey: IDEMPOTENCY_KEY }
    const first = await keys.create(input)
    time.advance(DAY) // exactly 24 h: still a replay, with the original expiry
    expect(await keys.create(input)).toEqual(first)
    time.advance(1)
    await expect(keys.create(input)).rejects.toMatchObject({ code: 'idempotency_conflict', message: 'The idempotency key was already used more than 24 hours ago' })
  })

  it('does not hand out a rotated-away secret through a replayed create', async () => {
    const { keys } = setup()
    const input = { name: 'CI', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }
    const first = await keys.create(input)
    await keys.rotate(first.key.id)
    await expect(keys.create(input)).rejects.toMatchObject({
      code: 'idempotency_conflict',
      message: 'The idempotency key was already used, and the key has been rotated since',
    })
  })

  it('refuses a retry after the key was deleted: the delete\'s audit entry keeps it deleted', async () => {
    const { keys } = setup()
    const input = { name: 'CI', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }
    const first = await keys.create(input)
    await keys.delete(first.key.id)
    await expect(keys.create(input)).rejects.toMatchObject({ code: 'idempotency_conflict', keyId: first.key.id })
    expect(await keys.get(first.key.id)).toBeNull()
    expect(await keys.verify(first.token)).toMatchObject({ valid: false, reason: 'unknown_key' })
  })

  it('creates the key again after a delete when the audit trail is off (no record of the delete is kept)', async () => {
    const { keys } = setup({ audit: false })
    const input = { name: 'CI', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }
    const first = await keys.create(input)
    await keys.delete(first.key.id)
    const again = await keys.create(input)
    expect(again.key.id).toBe(first.key.id)
  })

  it.each([
    ['too short', 'abc'],
    ['too long', 'x'.repeat(256)],
    ['with a space', 'abcdefgh ijklmnop'],
    ['non-ASCII', 'ключ-идемпотентности'],
    ['not a string', 42],
  ])('rejects an idempotency key that is %s, writing nothing', async (_label, idempotencyKey) => {
    const { keys } = setup()
    const error = await rejectionOf(keys.create({ name: 'CI', environment: 'live', idempotencyKey } as never))
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).field).toBe('idempotencyKey')
    expect((await keys.list()).items).toHaveLength(0)
  })

  it('needs a pepper, and says so', async () => {
    const { keys } = setup({ pepper: null })
    const error = await rejectionOf(keys.create({ name: 'CI', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }))
    expect(error).toBeInstanceOf(ValidationError)
    expect(error).toMatchObject({ field: 'idempotencyKey' })
    expect((error as Error).message).toContain('pepper')
    await expect(keys.rotate((await keys.create({ name: 'x', environment: 'live' })).key.id, { idempotencyKey: IDEMPOTENCY_KEY })).rejects.toBeInstanceOf(
      ValidationError,
    )
  })
})

describe('idempotent rotate', () => {
  it('returns the same token on a retry, rotates once and emits one rotated event', async () => {
    const { keys } = setup()
    const { key, token: original } = await keys.create({ name: 'CI', environment: 'live' })
    const events = recordEvents(keys, ['rotated'])
    const first = await keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })
    const second = await keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })
    expect(second.token).toBe(first.token)
    expect(second.previousSecretValidUntil).toBeNull()
    expect(events).toHaveLength(1)
    expect(await keys.verify(first.token)).toMatchObject({ valid: true })
    // Without a grace period the replaced secret stops at once, even though its hash is kept.
    expect(await keys.verify(original)).toMatchObject({ valid: false, reason: 'wrong_secret' })
  })

  it('recovers from an ambiguous failure without a second rotation, keeping the grace period of the first', async () => {
    const { store, lose } = storeThatLosesAnswers()
    const { keys, time } = setup({ store })
    const { key, token: original } = await keys.create({ name: 'CI', environment: 'live' })
    lose.update = 1
    const graceEnd = new Date(time.now + 3_600_000)
    expect(await rejectionOf(keys.rotate(key.id, { gracePeriod: '1h', idempotencyKey: IDEMPOTENCY_KEY }))).toBeInstanceOf(StoreError)
    time.advance(60_000)
    const retried = await keys.rotate(key.id, { gracePeriod: '1h', idempotencyKey: IDEMPOTENCY_KEY })
    expect(retried.previousSecretValidUntil).toEqual(graceEnd) // the first rotation's, not a minute later
    expect(await keys.verify(retried.token)).toMatchObject({ valid: true })
    expect(await keys.verify(original)).toMatchObject({ valid: true }) // still in the first rotation's grace
    time.advance(3_600_000 - 60_000)
    expect(await keys.verify(original)).toMatchObject({ valid: false, reason: 'wrong_secret' })
    expect(await keys.verify(retried.token)).toMatchObject({ valid: true })
  })

  it('rotates anew, never back to an old secret, when retried after a later rotation', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    const a = await keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })
    const b = await keys.rotate(key.id, { idempotencyKey: `${IDEMPOTENCY_KEY}-b` })
    const staleRetry = await keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })
    expect(new Set([a.token, b.token, staleRetry.token]).size).toBe(3)
    for (const token of [a.token, b.token]) expect(await keys.verify(token)).toMatchObject({ valid: false })
    expect(await keys.verify(staleRetry.token)).toMatchObject({ valid: true })
  })

  it('still replays after an unrelated update of the key', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    const first = await keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })
    await keys.update(key.id, { name: 'renamed' })
    expect((await keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })).token).toBe(first.token)
  })

  it('refuses a revoked key as before', async () => {
    const { keys } = setup()
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    await keys.revoke(key.id)
    await expect(keys.rotate(key.id, { idempotencyKey: IDEMPOTENCY_KEY })).rejects.toMatchObject({ code: 'key_revoked' })
  })
})
