/**
 * What a StoreError keeps of what a store threw, through the public API: a KeyManager over a store
 * whose insert throws a crafted value. Hash forms, hex digests, base62 secrets and tokens, and base64
 * peppers are masked; ordinary messages, driver codes, file paths in stacks and SQL identifiers are
 * kept. Non-Error throws, deep and cyclic cause chains, AggregateErrors, getters and proxies that throw
 * never crash the wrapping, and a keywarden error is passed through, not wrapped again.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ConflictError, KeyManager, StoreError, type KeyStore, type StoreFailureCause } from '../../src/index.js'
import { errorTextInFull } from '../support/canary/text.js'

const DIGEST = 'c0ffee4d2b7e9a1f3c5d7e9b1a3c5e7f9d1b3a5c7e9f1d3b5a7c9e1f3d5b7a9c'
const HASH = `kw1$hmac-sha256$default$${DIGEST}`
const SECRET = 'Zq4x8N2mLp7Rt1Vw9Ks3Hd6Jf0Bg5Yc2'
const TOKEN = `acme_live_K7bQ2xR9mT4vW8nZ_${SECRET}3fR9zQ`
/** 32 random bytes whose base64url has a `-` or `_` near the middle: no run of plain base64 reaches 32 characters. */
const PEPPER_BYTES = (() => {
  for (;;) {
    const bytes = randomBytes(32)
    if (/[-_]/.test(bytes.toString('base64url').slice(12, 31))) return bytes
  }
})()

/** A store whose every write throws `thrown` (made afresh per call, for getters with state). */
function throwingStore(thrown: () => unknown): KeyStore {
  const inner = new MemoryStore()
  return {
    insert: async () => {
      throw thrown()
    },
    get: (id) => inner.get(id),
    update: async () => {
      throw thrown()
    },
    delete: (id) => inner.delete(id),
    list: (query) => inner.list(query),
    touch: (id, at) => inner.touch(id, at),
  }
}

/** The error `create` rejects with when the store's insert throws `thrown`. */
async function storeErrorFor(thrown: () => unknown): Promise<unknown> {
  const keys = new KeyManager({ store: throwingStore(thrown), environments: ['live'], pepper: randomBytes(32) })
  return keys.create({ name: 'x' }).then(
    () => expect.unreachable('create resolved'),
    (error: unknown) => error,
  )
}

async function causeFor(thrown: () => unknown): Promise<StoreFailureCause> {
  const error = await storeErrorFor(thrown)
  expect(error).toBeInstanceOf(StoreError)
  expect((error as StoreError).operation).toBe('insert')
  return (error as StoreError).cause as StoreFailureCause
}

