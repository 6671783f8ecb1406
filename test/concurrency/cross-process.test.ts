/**
 * Races between two processes sharing one Redis namespace, PostgreSQL table, MariaDB table or SQLite
 * file (WAL): this process and a worker (worker.ts), each with its own client and KeyManagers, run
 * their halves of a race from the same instant, then this process checks the invariants, and asks the
 * worker's side too where it matters (a revoked or deleted key must fail there as well). The memory
 * store lives in one process, so it has no such race.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyManager } from '../../src/index.js'
import { BACKENDS, type Backend } from '../support/backends.js'
import { expectOnlyTypedErrors, withoutAuditTrail } from './checks.js'
import {
  closeAll,
  countValid,
  fulfilled,
  HOUR,
  interleave,
  managerOptions,
  managersOn,
  rejected,
  runAll,
  T0,
  times,
  tokensOf,
  versionOf,
  waitUntil,
  type Batch,
  type Op,
  type Outcome,
} from './harness.js'
import { openPlace, type Place } from './places.js'
import { startWorker, type WorkerHandle } from './worker-handle.js'

/** Both sides start this long after the worker is armed: enough for the 'go' line to arrive. */
const START_DELAY_MS = 50
/** Attempts at a scenario until its two halves overlapped in time. */
const ATTEMPTS = 3

const CROSS_PROCESS = BACKENDS.filter((backend) => backend.name !== 'memory')
const GATES = new Map(await Promise.all(CROSS_PROCESS.map(async (backend) => [backend.name, await backend.gate()] as const)))

/**
 * Every backend's place, opened at once when the file starts, and one worker for all of them (loading
 * a worker takes a second or two).
 */
const places = new Map<Backend['name'], Place>()
let worker: WorkerHandle | undefined

beforeAll(async () => {
  const available = CROSS_PROCESS.filter((backend) => GATES.get(backend.name)!.available)
  const opened = await Promise.allSettled(available.map(async (backend) => places.set(backend.name, await openPlace(backend))))
  for (const result of opened) if (result.status === 'rejected') throw result.reason
  if (places.size > 0) worker = await startWorker([...places.values()].map((place) => place.location))
}, 30_000)

afterAll(async () => {
  try {
    await worker?.quit()
  } finally {
    for (const backend of CROSS_PROCESS) {
      await places.get(backend.name)?.cleanup()
      await backend.close()
    }
  }
}, 30_000)

