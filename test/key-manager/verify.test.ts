import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { StoreError, ValidationError, type KeyStore, type VerifyFailureReason } from '../../src/index.js'
import { DAY, asyncReadStore, countingStore, forgeToken, recordEvents, setup } from '../helpers.js'

/** Flips one character of the secret part and recomputes nothing: the checksum no longer matches. */
function mistype(token: string): string {
  const index = token.length - 10
  const replacement = token[index] === 'a' ? 'b' : 'a'
  return token.slice(0, index) + replacement + token.slice(index + 1)
}

describe('verify', () => {
  it('accepts a valid token and returns the key and its effective scopes', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', scopes: ['a:b'], roles: ['readonly'] })
    const result = await keys.verify(token, { scopes: ['data:read'], environment: 'live' })
    expect(result).toEqual({ valid: true, key: { ...key, lastUsedAt: expect.any(Date) }, scopes: ['a:b', 'data:read'], limits: [], credits: null })
  })

  describe.each([
    ['getSync', () => new MemoryStore()],
    ['get', () => asyncReadStore()],
  ] as const)('each failure reason, the store read through %s', (_read, makeStore) => {
    const cases: [VerifyFailureReason, (ctx: Awaited<ReturnType<typeof prepare>>) => Promise<string> | string, object?][] = [
      ['malformed', () => 'not a token'],
      ['malformed', ({ token }) => mistype(token)],
      ['unknown_key', async ({ keys, key, token }) => {
        await keys.delete(key.id)
        return token
      }],
      ['wrong_secret', ({ key }) => forgeToken(key.id)],
      ['revoked', async ({ keys, key, token }) => {
        await keys.revoke(key.id)
        return token
      }],
      ['disabled', async ({ keys, key, token }) => {
        await keys.disable(key.id)
        return token
      }],
      ['expired', ({ time, token }) => {
        time.advance(90 * DAY)
        return token
      }],
      ['wrong_environment', ({ token }) => token, { environment: 'test' }],
      ['insufficient_scope', ({ token }) => token, { scopes: ['data:write'] }],
    ]

    async function prepare() {
      const context = setup({ store: makeStore() })
      const { key, token } = await context.keys.create({ name: 'x', environment: 'live', scopes: ['data:read'] })
      return { ...context, key, token }
    }

    it('valid', async () => {
      const { keys, key, token } = await prepare()
      const events = recordEvents(keys, ['rejected', 'verified'])
      const result = await keys.verify(token, { scopes: ['data:read'], environment: 'live' })
      expect(result).toEqual({ valid: true, key: { ...key, lastUsedAt: expect.any(Date) }, scopes: ['data:read'], limits: [], credits: null })
      expect(events).toEqual([{ type: 'verified', at: expect.any(Date), key: (result as { key: unknown }).key }])
    })

    it.each(cases)('%s', async (reason, makeToken, options) => {
      const context = await prepare()
      const events = recordEvents(context.keys, ['rejected', 'verified'])
      const token = await makeToken(context)
      const result = await context.keys.verify(token, options)
      expect(result.valid).toBe(false)
      expect(result).toMatchObject({ reason })
      expect(events).toEqual([{ type: 'rejected', at: expect.any(Date), reason, keyId: reason === 'malformed' ? null : context.key.id }])
    })
  })

  it('rejects malformed and mistyped tokens without touching the store', async () => {
    const { store, reads } = countingStore()
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const before = reads()
    const garbage = [
      '',
      'x',
      mistype(token),
      token + 'a',
      token.slice(0, -1),
      token.replace('acme_', 'other_'),
      token.replace('_live_', '_prod_'),
      token.toUpperCase(),
      ` ${token}`,
      `${token}\n`,
      'a'.repeat(100_000),
      token.replace('_', '-'),
    ]
    for (const candidate of garbage) expect(await keys.verify(candidate)).toEqual({ valid: false, reason: 'malformed', keyId: null })
    for (const candidate of [undefined, null, 42, {}, ['x']]) {
      expect(await keys.verify(candidate as never)).toMatchObject({ valid: false, reason: 'malformed' })
    }
    expect(reads()).toBe(before)
  })

  it('reads exactly one record for a well-formed token', async () => {
    const { store, reads } = countingStore()
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const before = reads()
    await keys.verify(token)
    expect(reads()).toBe(before + 1)
  })

  it('is valid at expiresAt - 1 ms and expired at expiresAt', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1h' })
    time.set(key.expiresAt!.getTime() - 1)
    expect((await keys.verify(token)).valid).toBe(true)
    time.set(key.expiresAt!.getTime())
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'expired' })
  })

  it('sees disable and enable at the next verify', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.disable(key.id)
    expect(await keys.verify(token)).toMatchObject({ reason: 'disabled' })
    await keys.enable(key.id)
    expect((await keys.verify(token)).valid).toBe(true)
  })

  it('checks revoked before disabled before expired before environment before scopes', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live', expiresIn: '1d' })
    const strict = { environment: 'test', scopes: ['nope'] }
    expect(await keys.verify(token, strict)).toMatchObject({ reason: 'wrong_environment' })
    time.advance(DAY)
    expect(await keys.verify(token, strict)).toMatchObject({ reason: 'expired' })
    await keys.disable(key.id)
    expect(await keys.verify(token, strict)).toMatchObject({ reason: 'disabled' })
    await keys.revoke(key.id)
    expect(await keys.verify(token, strict)).toMatchObject({ reason: 'revoked' })
  })

  it('reports wrong_secret, not revoked, for a wrong secret on a revoked key', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const { token: fresh } = await keys.rotate(key.id)
    await keys.revoke(key.id)
    expect(await keys.verify(token)).toMatchObject({ reason: 'wrong_secret' })
    expect(await keys.verify(fresh)).toMatchObject({ reason: 'revoked' })
  })

  it('does not accept a token of one manager in another with a different pepper', async () => {
    const store = new MemoryStore()
    const a = setup({ store })
    const b = setup({ store, pepper: 'a-completely-different-pepper!!' })
    const { token } = await a.keys.create({ name: 'x', environment: 'live' })
    expect(await b.keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })
  })

  it('records lastUsedAt on success, to the precision interval, without writing on the hot path', async () => {
    const { store, calls } = countingStore()
    const { keys, time } = setup({ store, lastUsedPrecision: '1m' })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    const first = await keys.verify(token)
    expect(first.valid && first.key.lastUsedAt).toEqual(new Date(time.now))
    time.advance(30_000)
    const second = await keys.verify(token)
    expect(second.valid && second.key.lastUsedAt).toEqual(new Date(time.now - 30_000))
    expect((await keys.get(key.id))!.lastUsedAt).toEqual(new Date(time.now - 30_000))
    time.advance(30_000)
    await keys.verify(token)
    expect((await keys.get(key.id))!.lastUsedAt).toEqual(new Date(time.now))
    expect(calls.touch ?? 0).toBe(0)
    await keys.flush()
    expect(calls.touch).toBe(1)
    expect((await store.get(key.id))!.lastUsedAt).toBe(time.now)
  })

  it('does not record use for a rejected token', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token, { scopes: ['nope'] })
    await keys.disable(key.id)
    await keys.verify(token)
    expect((await keys.get(key.id))!.lastUsedAt).toBeNull()
  })

  it.each([
    ['get', () => failingStore()],
    [
      'getSync',
      (): KeyStore => ({
        ...failingStore(),
        getSync: () => {
          throw new Error('SQLITE_IOERR: disk I/O error')
        },
      }),
    ],
  ] as const)('rejects with a StoreError, keeping the cause, when the store fails (read through %s)', async (_read, makeStore) => {
    const { keys } = setup({ store: makeStore() })
    const answer = keys.verify(forgeToken('0123456789abcdef', 'live', 'a'.repeat(32)))
    // A synchronous read that throws still rejects: verify never throws at its caller.
    expect(answer).toBeInstanceOf(Promise)
    const error = await answer.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'store_failed', operation: 'get' })
    expect((error as StoreError).cause).toBeInstanceOf(Error)
    expect((error as StoreError).message).not.toContain('aaaa')
  })

  it.each([
    [{ scopes: 'data:read' }, 'scopes'],
    [{ scopes: [1] }, 'scopes'],
    [{ environment: 5 }, 'environment'],
    [null, ''],
  ])('throws a ValidationError for the options %j', async (options, field) => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live', scopes: ['data:read'] })
    const error = await keys.verify(token, options as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).field).toBe(field)
  })

  it('rejects (never throws synchronously) when reading the options throws', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    const options = Object.defineProperty({}, 'scopes', { enumerable: true, get: () => { throw new Error('boom') } })
    const pending = keys.verify(token, options as never)
    expect(pending).toBeInstanceOf(Promise)
    const error = await pending.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as Error).message).not.toContain('boom')
  })

  it('still accepts a valid key when recording lastUsedAt fails', async () => {
    const store = new MemoryStore()
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    store.touch = async () => {
      throw new Error('disk full')
    }
    expect((await keys.verify(token)).valid).toBe(true)
  })
})

/** A store whose every call fails as an unreachable server would. */
function failingStore(): KeyStore {
  const fail = async () => {
    throw new Error('connect ECONNREFUSED 127.0.0.1:1')
  }
  return { insert: fail, get: fail, update: fail, delete: fail, list: fail, touch: fail }
}
