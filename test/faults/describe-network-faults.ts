/**
 * One fault suite, run by redis.test.ts, postgres.test.ts and mariadb.test.ts against the real servers
 * through a {@link TcpProxy}. Every case breaks the link (cut, stall, reset; before an operation or in
 * the middle of it; or after the server has committed but before the answer arrives), then asserts:
 * the outcome and its status, a time bound, and what the server holds afterwards, read over a direct
 * connection. Recovery is part of every case: the same KeyManager and client work again once the proxy
 * passes traffic, with nothing restarted.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { inspect } from 'node:util'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { KeyManager, QuotaExceededError, StoreError, type CreateKeyInput, type KeyStore, type StoredKey } from '../../src/index.js'
import type { Rejection } from '../../src/http/request-verifier.js'
import { CHECKSUM_LENGTH, SECRET_LENGTH } from '../../src/token/format.js'
import { rawRequest, startServer, type RawResponse, type TestServer } from '../http/servers.js'
import { uniqueSuffix } from '../support/services.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import type { FaultFixture, NetworkBackend } from './network-backends.js'

/** The pepper of every KeyManager in the fault suites (idempotency keys need one). */
export const PEPPER = 'fault-injection-pepper-0123456789'
/** The middlewares' `timeout` option in these suites. */
export const MIDDLEWARE_TIMEOUT_MS = 300
/** Every failure must be answered within this (generous) bound, in milliseconds. */
export const BOUND_MS = 3_000

/** What happens to the link: closed and refused, silent, or reset with RSTs. */
export type LinkFault = 'cut' | 'stall' | 'reset'

/**
 * Runs `operation` and says how long it took to reject, and with what; fails the test if it resolves.
 * Timed from the call, not from the promise: a synchronous store (SQLite) does its waiting inside it.
 */
export async function failure(operation: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now()
  let value: unknown
  try {
    value = await operation()
  } catch (error) {
    return { error, ms: performance.now() - started }
  }
  throw new Error(`expected a rejection, got ${inspect(value)}`)
}