for (const backend of CROSS_PROCESS) {
  describe.skipIf(!GATES.get(backend.name)!.available)(`races between two processes: ${backend.name}`, () => {
    let place: Place
    let managers: KeyManager[] = []

    beforeAll(() => {
      place = places.get(backend.name)!
      managers = managersOn([place.store], 2)
    })

    // Before the file's afterAll ends the worker and drops the table: buffered lastUsedAt writes go first.
    afterAll(() => closeAll(managers))

    /**
     * Runs `mine` here and `theirs` in the worker, both from the same instant (a shared wall-clock start,
     * see waitUntil). `overlapped` tells whether the two halves were in fact running at the same time: on
     * a loaded machine one process can be descheduled long enough for the other to finish first.
     */
    async function race(mine: readonly Op[], theirs: readonly Op[]): Promise<{ all: Outcome[]; overlapped: boolean }> {
      await worker!.arm(place.location.backend, theirs)
      const at = Date.now() + START_DELAY_MS
      const remote = worker!.go(at)
      await waitUntil(at)
      const local: Batch = await runAll(managers, mine)
      const other = await remote
      const overlapped = Math.max(local.startedAt, other.startedAt) <= Math.min(local.finishedAt, other.finishedAt)
      return { all: [...local.outcomes, ...other.outcomes], overlapped }
    }

    /**
     * Runs a scenario (fresh keys and owners each time) until its main race overlapped, at most
     * ATTEMPTS times. Every attempt checks every invariant, overlapped or not (a sequential run must
     * keep them too); the repeat only makes sure the two processes really raced at least once.
     */
    async function untilOverlapped(scenario: (attempt: number) => Promise<boolean>): Promise<void> {
      const overlaps: boolean[] = []
      for (let attempt = 1; attempt <= ATTEMPTS && !overlaps.includes(true); attempt++) overlaps.push(await scenario(attempt))
      expect(overlaps, 'the two processes ran their halves at the same time in some attempt').toContain(true)
    }

    /** Asks the worker to verify `tokens` (a batch of its own, not a race); its answers. */
    async function verifyThere(tokens: readonly string[]): Promise<Outcome[]> {
      await worker!.arm(place.location.backend, tokens.map((token): Op => ({ op: 'verify', token })))
      return (await worker!.go(Date.now())).outcomes
    }

    it('creates from both processes against one quota: exactly the limit succeed', async () => {
      await untilOverlapped(async (attempt) => {
        const quota = 3
        const ownerId = `both-${attempt}`
        const create = (side: string) => (i: number): Op => ({ op: 'create', input: { name: `${side}-${i}`, ownerId, owner: { quota } } })
        const { all, overlapped } = await race(times(25, create('here')), times(25, create('there')))

        expectOnlyTypedErrors(all, { create: ['quota_exceeded'] })
        expect(fulfilled(all, 'create')).toHaveLength(quota)
        expect(rejected(all, 'create')).toHaveLength(50 - quota)
        const stored = (await managers[0]!.list({ ownerId, limit: 100 })).items
        expect(stored.map((key) => key.id).sort()).toEqual(fulfilled(all).map((outcome) => outcome.keyId).sort())
        const tokens = tokensOf(all, 'create')
        expect(await countValid(managers[1]!, tokens)).toBe(quota)
        expect(fulfilled(await verifyThere(tokens)).filter((outcome) => outcome.valid)).toHaveLength(quota)
        return overlapped
      })
    })

    it('idempotent creates from both processes with one idempotencyKey make one key and one token', async () => {
      await untilOverlapped(async (attempt) => {
        const ownerId = `idem-${attempt}`
        const input = { name: 'shared', ownerId, owner: { quota: 1 }, idempotencyKey: `cross-process-idempotency-key-${attempt}` }
        const { all, overlapped } = await race(times(20, (): Op => ({ op: 'create', input })), times(20, (): Op => ({ op: 'create', input })))

        expectOnlyTypedErrors(all, {})
        const tokens = new Set(tokensOf(all, 'create'))
        expect(tokens.size).toBe(1)
        expect((await managers[0]!.list({ ownerId, limit: 100 })).items).toHaveLength(1)
        expect(await countValid(managers[0]!, [...tokens])).toBe(1)
        return overlapped
      })
    })

    it('rotations from both processes: each success counted once, exactly one current and one grace secret verify', async () => {
      await untilOverlapped(async () => {
        const { key, token: original } = await managers[0]!.create({ name: 'rotated' })
        const rotate = (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })
        const verify = (): Op => ({ op: 'verify', token: original })
        const { all, overlapped } = await race(interleave([...times(20, rotate), ...times(5, verify)]), interleave([...times(20, rotate), ...times(5, verify)], 7))

        expectOnlyTypedErrors(all, { rotate: ['conflict'] })
        const tokens = tokensOf(all, 'rotate')
        expect(tokens.length).toBeGreaterThanOrEqual(1)
        expect(new Set(tokens).size).toBe(tokens.length)
        expect(await versionOf(place.store, key.id)).toBe(1 + tokens.length)
        expect(await countValid(managers[1]!, [original, ...tokens])).toBe(2)
        expect(fulfilled(await verifyThere([original, ...tokens])).filter((outcome) => outcome.valid)).toHaveLength(2)
        const afterGrace = new KeyManager(managerOptions(place.store, { clock: () => T0 + HOUR }))
        expect(await countValid(afterGrace, [original, ...tokens])).toBe(1)
        await afterGrace.close()
        return overlapped
      })
    })

    it('rotations racing revokes from both processes: once revoked, no token verifies in either process, whatever races next', async () => {
      await untilOverlapped(async () => {
        const { key, token: original } = await managers[0]!.create({ name: 'doomed' })
        const rotate = (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })
        const revoke: Op = { op: 'revoke', id: key.id }
        // A revoke never gives up to racing rotations (it retries until it lands), so all four succeed.
        const here = interleave([...times(20, rotate), ...times(3, (): Op => ({ op: 'verify', token: original }))])
        const there = interleave([...times(20, rotate), ...times(3, (): Op => ({ op: 'verify', token: original }))], 3)
        here.splice(2, 0, revoke)
        here.splice(9, 0, revoke)
        there.splice(4, 0, revoke)
        there.splice(11, 0, revoke)
        const { all, overlapped } = await race(here, there)

        expectOnlyTypedErrors(all, { rotate: ['conflict', 'key_revoked'] })
        expect(fulfilled(all, 'revoke')).toHaveLength(4)
        const tokens = [original, ...tokensOf(all, 'rotate')]
        const version = await versionOf(place.store, key.id)
        expect(version).toBe(1 + fulfilled(all, 'rotate').length + 1)
        expect(await countValid(managers[1]!, tokens)).toBe(0)
        expect(fulfilled(await verifyThere(tokens)).filter((outcome) => outcome.valid)).toEqual([])

        // More racing on the revoked key, from both sides: refused or no-op, nothing written, nothing verifies.
        const again = await race(
          [...times(8, rotate), ...times(6, (i): Op => ({ op: 'update', id: key.id, patch: { name: `undead-${i}` } })), revoke, revoke],
          [...times(8, rotate), ...times(6, (): Op => ({ op: 'enable', id: key.id })), ...tokens.map((token): Op => ({ op: 'verify', token }))],
        )
        expectOnlyTypedErrors(again.all, { rotate: ['key_revoked'], update: ['key_revoked'], enable: ['key_revoked'] })
        expect(fulfilled(again.all).map((outcome) => outcome.op).filter((op) => op !== 'revoke' && op !== 'verify')).toEqual([])
        expect(fulfilled(again.all, 'verify').filter((outcome) => outcome.valid)).toEqual([])
        expect(await versionOf(place.store, key.id)).toBe(version)
        expect(await countValid(managers[0]!, tokens)).toBe(0)
        return overlapped
      })
    })

    it('notifyExpiring from both processes at once: each expiry is announced exactly once', async () => {
      await untilOverlapped(async (attempt) => {
        const tenantId = `notify-${attempt}`
        const expiring = await Promise.all(times(15, (i) => managers[0]!.create({ name: `expiring-${i}`, tenantId, expiresIn: '1d' })))
        const notify = (): Op => ({ op: 'notifyExpiring', within: '2d' })
        const { all, overlapped } = await race(times(6, notify), times(6, notify))

        expectOnlyTypedErrors(all, {})
        const announced = fulfilled(all, 'notifyExpiring').flatMap((outcome) => outcome.notified!)
        // Earlier attempts' keys were announced then; this attempt's keys, once each, across both processes.
        expect(announced.sort()).toEqual(expiring.map((issued) => issued.key.id).sort())
        return overlapped
      })
    })

    it('deletes from both processes racing updates and rotations: one delete wins and the key is gone for both', async () => {
      await untilOverlapped(async (attempt) => {
        const owner = { ownerId: `deleter-${attempt}`, owner: { quota: 1 } }
        const { key, token } = await managers[0]!.create({ name: 'short-lived', ...owner })
        const update = (side: string) => (i: number): Op => ({ op: 'update', id: key.id, patch: { name: `${side}-${i}` } })
        const rotate = (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })
        const del: Op = { op: 'delete', id: key.id }
        const here = interleave([...times(16, update('here')), ...times(4, rotate), del, del])
        const there = interleave([...times(16, update('there')), ...times(4, rotate), del, del], 5)
        const { all, overlapped } = await race(here, there)

        const gone = ['key_not_found', 'conflict']
        expectOnlyTypedErrors(all, { delete: ['key_not_found'], update: gone, rotate: gone })
        expect(fulfilled(all, 'delete')).toHaveLength(1)
        const tokens = [token, ...tokensOf(all, 'rotate')]
        await Promise.all(managers.map((keys) => keys.flush()))
        expect(await place.store.get(key.id)).toBeNull()
        for (const candidate of tokens) expect(await managers[1]!.verify(candidate)).toMatchObject({ valid: false, reason: 'unknown_key' })
        expect((await verifyThere(tokens)).map((outcome) => outcome.ok && outcome.reason)).toEqual(tokens.map(() => 'unknown_key'))
        // The audit trail keeps the key's history by design; nothing else may hold its ID.
        expect(withoutAuditTrail(await place.dump())).not.toContain(key.id)

        const again = await race(times(8, update('here-again')), [...times(8, update('there-again')), ...times(4, rotate), del])
        expectOnlyTypedErrors(again.all, { update: ['key_not_found'], rotate: ['key_not_found'], delete: ['key_not_found'] })
        expect(fulfilled(again.all).map((outcome) => outcome.op)).toEqual([])
        expect(await place.store.get(key.id)).toBeNull()
        await expect(managers[0]!.create({ name: 'successor', ...owner })).resolves.toBeDefined()
        return overlapped
      })
    })
  })
}