describe('masking what the driver said', () => {
  it.each([
    ['a stored hash', `duplicate row (id, ${HASH}, null)`, HASH],
    ['an unpeppered stored hash', `value kw1$sha256$-$${DIGEST} rejected`, DIGEST],
    ['a hash under a future scheme', `bad: kw2$argon2id$p7$${DIGEST.slice(0, 40)}`, DIGEST.slice(0, 40)],
    ['a bare digest', `Key (hash)=(${DIGEST}) already exists.`, DIGEST],
    ['an upper-case digest', `digest ${DIGEST.toUpperCase()}`, DIGEST.toUpperCase()],
    ['a pepper in hex', `key ${PEPPER_BYTES.toString('hex')}`, PEPPER_BYTES.toString('hex')],
    ['a secret', `secret=${SECRET}`, SECRET],
    ['a secret without a digit', 'secret=ZqxNmLpRtVwKsHdJfBgYcPxWaQeUoIkL', 'ZqxNmLpRtVwKsHdJfBgYcPxWaQeUoIkL'],
    ['a token', `Authorization: Bearer ${TOKEN}`, SECRET],
    ['a pepper in base64', `pepper ${PEPPER_BYTES.toString('base64')}`, PEPPER_BYTES.toString('base64')],
    ['a pepper in base64url', `pepper ${PEPPER_BYTES.toString('base64url')}`, PEPPER_BYTES.toString('base64url')],
  ])('masks %s in the message, the stack and string fields', async (_, text, value) => {
    const cause = await causeFor(() => Object.assign(new Error(`insert failed: ${text}`), { code: 'E_TEST', sqlMessage: text }))
    expect(cause.message).toContain('insert failed:')
    expect(cause.message).toContain('[redacted')
    expect(errorTextInFull(cause)).not.toContain(value)
    expect(cause.code).toBe('E_TEST')
  })

  it('drops the fields that hold what the store was sent, and keeps diagnostic ones', async () => {
    const driverError = Object.assign(new Error('new row for relation "kwt_abc123" violates check constraint "kwt_abc123_name_check"'), {
      code: '23514',
      severity: 'ERROR',
      table: 'kwt_abc123',
      constraint: 'kwt_abc123_name_check',
      schema: 'public',
      detail: `Failing row contains (K7bQ2xR9mT4vW8nZ, CI, ${HASH}).`,
      command: { name: 'evalsha', args: ['f00d', '1', `{"hash":"${HASH}"}`] },
      sql: `INSERT INTO kwt_abc123 VALUES ('${HASH}')`,
      parameters: [HASH],
      record: { hash: HASH },
    })
    const cause = await causeFor(() => driverError)
    expect(cause.message).toBe('new row for relation "kwt_abc123" violates check constraint "kwt_abc123_name_check"')
    expect(cause).toMatchObject({ code: '23514', severity: 'ERROR', table: 'kwt_abc123', constraint: 'kwt_abc123_name_check', schema: 'public' })
    for (const field of ['detail', 'command', 'sql', 'parameters', 'record']) expect(cause).not.toHaveProperty(field)
    expect(errorTextInFull(cause)).not.toContain(DIGEST)
  })

  it.each([
    ['a connection failure', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: '127.0.0.1', port: 5432 })],
    ['a deadlock', Object.assign(new Error("Deadlock found when trying to get lock; try restarting transaction"), { code: 'ER_LOCK_DEADLOCK', errno: 1213, sqlState: '40001', fatal: false })],
    ['a long SQL identifier', new Error('relation "keywarden_api_keys_owner_tenant_created_at_idx" does not exist')],
    ['a camel-case identifier', new Error('KeyStoreImplementationForTestingPurposes is not a function')],
    ['a UUID', new Error('row 550e8400-e29b-41d4-a716-446655440000 is locked')],
  ])('keeps %s as it was', async (_, driverError) => {
    const cause = await causeFor(() => driverError)
    expect(cause.message).toBe(driverError.message)
    expect(cause.name).toBe('Error')
    for (const field of ['code', 'errno', 'syscall', 'address', 'port', 'sqlState', 'fatal'] as const) {
      expect(cause[field]).toBe((driverError as unknown as Record<string, unknown>)[field])
    }
  })

  it('keeps the file paths of the stack, with their line numbers', async () => {
    const driverError = new Error('SQLITE_CONSTRAINT: CHECK constraint failed: name_check')
    driverError.stack = [
      `${driverError.message}`,
      '    at Statement.run (/home/Dev2/Projects/KeyWarden/node_modules/better-sqlite3/lib/methods/wrappers.js:5:17)',
      '    at SqliteStore.insert (/Users/Alice9/Code/KeyWarden2/adapters/sql/sqlite/store.ts:42:7)',
      '    at file:///srv/App3Server/dist/index.js:10:3',
    ].join('\n')
    const cause = await causeFor(() => driverError)
    expect(cause.stack).toBe(driverError.stack)
  })
})

