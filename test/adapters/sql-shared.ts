/**
 * Checks shared by the SQL store test files (postgres, mysql, sqlite): the shipped migration files,
 * error wrapping, binary identifiers and an end-to-end run through KeyManager.
 */
import { readFileSync } from 'node:fs'
import { expect } from 'vitest'
import { ConfigError, QuotaExceededError, StoreError, type KeyStore } from '../../src/index.js'
import { makeRecord, makeRichRecord } from '../conformance/records.js'
import { setup } from '../helpers.js'

/**
 * The statements of the shipped `adapters/sql/<name>/migration.sql` (published as
 * `keywarden/adapters/sql/migrations/<name>.sql`), comments dropped.
 */
export function migrationFileStatements(name: 'postgres' | 'mysql' | 'sqlite'): string[] {
  return splitStatements(readFileSync(new URL(`../../adapters/sql/${name}/migration.sql`, import.meta.url), 'utf8'))
}

/**
 * Splits a SQL script at the semicolons ending lines, dropping `--` comment lines; a dollar-quoted
 * body (`$$ … $$`, PostgreSQL's function bodies) is kept whole, its semicolons and comments included.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = []
  let current: string[] = []
  let quoted = false
  for (const line of script.split('\n')) {
    if (!quoted && line.startsWith('--')) continue
    current.push(line)
    if ((line.match(/\$\$/g)?.length ?? 0) % 2 === 1) quoted = !quoted
    if (!quoted && /;\s*$/.test(line)) {
      statements.push(current.join('\n').replace(/;\s*$/, ''))
      current = []
    }
  }
  statements.push(current.join('\n'))
  return statements.map((statement) => statement.trim()).filter((statement) => statement.length > 0)
}

/** Table names the stores must refuse. */
export const INVALID_TABLE_NAMES: unknown[] = [
  ...['', 'keys-table', 'keys; DROP TABLE users', '1keys', 'a'.repeat(49), 'public.keys', 'kéys', '"keys"', '`keys`'],
  ...[42, null],
]

/** Expects `construct` to throw a ConfigError naming `path`. */
export function expectConfigError(construct: () => unknown, path: string): void {
  let thrown: unknown
  try {
    construct()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(ConfigError)
  expect((thrown as ConfigError).issues[0]?.path).toEqual([path])
}

/**
 * Expects a StoreError for `operation` that keeps the driver's error as `cause` and whose message
 * contains neither SQL nor any of `secrets`.
 */
export async function expectStoreError(promise: Promise<unknown>, operation: string, secrets: readonly string[] = []): Promise<StoreError> {
  const error = await promise.then(
    () => expect.fail('expected a StoreError'),
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(StoreError)
  const storeError = error as StoreError
  expect(storeError.operation).toBe(operation)
  expect(storeError.message).toBe(`The key store failed during '${operation}'`)
  expect(storeError.cause).toBeInstanceOf(Error)
  for (const word of ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', ...secrets]) expect(storeError.message).not.toContain(word)
  return storeError
}

/** A rich record's secret-ish values, which must never reach an error message. */
export function richSecrets(): string[] {
  const rich = makeRichRecord()
  return [rich.hash, rich.previousHash!, JSON.stringify(rich.metadata), 'héllo wörld']
}

/**
 * Key IDs and owner IDs that differ only in case or in trailing spaces are different: the columns
 * compare in binary, without PAD SPACE.
 */
export async function expectBinaryIdentifiers(store: KeyStore): Promise<void> {
  const ids = ['abc', 'abc ', 'ABC', 'abç']
  for (const id of ids) expect(await store.insert(makeRecord({ id, name: `name of ${id}` }), null), id).toBe('inserted')
  for (const id of ids) expect((await store.get(id))?.name, id).toBe(`name of ${id}`)
  expect(await store.get('abc  ')).toBeNull()

  const owners = ['alice', 'Alice', 'alice ', 'ALICE']
  for (const [index, ownerId] of owners.entries()) {
    expect(await store.insert(makeRecord({ id: `own${index}`, ownerId }), { ownerId, tenantId: null, limit: 1 }), ownerId).toBe('inserted')
  }
  for (const [index, ownerId] of owners.entries()) {
    expect((await store.list({ ownerId, now: 0, order: 'asc', limit: 10 })).map((record) => record.id), ownerId).toEqual([`own${index}`])
  }
}

/** Create, verify, quota, rotate with a grace period, revoke: a KeyManager on `store`. */
export async function expectEndToEnd(store: KeyStore): Promise<void> {
  const { keys, time } = setup({ store, maxKeysPerOwner: 2 })
  const ownerId = 'Ünïcode owner 👤'
  const { key, token } = await keys.create({
    name: 'CI ✓',
    environment: 'live',
    ownerId,
    tenantId: 'acme',
    scopes: ['data:read'],
    metadata: { plan: 'pro', big: Number.MAX_SAFE_INTEGER },
    expiresIn: '30d',
  })
  expect(await keys.verify(token, { scopes: ['data:read'] })).toMatchObject({ valid: true, key: { id: key.id, ownerId } })
  expect(await keys.get(key.id)).toEqual({ ...key, lastUsedAt: new Date(time.now) })

  time.advance(1)
  await keys.create({ name: 'second', environment: 'live', ownerId, tenantId: 'acme' })
  await expect(keys.create({ name: 'third', environment: 'live', ownerId, tenantId: 'acme' })).rejects.toBeInstanceOf(QuotaExceededError)

  time.advance(1_000)
  const rotated = await keys.rotate(key.id, { gracePeriod: '1h' })
  expect(rotated.key.id).toBe(key.id)
  expect((await keys.verify(token)).valid).toBe(true)
  expect((await keys.verify(rotated.token)).valid).toBe(true)
  time.advance(3_600_000)
  expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })

  const revoked = await keys.revoke(key.id)
  expect(revoked.revokedAt).toEqual(new Date(time.now))
  expect(await keys.verify(rotated.token)).toMatchObject({ valid: false, reason: 'revoked' })
  // The revoked key no longer counts against the quota.
  await keys.create({ name: 'third', environment: 'live', ownerId, tenantId: 'acme' })
  const page = await keys.list({ ownerId })
  expect(page.items.map((item) => item.name)).toEqual(['CI ✓', 'second', 'third'])
  expect(page.items[0]).toMatchObject({ metadata: { plan: 'pro', big: Number.MAX_SAFE_INTEGER }, tenantId: 'acme' })
}

/** With the owner's quota full, inserting an existing ID still answers id_taken (the ID check comes first). */
export async function expectIdTakenBeforeQuota(store: KeyStore): Promise<void> {
  const quota = { ownerId: 'full', tenantId: null, limit: 1 }
  expect(await store.insert(makeRecord({ id: 'taken', ownerId: 'full' }), quota)).toBe('inserted')
  expect(await store.insert(makeRecord({ id: 'taken', ownerId: 'full', name: 'again' }), quota)).toBe('id_taken')
  expect(await store.insert(makeRecord({ id: 'fresh', ownerId: 'full' }), quota)).toBe('quota_exceeded')
  expect((await store.get('taken'))?.name).toBe('test key')
}
