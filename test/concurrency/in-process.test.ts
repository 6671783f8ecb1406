/**
 * Races inside one process, on every backend: many calls at once through four KeyManagers (four app
 * instances; on Redis, PostgreSQL and MariaDB two of them on a second client of their own), then the
 * invariants. the conformance suite's KeyManager cases (src/testing/cases/key-manager.ts) already cover one manager's 50-creates quota
 * race, disable vs rotate, a few rotations and the expiry boundary; this suite adds several owners and
 * managers, creates racing revokes and deletes, idempotent creates racing each other, plain creates and
 * deletes, rotations (plain and idempotent) racing each other and revokes, disable vs update, delete vs
 * everything, notifyExpiring vs itself, buffered lastUsedAt writes vs updates, and a paged list walk vs
 * creates and deletes. Each ends with exact checks: the history of accepted compare-and-set writes (no
 * lost or doubled write), events (each change announced once), which tokens verify, raw store contents
 * and the type of every error.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { KeyManager, type KeyStore } from '../../src/index.js'
import { BACKENDS, type BackendHandle } from '../support/backends.js'
import { deleteRaceOps, expectDeleteRaceErrors, expectOnlyTypedErrors, expectQuotaRace, QUOTA_RACE_LIMITS, quotaRaceOps, withoutAuditTrail } from './checks.js'
import {
  chainBreak,
  closeAll,
  countValid,
  fulfilled,
  HOUR,
  interleave,
  managerOptions,
  managersOn,
  recordingStore,
  runAll,
  T0,
  times,
  tokensOf,
  versionOf,
  type AcceptedWrite,
  type Op,
} from './harness.js'
import { locationOf, openAt, type SharedStore } from './shared-store.js'

const MANAGERS = 4
const IDEMPOTENCY_KEY = 'a6f0c1d2-race-4e5f-8a9b-0c1d2e3f4a5b'

for (const backend of BACKENDS) {
  const gate = await backend.gate()

  describe.skipIf(!gate.available)(`races in one process: ${backend.name}`, () => {
    let handle: BackendHandle
    let second: SharedStore | undefined
    let managers: KeyManager[]
    let extras: KeyManager[]
    let writes: AcceptedWrite[]
    /** Lifecycle events of every manager, by type: each change must be announced once, by the manager that made it. */
    let announced: Record<string, number>
    let store: KeyStore

    beforeEach(async () => {
      handle = await backend.open()
      store = handle.store
      const location = locationOf(backend.name, store)
      second = location === null ? undefined : await openAt(location)
      writes = []
      const clients = second === undefined ? [store] : [store, second.store]
      managers = managersOn(clients.map((client) => recordingStore(client, writes)), MANAGERS)
      announced = {}
      for (const keys of managers) {
        for (const name of ['created', 'updated', 'disabled', 'revoked', 'deleted', 'rotated'] as const) {
          keys.on(name, () => void (announced[name] = (announced[name] ?? 0) + 1))
        }
      }
      extras = []
    })

    afterEach(async () => {
      await closeAll([...managers, ...extras])
      await second?.close()
      await handle.cleanup()
    })

    afterAll(() => backend.close())

    /** What `announced` must be: these counts, an event type that never fired counting as 0. */
    const counts = (expected: Record<string, number>) => Object.fromEntries(Object.entries(expected).filter(([, n]) => n > 0))

    /** A manager whose clock is `ms` later than everyone else's. */
    const later = (ms: number): KeyManager => {
      const keys = new KeyManager(managerOptions(store, { clock: () => T0 + ms }))
      extras.push(keys)
      return keys
    }

    it('creates for three owners from four managers: each owner gets exactly its quota, the rest QuotaExceededError', async () => {
      const ops = quotaRaceOps()
      const { outcomes } = await runAll(managers, ops)

      for (const [ownerId, mine] of expectQuotaRace(outcomes, ops)) {
        const stored = (await managers[0]!.list({ ownerId, limit: 100 })).items
        expect(stored.map((key) => key.id).sort(), ownerId).toEqual(fulfilled(mine).map((outcome) => outcome.keyId).sort())
        expect(await countValid(managers[0]!, tokensOf(mine, 'create')), ownerId).toBe(QUOTA_RACE_LIMITS[ownerId])
      }
    })

    it('creates racing revokes and deletes of the same owner never exceed the quota', async () => {
      const quota = 3
      const owner = { ownerId: 'churn', owner: { quota } }
      const initial = await Promise.all(times(quota, (i) => managers[0]!.create({ name: `initial-${i}`, ...owner })))
      const [revoked, deleted, kept] = initial
      const ops = interleave([
        ...times(30, (i): Op => ({ op: 'create', input: { name: `new-${i}`, ...owner } })),
        ...times(3, (): Op => ({ op: 'revoke', id: revoked!.key.id })),
        ...times(3, (): Op => ({ op: 'delete', id: deleted!.key.id })),
        ...times(3, (i): Op => ({ op: 'update', id: kept!.key.id, patch: { name: `kept-${i}` } })),
        ...initial.map((issued): Op => ({ op: 'verify', token: issued.token })),
      ])
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, { create: ['quota_exceeded'], delete: ['key_not_found'], update: ['conflict'] })
      expect(fulfilled(outcomes, 'delete')).toHaveLength(1)
      expect(fulfilled(outcomes, 'revoke')).toHaveLength(3)
      // Two slots were freed; at most two creates can have taken them.
      const created = fulfilled(outcomes, 'create')
      expect(created.length).toBeLessThanOrEqual(2)
      const active = (await managers[0]!.list({ ownerId: 'churn', status: 'active', limit: 100 })).items
      expect(active).toHaveLength(1 + created.length)
      expect(active.length).toBeLessThanOrEqual(quota)
      // Whatever raced, the revoked and the deleted key stay dead.
      expect(await managers[1]!.verify(revoked!.token)).toMatchObject({ valid: false, reason: 'revoked' })
      expect(await managers[2]!.verify(deleted!.token)).toMatchObject({ valid: false, reason: 'unknown_key' })
      expect(await countValid(managers[3]!, [kept!.token, ...tokensOf(outcomes, 'create')])).toBe(1 + created.length)
    })

    it('idempotent creates racing with one idempotencyKey make one key, and every caller gets its token', async () => {
      const input = { name: 'deploy', scopes: ['data:read'], idempotencyKey: IDEMPOTENCY_KEY }
      const { outcomes } = await runAll(managers, times(24, (): Op => ({ op: 'create', input })))

      expectOnlyTypedErrors(outcomes, {})
      const tokens = new Set(tokensOf(outcomes, 'create'))
      expect(tokens.size).toBe(1)
      expect(new Set(fulfilled(outcomes).map((outcome) => outcome.keyId)).size).toBe(1)
      expect((await managers[0]!.list({ limit: 100 })).items).toHaveLength(1)
      expect(await countValid(managers[1]!, [...tokens])).toBe(1)
      expect(await versionOf(store, fulfilled(outcomes)[0]!.keyId!)).toBe(1)
      expect(announced).toEqual(counts({ created: 1 }))
    })

    it('idempotent creates racing plain creates under a quota: the idempotent key is all or nothing, the quota exact', async () => {
      const quota = 2
      const owner = { ownerId: 'mixed', owner: { quota } }
      const ops = interleave([
        ...times(16, (): Op => ({ op: 'create', input: { name: 'retried', ...owner, idempotencyKey: IDEMPOTENCY_KEY } })),
        ...times(16, (i): Op => ({ op: 'create', input: { name: `plain-${i}`, ...owner } })),
      ])
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, { create: ['quota_exceeded'] })
      const retried = outcomes.filter((_, i) => (ops[i] as Extract<Op, { op: 'create' }>).input.idempotencyKey !== undefined)
      // Its ID is checked before the quota: once one retry inserted it, every later one replays it.
      // Before that, a full quota refuses all of them, and the quota never empties during the race.
      expect([0, retried.length]).toContain(fulfilled(retried).length)
      expect(new Set(tokensOf(retried, 'create')).size).toBeLessThanOrEqual(1)
      const stored = (await managers[0]!.list({ ownerId: 'mixed', limit: 100 })).items
      expect(stored).toHaveLength(quota)
      expect(new Set(fulfilled(outcomes).map((outcome) => outcome.keyId))).toEqual(new Set(stored.map((key) => key.id)))
      expect(await countValid(managers[2]!, [...new Set(tokensOf(outcomes, 'create'))])).toBe(quota)
    })

    it('idempotent creates racing deletes of their key: every caller gets the one token, or a typed error', async () => {
      // Regression (see idempotent-create-vs-delete.test.ts): this used to end in StoreErrors on PostgreSQL and MariaDB.
      for (let round = 0; round < 3; round++) {
        const input = { name: 'churned', idempotencyKey: `${IDEMPOTENCY_KEY}-churn-${round}` }
        const first = await managers[0]!.create(input)
        const ops = interleave<Op>([...times(20, (): Op => ({ op: 'create', input })), ...times(30, (): Op => ({ op: 'delete', id: first.key.id }))], round + 1)
        const { outcomes } = await runAll(managers, ops)

        expectOnlyTypedErrors(outcomes, { create: ['conflict', 'idempotency_conflict'], delete: ['key_not_found'] })
        // Replayed before the delete, it is the one key and token the idempotency key stands for; after it, refused.
        expect(new Set(tokensOf(outcomes, 'create'))).toEqual(new Set(fulfilled(outcomes, 'create').length > 0 ? [first.token] : []))
        const left = await managers[1]!.get(first.key.id)
        expect(await managers[1]!.verify(first.token)).toMatchObject({ valid: left !== null })
      }
    })

    it('rotations racing from four managers: each success counted once, exactly one current and one grace secret verify', async () => {
      const { key, token: original } = await managers[0]!.create({ name: 'rotated' })
      const firstHash = (await store.get(key.id))!.hash
      const ops = interleave([
        ...times(30, (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })),
        ...times(10, (): Op => ({ op: 'verify', token: original })),
      ])
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, { rotate: ['conflict'] })
      const tokens = tokensOf(outcomes, 'rotate')
      expect(tokens.length).toBeGreaterThanOrEqual(1)
      expect(new Set(tokens).size).toBe(tokens.length)
      // No lost or doubled write: every fulfilled rotation is exactly one version step, and each kept
      // the secret it replaced (not an older one) for the grace period.
      expect(await versionOf(store, key.id)).toBe(1 + tokens.length)
      expect(chainBreak(writes, key.id, 1, firstHash)).toBeNull()
      expect(announced).toEqual(counts({ created: 1, rotated: tokens.length }))
      // The last rotation's secret, and the one it replaced (in its grace period); nothing older.
      expect(await countValid(managers[1]!, [original, ...tokens])).toBe(2)
      // Once the grace period is over, only the current one.
      expect(await countValid(later(HOUR), [original, ...tokens])).toBe(1)
    })

    it('idempotent rotations racing with one idempotencyKey rotate once and all return the same token', async () => {
      const { key, token: original } = await managers[0]!.create({ name: 'rotated once' })
      const firstHash = (await store.get(key.id))!.hash
      const { outcomes } = await runAll(managers, times(20, (): Op => ({ op: 'rotate', id: key.id, idempotencyKey: IDEMPOTENCY_KEY })))

      expectOnlyTypedErrors(outcomes, {})
      const tokens = new Set(tokensOf(outcomes, 'rotate'))
      expect(tokens.size).toBe(1)
      expect(await versionOf(store, key.id)).toBe(2)
      expect(chainBreak(writes, key.id, 1, firstHash)).toBeNull()
      expect(announced).toEqual(counts({ created: 1, rotated: 1 }))
      expect(await countValid(managers[3]!, [original, ...tokens])).toBe(1)
      expect((await managers[2]!.verify([...tokens][0]!)).valid).toBe(true)
    })

    it('rotate racing revoke: once revoked, no token ever handed out verifies, even after more racing changes', async () => {
      const { key, token: original } = await managers[0]!.create({ name: 'doomed' })
      const firstHash = (await store.get(key.id))!.hash
      // Rotations can run out of compare-and-set attempts (ConflictError); a revoke never gives up,
      // wherever it sits among them, so every one of them succeeds (all but one as a no-op).
      const ops = interleave([
        ...times(24, (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })),
        ...times(6, (): Op => ({ op: 'verify', token: original })),
      ])
      for (const position of [2, 8, 15, 23, 30]) ops.splice(position, 0, { op: 'revoke', id: key.id })
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, { rotate: ['conflict', 'key_revoked'] })
      expect(fulfilled(outcomes, 'revoke')).toHaveLength(5)
      const tokens = [original, ...tokensOf(outcomes, 'rotate')]
      // Exactly one write revoked it; rotations before it counted once each, none after it.
      const version = await versionOf(store, key.id)
      expect(version).toBe(1 + fulfilled(outcomes, 'rotate').length + 1)
      expect(chainBreak(writes, key.id, 1, firstHash)).toBeNull()
      expect(announced).toEqual(counts({ created: 1, rotated: fulfilled(outcomes, 'rotate').length, revoked: 1 }))
      const record = (await store.get(key.id))!
      expect(record.revokedAt).not.toBeNull()
      expect(record.previousHash).toBeNull()
      expect(await countValid(managers[1]!, tokens)).toBe(0)

      // More racing on the revoked key: every change is refused, revoke is a no-op, nothing is written.
      const again = await runAll(
        managers,
        interleave([
          ...times(8, (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })),
          ...times(4, (): Op => ({ op: 'enable', id: key.id })),
          ...times(4, (): Op => ({ op: 'disable', id: key.id })),
          ...times(4, (i): Op => ({ op: 'update', id: key.id, patch: { name: `undead-${i}` } })),
          ...times(4, (): Op => ({ op: 'revoke', id: key.id })),
          ...tokens.map((token): Op => ({ op: 'verify', token })),
        ]),
      )
      expectOnlyTypedErrors(again.outcomes, { rotate: ['key_revoked'], enable: ['key_revoked'], disable: ['key_revoked'], update: ['key_revoked'] })
      for (const op of ['rotate', 'enable', 'disable', 'update'] as const) expect(fulfilled(again.outcomes, op).length, op).toBe(0)
      expect(fulfilled(again.outcomes, 'verify').filter((outcome) => outcome.valid)).toEqual([])
      expect(await versionOf(store, key.id)).toBe(version)
      expect(announced).toEqual(counts({ created: 1, rotated: fulfilled(outcomes, 'rotate').length, revoked: 1 }))
      expect(await countValid(later(HOUR / 2), tokens)).toBe(0)
    })

    it('disable racing updates loses no change: the key ends disabled, with one update whole, each counted once', async () => {
      const { key, token } = await managers[0]!.create({ name: 'busy', metadata: { writer: -1 } })
      const ops = interleave([
        ...times(20, (i): Op => ({ op: 'update', id: key.id, patch: { name: `name-${i}`, metadata: { writer: i }, scopes: [`s:${i}`] } })),
        ...times(6, (): Op => ({ op: 'disable', id: key.id })),
        ...times(6, (): Op => ({ op: 'verify', token })),
      ])
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, { update: ['conflict'], disable: ['conflict'] })
      expect(fulfilled(outcomes, 'disable').length).toBeGreaterThanOrEqual(1)
      const updates = fulfilled(outcomes, 'update').length
      expect(updates).toBeGreaterThanOrEqual(1)
      // One write per fulfilled update, one for the first disable (the rest find it disabled: no-ops).
      expect(await versionOf(store, key.id)).toBe(1 + updates + 1)
      expect(chainBreak(writes, key.id, 1, (await store.get(key.id))!.hash)).toBeNull()
      expect(announced).toEqual(counts({ created: 1, updated: updates, disabled: 1 }))
      const after = (await managers[1]!.get(key.id))!
      expect(after.enabled).toBe(false)
      // The last update is there whole, never a mix of two: name, metadata and scopes from one call.
      const writer = Number(after.name.replace('name-', ''))
      const winner = outcomes.findIndex((outcome, i) => outcome.ok && ops[i]!.op === 'update' && (ops[i] as Extract<Op, { op: 'update' }>).patch.name === after.name)
      expect(winner).toBeGreaterThanOrEqual(0)
      expect(after.metadata).toEqual({ writer })
      expect(after.scopes).toEqual([`s:${writer}`])
      expect(await managers[2]!.verify(token)).toMatchObject({ valid: false, reason: 'disabled' })
    })

    it('buffered lastUsedAt writes racing updates: no update is undone, no use is lost, versions count updates only', async () => {
      const { key, token } = await managers[0]!.create({ name: 'in use' })
      // Four instances whose clocks are a minute apart (the default lastUsedAt precision), so each records its uses.
      const clocked = times(4, (i) => new KeyManager(managerOptions(recordingStore(store, writes), { clock: () => T0 + i * 60_000 })))
      extras.push(...clocked)
      const ops = interleave<Op>([
        ...times(20, (): Op => ({ op: 'verify', token })),
        ...times(10, (i): Op => ({ op: 'update', id: key.id, patch: { name: `used-${i}`, metadata: { i } } })),
        ...times(8, (): Op => ({ op: 'flush' })),
      ])
      const { outcomes } = await runAll(clocked, ops)
      await Promise.all(clocked.map((keys) => keys.flush()))

      expectOnlyTypedErrors(outcomes, { update: ['conflict'] })
      expect(fulfilled(outcomes, 'verify').every((outcome) => outcome.valid)).toBe(true)
      const updates = fulfilled(outcomes, 'update').length
      const stored = (await store.get(key.id))!
      expect(stored.version).toBe(1 + updates)
      expect(chainBreak(writes, key.id, 1, stored.hash)).toBeNull()
      expect(stored.lastUsedAt).toBe(T0 + 3 * 60_000)
      expect(stored.metadata).toEqual({ i: Number(stored.name.replace('used-', '')) })
    })

    it('a paged list walk while keys are created and deleted returns every key present throughout exactly once', async () => {
      const tenantId = 'walked'
      const stable = await Promise.all(times(40, (i) => managers[0]!.create({ name: `stable-${i}`, tenantId })))
      const doomed = await Promise.all(times(20, (i) => managers[0]!.create({ name: `doomed-${i}`, tenantId })))
      const seen: string[] = []
      const walk = async () => {
        let cursor: string | null = null
        do {
          const page: Awaited<ReturnType<KeyManager['list']>> = await managers[1]!.list({ tenantId, limit: 7, cursor })
          seen.push(...page.items.map((item) => item.id))
          cursor = page.nextCursor
        } while (cursor !== null)
      }
      const [{ outcomes }] = await Promise.all([
        runAll(
          [managers[0]!, managers[2]!, managers[3]!],
          interleave<Op>([
            ...times(30, (i): Op => ({ op: 'create', input: { name: `new-${i}`, tenantId } })),
            ...doomed.map((issued): Op => ({ op: 'delete', id: issued.key.id })),
          ]),
        ),
        walk(),
      ])

      expectOnlyTypedErrors(outcomes, {})
      expect(seen.length, 'no key twice').toBe(new Set(seen).size)
      const missing = stable.map((issued) => issued.key.id).filter((id) => !seen.includes(id))
      expect(missing, 'every key present for the whole walk').toEqual([])
    })

    it('notifyExpiring from four managers at once, racing a revoke and an extension: each expiry is announced exactly once', async () => {
      const expiring = await Promise.all(times(12, (i) => managers[0]!.create({ name: `expiring-${i}`, expiresIn: '1d' })))
      await Promise.all(times(3, (i) => managers[0]!.create({ name: `lasting-${i}`, expiresIn: '30d' })))
      const [revoked, extended, ...plain] = expiring
      const ops = interleave<Op>([
        ...times(12, (): Op => ({ op: 'notifyExpiring', within: '2d' })),
        { op: 'revoke', id: revoked!.key.id },
        { op: 'update', id: extended!.key.id, patch: { expiresIn: '30d' } },
      ])
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, {})
      const announced = fulfilled(outcomes, 'notifyExpiring').flatMap((outcome) => outcome.notified!)
      // Never twice, whichever manager claimed it; the two keys changed mid-race may or may not have been told.
      expect(announced.length).toBe(new Set(announced).size)
      const sure = plain.map((issued) => issued.key.id)
      expect(announced.filter((id) => sure.includes(id)).sort()).toEqual([...sure].sort())
      expect(announced.filter((id) => !sure.includes(id) && id !== revoked!.key.id && id !== extended!.key.id)).toEqual([])
      // A later run finds nothing left to announce.
      const rerun = await runAll(managers, times(4, (): Op => ({ op: 'notifyExpiring', within: '2d' })))
      expect(fulfilled(rerun.outcomes).flatMap((outcome) => outcome.notified!)).toEqual([])
    })

    it('delete racing updates, rotations, revokes and disables: one delete wins and the key never comes back', async () => {
      const owner = { ownerId: 'deleter', owner: { quota: 1 } }
      const { key, token } = await managers[0]!.create({ name: 'short-lived', ...owner })
      const { outcomes } = await runAll(managers, deleteRaceOps(key.id, token))

      expectDeleteRaceErrors(outcomes)
      expect(fulfilled(outcomes, 'delete')).toHaveLength(1)
      expect(announced['deleted']).toBe(1)
      expect(announced['revoked'] ?? 0).toBe(Math.min(1, fulfilled(outcomes, 'revoke').length))
      expect(announced['rotated'] ?? 0).toBe(fulfilled(outcomes, 'rotate').length)
      const tokens = [token, ...tokensOf(outcomes, 'rotate')]
      await Promise.all(managers.map((keys) => keys.flush())) // buffered lastUsedAt writes must not re-create it
      expect(await store.get(key.id)).toBeNull()
      for (const candidate of tokens) expect(await managers[1]!.verify(candidate)).toMatchObject({ valid: false, reason: 'unknown_key' })
      // The audit trail keeps the key's history by design; nothing else may hold its ID.
      expect(withoutAuditTrail(await handle.dump())).not.toContain(key.id)

      // Later calls on the deleted ID find nothing and write nothing; its quota slot is free again.
      const again = await runAll(managers, [
        ...times(4, (i): Op => ({ op: 'update', id: key.id, patch: { name: `zombie-${i}` } })),
        ...times(4, (): Op => ({ op: 'rotate', id: key.id })),
        ...times(4, (): Op => ({ op: 'revoke', id: key.id })),
        ...times(4, (): Op => ({ op: 'enable', id: key.id })),
        ...times(4, (): Op => ({ op: 'delete', id: key.id })),
      ])
      expectOnlyTypedErrors(again.outcomes, { update: ['key_not_found'], rotate: ['key_not_found'], revoke: ['key_not_found'], enable: ['key_not_found'], delete: ['key_not_found'] })
      expect(fulfilled(again.outcomes).map((outcome) => outcome.op)).toEqual([])
      expect(await store.get(key.id)).toBeNull()
      await expect(managers[3]!.create({ name: 'successor', ...owner })).resolves.toBeDefined()
    })
  })
}
