/**
 * The KeyManager's "who did what" promises on the store under test: actors on keys, the audit entry
 * written with every change, optimistic concurrency for callers and idempotency after delete, run
 * through the public API (registered by describeKeyStore with the audit cases).
 */
import { ConflictError, KeyManager, isUsageStore, type Actor, type KeyStore } from '../../index.js'
import { T0 } from '../records.js'
import { managerOn as sharedManagerOn } from './key-manager.js'
import type { SuiteContext } from './case-helpers.js'

const ADMIN: Actor = { type: 'user', id: 'admin-1', tenantId: 'acme' }
const BOT: Actor = { type: 'service', id: 'provisioner' }

const ROLES = { roles: { reader: ['data:read'], writer: ['data:write'] }, groups: { support: ['reader'] } }

function managerOn(store: KeyStore, overrides: Partial<ConstructorParameters<typeof KeyManager>[0]> = {}) {
  return sharedManagerOn(store, { ...ROLES, ...overrides })
}

export function whoDidWhatScenarios({ test, expect }: SuiteContext): void {
  test('who: create, update, disable, enable, rotate, revoke and delete each leave one entry with the actor, newest first', async (store) => {
    const { keys, advance } = managerOn(store)
    const { key } = await keys.create({ name: 'CI', ownerId: 'u1', tenantId: 'acme', environment: 'live', scopes: ['a'] }, { actor: ADMIN, requestId: 'r1' })
    expect(key).toMatchObject({ createdBy: ADMIN, updatedBy: ADMIN, version: 1 })
    advance(1000)
    const updated = await keys.update(key.id, { name: 'CI (main)' }, { actor: BOT, reason: 'rename' })
    expect(updated).toMatchObject({ createdBy: ADMIN, updatedBy: BOT, version: 2 })
    advance(1000)
    const disabled = await keys.disable(key.id, { actor: ADMIN, reason: 'leaked' })
    expect(disabled).toMatchObject({ enabled: false, disabledReason: 'leaked', disabledBy: ADMIN, updatedBy: ADMIN, version: 3 })
    advance(1000)
    const enabled = await keys.enable(key.id, { actor: BOT })
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, disabledBy: null, updatedBy: BOT })
    advance(1000)
    await keys.rotate(key.id, { actor: ADMIN, gracePeriod: '1h' })
    advance(1000)
    await keys.revoke(key.id, { actor: ADMIN, reason: 'retired' })
    advance(1000)
    await keys.delete(key.id, { actor: BOT })
    const { items } = await keys.audit({ keyId: key.id })
    expect(items.map((entry) => entry.action)).toEqual(['deleted', 'revoked', 'rotated', 'enabled', 'disabled', 'updated', 'created'])
    expect(items.map((entry) => entry.actor?.id)).toEqual(['provisioner', 'admin-1', 'admin-1', 'provisioner', 'admin-1', 'provisioner', 'admin-1'])
    for (const entry of items) expect(entry).toMatchObject({ keyId: key.id, ownerId: 'u1', tenantId: 'acme' })
    expect(items[6]).toMatchObject({ requestId: 'r1', reason: null, at: new Date(T0) })
    expect(items[6]!.changes).toMatchObject({ name: { from: null, to: 'CI' }, scopes: { from: null, to: ['a'] }, environment: { from: null, to: 'live' } })
    expect(items[5]!.changes).toEqual({ name: { from: 'CI', to: 'CI (main)' } })
    expect(items[4]!.changes).toEqual({ enabled: { from: true, to: false }, disabledReason: { from: null, to: 'leaked' }, disabledBy: { from: null, to: { ...ADMIN } } })
    expect(items[1]!.changes).toMatchObject({ revokedAt: { from: null, to: new Date(T0 + 5000).toISOString() } })
  })

  test('who: the history of a deleted key stays, and a replayed create of it answers idempotency_conflict', async (store) => {
    const { keys } = managerOn(store)
    const input = { name: 'CI', environment: 'live', idempotencyKey: 'conformance-idempotency-0001' }
    const first = await keys.create(input)
    await keys.delete(first.key.id)
    const replay = await keys.create(input).catch((error: unknown) => error)
    expect(replay).toBeInstanceOf(ConflictError)
    expect(replay).toMatchObject({ code: 'idempotency_conflict' })
    expect(await keys.get(first.key.id)).toBeNull()
    expect((await keys.audit({ keyId: first.key.id })).items.map((entry) => entry.action)).toEqual(['deleted', 'created'])
  })

  test('who: a stale expectedVersion is a version_conflict that changes nothing and writes no entry', async (store) => {
    const { keys } = managerOn(store)
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    await keys.update(key.id, { name: 'second' }, { expectedVersion: key.version })
    const attempts = [
      () => keys.update(key.id, { name: 'third' }, { expectedVersion: key.version }),
      () => keys.disable(key.id, { expectedVersion: key.version }),
      () => keys.enable(key.id, { expectedVersion: key.version }),
      () => keys.rotate(key.id, { expectedVersion: key.version }),
    ]
    for (const attempt of attempts) {
      const error = await attempt().catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(ConflictError)
      expect(error).toMatchObject({ code: 'version_conflict', keyId: key.id })
    }
    expect(await keys.get(key.id)).toMatchObject({ name: 'second', enabled: true, version: 2 })
    expect((await keys.audit({ keyId: key.id })).items).toHaveLength(2)
  })

  test('who: of concurrent updates with the same expectedVersion exactly one lands, with one entry', async (store) => {
    const { keys } = managerOn(store)
    const { key } = await keys.create({ name: 'CI', environment: 'live' })
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => keys.update(key.id, { name: `n${i}` }, { expectedVersion: 1 })))
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1)
    expect((await keys.audit({ keyId: key.id, action: 'updated' })).items).toHaveLength(1)
  })

  test('who: a change that changes nothing writes no entry, and an update lists only the fields that changed', async (store) => {
    const { keys } = managerOn(store)
    const { key } = await keys.create({ name: 'CI', environment: 'live', groups: ['support'] })
    await keys.update(key.id, { groups: ['support'] })
    await keys.enable(key.id)
    await keys.update(key.id, { groups: ['support'], name: 'renamed' })
    const { items } = await keys.audit({ keyId: key.id })
    expect(items.map((entry) => entry.action)).toEqual(['updated', 'created'])
    expect(items[0]!.changes).toEqual({ name: { from: 'CI', to: 'renamed' } })
  })

  test('who: the trail filters by tenant, owner, actor, action and time, and pages with a cursor', async (store) => {
    const { keys, advance } = managerOn(store)
    for (let i = 0; i < 5; i++) {
      await keys.create({ name: `k${i}`, environment: 'live', tenantId: i % 2 === 0 ? 'acme' : 'globex', ownerId: `u${i % 3}` }, { actor: i < 3 ? ADMIN : BOT })
      advance(1000)
    }
    expect((await keys.audit({ tenantId: 'acme' })).items.map((entry) => entry.tenantId)).toEqual(['acme', 'acme', 'acme'])
    expect((await keys.audit({ ownerId: 'u0' })).items).toHaveLength(2)
    expect((await keys.audit({ actorId: 'provisioner' })).items).toHaveLength(2)
    expect((await keys.audit({ action: 'created', from: new Date(T0 + 1000), to: new Date(T0 + 3000) })).items).toHaveLength(2)
    const seen: string[] = []
    let page = await keys.audit({ limit: 2 })
    for (;;) {
      seen.push(...page.items.map((entry) => entry.id))
      if (page.nextCursor === null) break
      page = await keys.audit({ limit: 2, cursor: page.nextCursor })
    }
    expect(seen).toHaveLength(5)
    expect(new Set(seen).size).toBe(5)
    const foreign = await keys.audit({ limit: 2, tenantId: 'acme', cursor: (await keys.audit({ limit: 2 })).nextCursor }).catch((error: unknown) => error)
    expect(foreign).toMatchObject({ code: 'validation_failed' })
  })

  test('who: pruneAudit removes entries older than the instant and keeps the rest', async (store) => {
    const { keys, advance } = managerOn(store)
    const { key } = await keys.create({ name: 'old', environment: 'live' })
    advance(10_000)
    await keys.update(key.id, { name: 'new' })
    expect(await keys.pruneAudit({ before: new Date(T0 + 5000), batchSize: 1 })).toBe(1)
    expect((await keys.audit({ keyId: key.id })).items.map((entry) => entry.action)).toEqual(['updated'])
  })

  test('who: credit changes name their actor in the trail', async (store) => {
    if (!isUsageStore(store)) return
    const { keys } = managerOn(store, { limits: { policies: { metered: { credits: { initial: 0 } } } } })
    const { key } = await keys.create({ name: 'metered', environment: 'live', tenantId: 'acme', policy: 'metered' })
    await keys.setCredits({ keyId: key.id }, 100, { actor: ADMIN, reason: 'top-up' })
    const [entry] = (await keys.audit({ keyId: key.id, action: 'credits_changed' })).items
    expect(entry).toMatchObject({ actor: ADMIN, reason: 'top-up', tenantId: 'acme', changes: { credits: { from: 0, to: 100 } } })
  })
}