/** A store that runs a one-shot hook just before its next `insert` or `update` (a spy: every call reaches the real store). */
export function hookedStore(inner: KeyStore) {
  const hooks: { insert?: () => void; update?: () => void } = {}
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (property === 'insert' || property === 'update') {
          const hook = hooks[property]
          delete hooks[property]
          hook?.()
        }
        return (value as (...args: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { store, hooks }
}

/** The token's secret: what lies between the key ID and the checksum. */
function secretOf(token: string): string {
  return token.slice(-(SECRET_LENGTH + CHECKSUM_LENGTH), -CHECKSUM_LENGTH)
}

/** The part of a record that a failed operation must leave as it was. */
function essence(record: StoredKey | null) {
  return record && { version: record.version, hash: record.hash, previousHash: record.previousHash, revokedAt: record.revokedAt, enabled: record.enabled }
}

/**
 * Registers the fault suite for one backend (skipped visibly when its server is down, failing under CI).
 *
 * @example
 * ```ts
 * await describeNetworkFaults(NETWORK_BACKENDS.redis)
 * ```
 */
export async function describeNetworkFaults(backend: NetworkBackend): Promise<void> {
  const gate = await backend.gate()

  describe.skipIf(!gate.available)(`${backend.name} through a faulty link`, () => {
    let proxy: TcpProxy
    let fixture: FaultFixture
    let keys: KeyManager
    let server: TestServer
    let hooks: ReturnType<typeof hookedStore>['hooks']
    const rejections: Rejection[] = []

    beforeAll(async () => {
      proxy = await TcpProxy.start(backend.target)
      fixture = await backend.open(proxy)
      const hooked = hookedStore(fixture.store)
      hooks = hooked.hooks
      keys = new KeyManager({
        store: hooked.store,
        prefix: 'acme',
        environments: ['live'],
        pepper: PEPPER,
        maxKeysPerOwner: 1,
        usage: { onError: () => undefined },
      })
      server = await startServer('express', keys, { timeout: `${MIDDLEWARE_TIMEOUT_MS}ms`, onReject: (rejection) => void rejections.push(rejection) })
      // Warm up: the store's scripts are cached by the server and the pool has connections.
      const { key, token } = await keys.create({ name: 'warm-up', ownerId: `warm-${uniqueSuffix()}`, environment: 'live', scopes: ['data:read'] })
      await keys.rotate(key.id)
      expect((await send(token)).response.status).toBe(401)
      await keys.revoke(key.id)
    })

    beforeEach(() => {
      rejections.length = 0
    })

    afterEach(async () => {
      delete hooks.insert
      delete hooks.update
      proxy.removeAllListeners('chunk')
      if (proxy.mode !== 'pass') {
        proxy.cut()
        await fixture.disconnected()
        await heal()
      }
    })

    afterAll(async () => {
      await keys?.close()
      await server?.close()
      await fixture?.close()
      await proxy?.close()
    })

    async function send(token: string): Promise<{ response: RawResponse; ms: number }> {
      const started = performance.now()
      const response = await rawRequest(server.port, [`Authorization: Bearer ${token}`])
      return { response, ms: performance.now() - started }
    }

    function expectUnavailable({ response, ms }: { response: RawResponse; ms: number }): void {
      expect(response.status).toBe(503)
      expect(response.header('retry-after')).toBe('5')
      expect(ms).toBeLessThan(BOUND_MS)
    }

    /**
     * A stall can only time out. A cut or reset fails fast (`store_unavailable`), unless a loaded machine
     * delays that past the deadline: either way a 503, never a credential failure.
     */
    function expectOutageReasons(fault: LinkFault): void {
      expect(rejections.length).toBeGreaterThan(0)
      const allowed = fault === 'stall' ? ['store_timeout'] : ['store_unavailable', 'store_timeout']
      for (const { reason } of rejections) expect(allowed).toContain(reason)
    }

    async function breakLink(fault: LinkFault): Promise<void> {
      if (fault === 'stall') return proxy.stall()
      if (fault === 'cut') proxy.cut()
      else proxy.reset()
      await fixture.disconnected()
    }

    async function heal(): Promise<void> {
      await proxy.restore()
      await fixture.recovered()
    }

    /** Switches the proxy to `action` when a request carrying `marker` passes (that request still goes through). */
    function onRequest(marker: string, action: () => void): void {
      const listener = (seen: { direction: string; chunk: Buffer }) => {
        if (seen.direction !== 'request' || !seen.chunk.includes(marker)) return
        proxy.off('chunk', listener)
        action()
      }
      proxy.on('chunk', listener)
    }

    /** Lets the server commit the next write, then loses its answer with an RST. */
    async function loseTheAnswer(operation: () => Promise<unknown>) {
      const pending = failure(operation)
      const reply = await proxy.nextHeld('reply')
      expect(reply.chunk.toString('latin1')).not.toContain('NOSCRIPT') // the write ran, it was not refused
      proxy.reset()
      const outcome = await pending
      await fixture.disconnected()
      await heal()
      return outcome
    }

    const issue = (ownerId = `owner-${uniqueSuffix()}`) => keys.create({ name: 'fault case', ownerId, environment: 'live', scopes: ['data:read'] })

    /** The owner's records, read directly: none, or one complete record of this input. */
    async function storedFor(input: CreateKeyInput): Promise<StoredKey[]> {
      const records = await fixture.direct.list({ ownerId: input.ownerId!, now: Date.now(), order: 'asc', limit: 10 })
      expect(records.length).toBeLessThanOrEqual(1)
      for (const record of records) {
        expect(record).toMatchObject({ name: input.name, ownerId: input.ownerId, environment: 'live', scopes: ['data:read'], version: 1, revokedAt: null })
        expect(record.hash).toMatch(/\S{20,}/)
      }
      return records
    }

    /**
     * After an ambiguous create: the retry issues the one key there is, again and again, within the
     * quota, and the failure before it carried nothing of that key's secret.
     */
    async function expectRetryConverges(input: CreateKeyInput, existing: StoredKey[], failed: unknown): Promise<void> {
      const retried = await keys.create(input)
      expect(inspect(failed, { depth: null })).not.toContain(secretOf(retried.token))
      if (existing[0] !== undefined) expect(retried.key.id).toBe(existing[0].id)
      expect((await send(retried.token)).response.status).toBe(200)
      expect((await keys.create(input)).token).toBe(retried.token)
      expect((await fixture.direct.list({ ownerId: input.ownerId!, now: Date.now(), order: 'asc', limit: 10 })).map((record) => record.id)).toEqual([retried.key.id])
      const other = await failure(() => keys.create({ ...input, idempotencyKey: randomUUID() }))
      expect(other.error).toBeInstanceOf(QuotaExceededError)
    }

    describe('verify through the Express middleware', () => {
      it.each<LinkFault>(['cut', 'reset', 'stall'])('answers 503 with Retry-After when the link is %s before the request, and 200 again after restore', async (fault) => {
        const { key, token } = await issue()
        expect((await send(token)).response.status).toBe(200)
        const before = essence(await fixture.direct.get(key.id))
        await breakLink(fault)
        const answers = await Promise.all(Array.from({ length: 8 }, () => send(token)))
        for (const answer of answers) expectUnavailable(answer)
        expectOutageReasons(fault)
        if (fault === 'stall') for (const { ms } of answers) expect(ms).toBeGreaterThanOrEqual(MIDDLEWARE_TIMEOUT_MS - 20)
        await heal()
        expect((await send(token)).response.status).toBe(200)
        expect(essence(await fixture.direct.get(key.id))).toEqual(before)
      })

      it.each<Exclude<LinkFault, 'stall'>>(['cut', 'reset'])('answers 503 when the link is %s while the store read is in flight', async (fault) => {
        const { key, token } = await issue()
        const before = essence(await fixture.direct.get(key.id))
        proxy.stall()
        const answer = send(token)
        await proxy.nextHeld('request') // the read is on its way to the server
        await breakLink(fault)
        expectUnavailable(await answer)
        expectOutageReasons(fault)
        await heal()
        expect((await send(token)).response.status).toBe(200)
        expect(essence(await fixture.direct.get(key.id))).toEqual(before)
      })

      it('answers 503 when the answer to the store read is lost to a reset', async () => {
        const { token } = await issue()
        proxy.holdReplies()
        const answer = send(token)
        await proxy.nextHeld('reply')
        proxy.reset()
        expectUnavailable(await answer)
        await fixture.disconnected()
        await heal()
        expect((await send(token)).response.status).toBe(200)
      })
    })

    describe('create with an idempotency key', () => {
      it.each<LinkFault>(['cut', 'reset', 'stall'])('rejects with StoreError when the link is %s, and a retry after restore issues exactly one key', async (fault) => {
        const input: CreateKeyInput = { name: 'ci', ownerId: `owner-${uniqueSuffix()}`, environment: 'live', scopes: ['data:read'], idempotencyKey: randomUUID() }
        await breakLink(fault)
        const { error, ms } = await failure(() => keys.create(input))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        await heal()
        // A stalled write is delivered when the link heals (as TCP would): nothing, or the whole key.
        await expectRetryConverges(input, await storedFor(input), error)
      })

      it('rejects with StoreError when the write committed but its answer was lost; the retry returns that key', async () => {
        const input: CreateKeyInput = { name: 'ci', ownerId: `owner-${uniqueSuffix()}`, environment: 'live', scopes: ['data:read'], idempotencyKey: randomUUID() }
        hooks.insert = () => onRequest(backend.commitMarker, () => proxy.holdReplies())
        const { error, ms } = await loseTheAnswer(() => keys.create(input))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        const stored = await storedFor(input)
        expect(stored).toHaveLength(1) // committed: the key exists, though its token was never handed out
        await expectRetryConverges(input, stored, error)
      })
    })

    describe('rotate with an idempotency key', () => {
      it.each<LinkFault>(['cut', 'reset', 'stall'])('rejects with StoreError when the link is %s; the old token keeps working; the retry rotates once', async (fault) => {
        const { key, token } = await issue()
        const before = essence(await fixture.direct.get(key.id))
        const idempotencyKey = randomUUID()
        await breakLink(fault)
        const { error, ms } = await failure(() => keys.rotate(key.id, { idempotencyKey }))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        await heal()
        expect(essence(await fixture.direct.get(key.id))).toEqual(before)
        expect((await send(token)).response.status).toBe(200)
        const rotated = await keys.rotate(key.id, { idempotencyKey })
        expect((await send(rotated.token)).response.status).toBe(200)
        expect((await send(token)).response.status).toBe(401)
        expect((await keys.rotate(key.id, { idempotencyKey })).token).toBe(rotated.token)
        expect((await fixture.direct.get(key.id))?.version).toBe(before!.version + 1)
      })

      it('rejects with StoreError when the rotation committed but its answer was lost; the retry returns the new token without rotating again', async () => {
        const { key, token } = await issue()
        const before = (await fixture.direct.get(key.id))!
        const idempotencyKey = randomUUID()
        // The change and its audit entry commit together: the answer is lost once the commit is on its way.
        hooks.update = () => onRequest(backend.commitMarker, () => proxy.holdReplies())
        const { error, ms } = await loseTheAnswer(() => keys.rotate(key.id, { idempotencyKey }))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        const after = (await fixture.direct.get(key.id))!
        expect(after.version).toBe(before.version + 1)
        expect(after.hash).not.toBe(before.hash)
        expect((await send(token)).response.status).toBe(401) // rotated without grace: the old secret is over
        const retried = await keys.rotate(key.id, { idempotencyKey })
        expect(inspect(error, { depth: null })).not.toContain(secretOf(retried.token))
        expect((await send(retried.token)).response.status).toBe(200)
        expect((await keys.rotate(key.id, { idempotencyKey })).token).toBe(retried.token)
        expect((await fixture.direct.get(key.id))?.version).toBe(before.version + 1)
      })
    })

    describe('revoke', () => {
      it.each<LinkFault>(['cut', 'reset', 'stall'])('rejects with StoreError when the link is %s, and the key still verifies', async (fault) => {
        const { key, token } = await issue()
        const before = essence(await fixture.direct.get(key.id))
        await breakLink(fault)
        const { error, ms } = await failure(() => keys.revoke(key.id))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        await heal()
        expect(essence(await fixture.direct.get(key.id))).toEqual(before)
        expect((await send(token)).response.status).toBe(200)
        await keys.revoke(key.id)
        expect((await send(token)).response.status).toBe(401)
      })

      it('rejects with StoreError when the revocation committed but its answer was lost, and the key never verifies again', async () => {
        const { key, token } = await issue()
        // The change and its audit entry commit together: the answer is lost once the commit is on its way.
        hooks.update = () => onRequest(backend.commitMarker, () => proxy.holdReplies())
        const { error, ms } = await loseTheAnswer(() => keys.revoke(key.id))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        expect((await fixture.direct.get(key.id))?.revokedAt).not.toBeNull()
        expect((await send(token)).response.status).toBe(401)
        expect((await keys.revoke(key.id)).revokedAt).not.toBeNull() // a retry is a no-op success
      })

      it('rejects with StoreError when the update is stalled on its way, and changes nothing once the connection is gone, even after reconnecting', async () => {
        const { key, token } = await issue()
        const before = essence(await fixture.direct.get(key.id))
        hooks.update = () => proxy.stall()
        const { error, ms } = await failure(() => keys.revoke(key.id))
        expect(error).toBeInstanceOf(StoreError)
        expect(ms).toBeLessThan(BOUND_MS)
        expect(proxy.heldBytes).toBeGreaterThan(0) // the update is still held at the proxy
        proxy.cut()
        await fixture.disconnected()
        await heal()
        // Read through the same client first: a client that replays unanswered commands after a
        // reconnect would have sent the update again by now, ahead of this read.
        expect(essence(await fixture.store.get(key.id))).toEqual(before)
        expect(essence(await fixture.direct.get(key.id))).toEqual(before)
        expect((await send(token)).response.status).toBe(200)
      })
    })

    it('works normally after all of the above, on the same KeyManager, client and server', async () => {
      const { key, token } = await issue()
      expect((await send(token)).response.status).toBe(200)
      const rotated = await keys.rotate(key.id)
      expect((await send(rotated.token)).response.status).toBe(200)
      await keys.revoke(key.id)
      expect((await send(rotated.token)).response.status).toBe(401)
      expect(server.errors).toEqual([])
    })
  })
}
