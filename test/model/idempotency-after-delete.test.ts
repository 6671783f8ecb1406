/**
 * Regression tests for a bug the model-based tests found: deleting a key erased the only trace of its
 * idempotency key, so a later create with the same idempotency key derived the same ID and secret and
 * created the key again, handing back the token the key was issued with, even after that secret was
 * rotated away and after the 24-hour replay window. The delete's audit entry now closes it: a replay
 * answers `idempotency_conflict`.
 */
import { describe, expect, it } from 'vitest'
import { DAY, setup } from '../helpers.js'

const IDEMPOTENCY_KEY = 'model-regression-key-0001'
const INPUT = { name: 'CI', ownerId: 'u1', environment: 'live', idempotencyKey: IDEMPOTENCY_KEY }

describe('idempotent create after the key was deleted', () => {
  it('never brings back a secret that was rotated away', async () => {
    const { keys } = setup()
    const first = await keys.create(INPUT)
    await keys.rotate(first.key.id) // e.g. because the token leaked
    await keys.delete(first.key.id)
    await expect(keys.create(INPUT)).rejects.toMatchObject({ code: 'idempotency_conflict' }) // a late retry
    expect(await keys.verify(first.token)).toMatchObject({ valid: false })
  })

  it('does not hand out the first token again after the 24-hour window', async () => {
    const { keys, time } = setup()
    const first = await keys.create(INPUT)
    await keys.delete(first.key.id)
    time.advance(2 * DAY)
    await expect(keys.create(INPUT)).rejects.toMatchObject({ code: 'idempotency_conflict' })
    expect(await keys.verify(first.token)).toMatchObject({ valid: false })
  })
})