describe('whatever the store threw', () => {
  it.each([
    ['a string holding the hash', () => `failed for ${HASH}`, 'string'],
    ['a plain object holding the hash', () => ({ message: HASH, hash: HASH }), 'object'],
    ['null', () => null, 'null'],
    ['undefined', () => undefined, 'undefined'],
    ['a number', () => 42, 'number'],
  ])('%s becomes a summary naming only its type', async (_, thrown, type) => {
    const cause = await causeFor(thrown)
    expect(cause.message).toBe(`The store threw a non-Error value (${type})`)
    expect(errorTextInFull(cause)).not.toContain(DIGEST)
  })

  it('follows the cause chain, masked at every link, and stops at a bound (also for a cycle)', async () => {
    const deep = () => {
      let error = new Error(`innermost ${HASH}`)
      for (let i = 9; i >= 0; i--) error = new Error(`link ${i} ${SECRET}`, { cause: error })
      return error
    }
    const cause = await causeFor(deep)
    const messages: string[] = []
    for (let link: unknown = cause; link instanceof Error; link = link.cause) messages.push(link.message)
    expect(messages.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `link ${i} [redacted]`))
    expect(messages.at(-1)).toBe('(deeper causes left out)')
    expect(messages.length).toBeLessThanOrEqual(8)

    const cyclic = await causeFor(() => {
      const error = new Error(`cycle ${HASH}`)
      error.cause = error
      return error
    })
    expect(errorTextInFull(cyclic)).not.toContain(DIGEST)
  })

  it('keeps the errors of an AggregateError, masked and bounded, also when they nest', async () => {
    const cause = await causeFor(() => new AggregateError([new Error(`first ${HASH}`), 'a string', new Error('connect ECONNREFUSED ::1:6379')], `all failed ${SECRET}`))
    expect(cause.message).toBe('all failed [redacted]')
    expect((cause['errors'] as Error[]).map((error) => error.message)).toEqual(['first [redacted hash]', 'The store threw a non-Error value (string)', 'connect ECONNREFUSED ::1:6379'])

    // Ten errors of ten errors of ten...: a bounded summary, not a million of them.
    const nest = (level: number): Error => (level === 0 ? new Error(HASH) : new AggregateError(Array.from({ length: 10 }, () => nest(level - 1)), `level ${level}`))
    const nested = await causeFor(() => nest(4))
    const text = errorTextInFull(nested)
    expect(text).not.toContain(DIGEST)
    expect(text).toContain('more errors left out')
    const count = (error: Error): number => 1 + ((error as StoreFailureCause)['errors'] as Error[] | undefined ?? []).reduce((sum, inner) => sum + count(inner), 0)
    expect(count(nested)).toBeLessThan(100)
  })

  it('survives getters and proxy traps that throw, keeping what it can read', async () => {
    const hostile = () => {
      const error = Object.assign(new Error('readable message'), { code: 'E_HOSTILE' })
      for (const field of ['stack', 'name', 'cause', 'errno', 'sqlState']) {
        Object.defineProperty(error, field, { get: () => { throw new Error(`getter ${HASH}`) } })
      }
      return error
    }
    const cause = await causeFor(hostile)
    expect(cause.message).toBe('readable message')
    expect(cause.code).toBe('E_HOSTILE')
    expect(cause.name).toBe('Error')
    expect(errorTextInFull(cause)).not.toContain(DIGEST)

    const throwingMessage = await causeFor(() => Object.defineProperty(new Error(), 'message', { get: () => { throw new Error(HASH) } }))
    expect(throwingMessage.message).toBe('')

    const trap = () => { throw new Error(`trap ${HASH}`) }
    const proxy = await causeFor(() => new Proxy(new Error('proxied'), { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap }))
    expect(proxy.message).toBe('The store threw a non-Error value (object)')

    const aggregate = new AggregateError([], 'x')
    Object.defineProperty(aggregate, 'errors', { get: trap })
    expect((await causeFor(() => aggregate)).message).toBe('x')
  })
})

describe('a keywarden error from the store', () => {
  it('passes through as the very same error, not wrapped in another StoreError', async () => {
    const conflict = new ConflictError('k1')
    expect(await storeErrorFor(() => conflict)).toBe(conflict)
    const already = new StoreError('insert')
    expect(await storeErrorFor(() => already)).toBe(already)
  })

  it("keeps its code, message and operation, with the store's raw cause replaced by a masked summary", async () => {
    const raw = Object.assign(new Error(`duplicate key ${HASH}`), { code: '23505', detail: `Key (hash)=(${DIGEST}) already exists.` })
    const wrapped = new StoreError('insert', { cause: raw })
    const error = await storeErrorFor(() => wrapped)
    expect(error).toBe(wrapped)
    expect(wrapped).toMatchObject({ code: 'store_failed', operation: 'insert', message: "The key store failed during 'insert'" })
    expect(wrapped.cause).toMatchObject({ message: 'duplicate key [redacted hash]', code: '23505' })
    expect(errorTextInFull(wrapped)).not.toContain(DIGEST)
  })

  it('is wrapped after all when it is frozen with a raw cause: the raw cause never reaches the caller', async () => {
    const frozen = Object.freeze(new StoreError('insert', { cause: new Error(`failed ${HASH}`) }))
    const error = await storeErrorFor(() => frozen)
    expect(error).toBeInstanceOf(StoreError)
    expect(error).not.toBe(frozen)
    expect(errorTextInFull(error)).not.toContain(DIGEST)
  })
})
