/**
 * RedisStore and RedisInvalidationChannel on a real Redis Cluster (3 masters + 3 replicas, started by
 * scripts/ci/start-redis-cluster.sh; see test/support/redis-cluster.ts for how it is found, and for
 * KEYWARDEN_REDIS_CLUSTER_START=1), through an ioredis `Cluster` and a node-redis `createCluster`
 * passed as they are:
 *
 * - the conformance suite, through each client;
 * - the model-based test (test/model: the same commands, reference model and limits, runs as on
 *   standalone Redis), through each client, without and with the verify cache;
 * - races from test/concurrency/in-process.test.ts (the same harness), from four KeyManagers, two on
 *   each client, on one namespace;
 * - cross-instance cache invalidation over pub/sub, with each client;
 * - placement: every key of a namespace in the one slot of its hash tag, on the master owning it, and
 *   namespaces spread over all three masters each working end to end; EVAL after NOSCRIPT on the shard.
 *
 * Under CI=true a missing cluster fails the file; locally it is skipped with a message.
 */
import fc from 'fast-check'
import type { Cluster } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { RedisInvalidationChannel, RedisStore, type RedisClientLike } from '../../adapters/redis/index.js'
import { KeyManager, type KeyManagerOptions, type KeyStore } from '../../src/index.js'
import { deleteRaceOps, expectDeleteRaceErrors, expectOnlyTypedErrors, expectQuotaRace, QUOTA_RACE_LIMITS, quotaRaceOps, withoutAuditTrail } from '../concurrency/checks.js'
import {
  chainBreak,
  closeAll,
  countValid,
  fulfilled,
  interleave,
  managersOn,
  recordingStore,
  runAll,
  times,
  tokensOf,
  versionOf,
  type AcceptedWrite,
  type Op,
} from '../concurrency/harness.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'
import { makeRecord, T0 } from '../conformance/records.js'
import { countingStore, setup } from '../helpers.js'
import { modelRunProperty } from '../model/model-property.js'
import { recordStorageDump } from '../support/canary/index.js'
import {
  deleteClusterNamespace,
  dumpClusterNamespace,
  ioredisCluster,
  keySlot,
  keysOfNamespace,
  masterOfSlot,
  namespacesOnDistinctMasters,
  nodeRedisCluster,
  redisClusterGate,
  stopStartedCluster,
  type NodeRedisCluster,
} from '../support/redis-cluster.js'
import { uniqueSuffix } from '../support/services.js'
import { eventually } from '../support/eventually.js'

const gate = await redisClusterGate()


describe.skipIf(!gate.available)('Redis Cluster', () => {
  let ioredis: Cluster
  let nodeRedis: NodeRedisCluster

  beforeAll(async () => {
    ioredis = await ioredisCluster()
    nodeRedis = await nodeRedisCluster()
  })

  afterAll(async () => {
    await ioredis?.quit()
    await nodeRedis?.close()
    await stopStartedCluster()
  })

  const namespace = () => `kwc-${uniqueSuffix()}`
  const clients = [
    { name: 'ioredis Cluster', client: () => ioredis as RedisClientLike },
    { name: 'node-redis createCluster', client: () => nodeRedis as RedisClientLike },
  ] as const

  /** Hands the namespace's raw contents to the leak canary, then deletes every key of it. */
  async function dropNamespace(ns: string, detail: string): Promise<void> {
    recordStorageDump(await dumpClusterNamespace(ioredis, ns), `redis cluster ${detail}: {${ns}}`)
    await deleteClusterNamespace(ioredis, ns)
  }

  for (const { name, client } of clients) {
    describeKeyStore(`redis cluster (${name})`, () => new RedisStore({ client: client(), namespace: namespace() }), {
      teardown: (store) => dropNamespace(store.namespace, `conformance (${name})`),
    })
  }

  describe('placement', () => {
    it('the gate found 3 masters with a replica each, covering all 16384 slots', () => {
      expect(gate.masters).toHaveLength(3)
      for (const master of gate.masters) expect(master.replicas, master.address).toBe(1)
      const covered = gate.masters.flatMap((master) => master.slots).reduce((sum, [from, to]) => sum + (to - from + 1), 0)
      expect(covered).toBe(16384)
    })

    for (const { name, client } of clients) {
      it(`${name}: every key of a namespace is in the slot of {namespace}, on the master that owns it`, async () => {
        const ns = namespace()
        const store = new RedisStore({ client: client(), namespace: ns })
        try {
          const { keys } = setup({ store, maxKeysPerOwner: 2, limits: { policies: { basic: { rate: [{ name: 'daily', limit: 4, window: '1d' }], credits: { initial: 3 } } }, defaultPolicy: 'basic' } })
          const { key, token } = await keys.create({ name: 'placed', ownerId: 'alice', tenantId: 'acme', environment: 'live', expiresIn: '1d' })
          expect(await keys.verify(token)).toMatchObject({ valid: true })
          await keys.update(key.id, { name: 'moved?' })
          await keys.close()

          const slot = await keySlot(ioredis, `{${ns}}`)
          const written = await keysOfNamespace(ioredis, ns)
          // Records, indexes, quota set, meta, counters, balance, audit entries and their indexes.
          expect(written.length).toBeGreaterThanOrEqual(10)
          expect(written.some((k) => k.includes(':counter:'))).toBe(true)
          expect(written.some((k) => k.includes(':audit:'))).toBe(true)
          for (const k of written) expect(await keySlot(ioredis, k), k).toBe(slot)
          const owner = masterOfSlot(gate.masters, slot).address
          const node = ioredis.nodes('master').find((candidate) => `${candidate.options.host}:${candidate.options.port}` === owner)!
          expect(Number(await node.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot)))).toBeGreaterThanOrEqual(written.length)
        } finally {
          await dropNamespace(ns, `placement (${name})`)
        }
      })
    }

    /** MOVED and ASK replies every node has sent so far (`INFO errorstats`). */
    async function redirections(): Promise<number> {
      const counts = await Promise.all(
        ioredis.nodes('all').map(async (node) => {
          const stats = String(await node.info('errorstats'))
          return [...stats.matchAll(/^errorstat_(?:MOVED|ASK):count=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
        }),
      )
      return counts.reduce((sum, count) => sum + count, 0)
    }

    for (const { name, client } of clients) {
      it(`${name}: every command goes straight to the namespace's master, never redirected (no MOVED or ASK)`, async () => {
        const ns = namespace()
        try {
          const before = await redirections()
          const { keys } = setup({ store: new RedisStore({ client: client(), namespace: ns }), maxKeysPerOwner: 3 })
          const created = await Promise.all(times(5, (i) => keys.create({ name: `k${i}`, ownerId: `o${i % 2}`, tenantId: 't', environment: 'live' })))
          for (const { token } of created) expect(await keys.verify(token)).toMatchObject({ valid: true })
          expect((await keys.list({ tenantId: 't' })).items).toHaveLength(5)
          await keys.rotate(created[0]!.key.id)
          await keys.revoke(created[1]!.key.id)
          await keys.delete(created[2]!.key.id)
          await keys.close()
          expect(await redirections()).toBe(before)
        } finally {
          await dropNamespace(ns, `routing (${name})`)
        }
      })
    }

    it('namespaces on each of the three masters pass a create / verify / list / revoke round through both clients', async () => {
      const spread = await namespacesOnDistinctMasters(ioredis, gate.masters, 3, `kwc-spread-${uniqueSuffix()}`)
      expect(new Set(spread.map((entry) => entry.master)).size).toBe(3)
      console.log(`[redis-cluster] namespaces on distinct masters: ${spread.map((entry) => `{${entry.namespace}} slot ${entry.slot} on ${entry.master}`).join('; ')}`)
      try {
        await Promise.all(
          spread.flatMap(({ namespace: ns }) =>
            clients.map(async ({ name, client }) => {
              const { keys } = setup({ store: new RedisStore({ client: client(), namespace: ns }), maxKeysPerOwner: 1 })
              const owner = `owner-${name}`
              const { key, token } = await keys.create({ name: `on {${ns}}`, ownerId: owner, environment: 'live', scopes: ['data:read'] })
              expect(await keys.verify(token, { scopes: ['data:read'] }), `${ns} ${name}`).toMatchObject({ valid: true, key: { id: key.id } })
              await expect(keys.create({ name: 'over quota', ownerId: owner, environment: 'live' })).rejects.toMatchObject({ code: 'quota_exceeded' })
              expect((await keys.list({ ownerId: owner })).items.map((item) => item.id)).toEqual([key.id])
              await keys.revoke(key.id)
              expect(await keys.verify(token), `${ns} ${name}`).toMatchObject({ valid: false, reason: 'revoked' })
              await keys.close()
            }),
          ),
        )
        // Each namespace's keys are where its slot says, and nowhere else.
        for (const { namespace: ns, slot } of spread) {
          const written = await keysOfNamespace(ioredis, ns)
          expect(written.length, ns).toBeGreaterThan(0)
          for (const k of written) expect(await keySlot(ioredis, k), k).toBe(slot)
        }
      } finally {
        for (const { namespace: ns } of spread) await dropNamespace(ns, 'spread')
      }
    })

    for (const { name, client } of clients) {
      it(`${name}: scripts still run after every master forgot them (NOSCRIPT falls back to EVAL on the namespace's shard)`, async () => {
        const ns = namespace()
        const store = new RedisStore({ client: client(), namespace: ns })
        const flushAll = () => Promise.all(ioredis.nodes('master').map((node) => node.call('SCRIPT', 'FLUSH')))
        try {
          await flushAll()
          expect(await store.insert(makeRecord({ id: 'after-flush', ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('inserted')
          expect(await store.insert(makeRecord({ id: 'second', ownerId: 'o' }), { ownerId: 'o', tenantId: null, limit: 1 })).toBe('quota_exceeded')
          await flushAll()
          expect(await store.list({ now: T0, order: 'asc', limit: 10 })).toHaveLength(1)
          expect(await store.delete('after-flush')).toBe(true)
        } finally {
          await dropNamespace(ns, `noscript (${name})`)
        }
      })
    }
  })

  describe('cache invalidation across instances', () => {
    const channels = [
      { name: 'ioredis Cluster', channel: (ch: string) => new RedisInvalidationChannel({ client: ioredis, channel: ch }) },
      { name: 'node-redis createCluster', channel: (ch: string) => new RedisInvalidationChannel({ client: nodeRedis, channel: ch }) },
    ] as const

    for (const { name, channel: makeChannel } of channels) {
      it(`${name}: a revoke on one KeyManager is seen by verify on another at once, not after the ttl`, async () => {
        const ns = namespace()
        const pubsub = `${ns}:invalidate`
        const store = new RedisStore({ client: name === 'ioredis Cluster' ? ioredis : nodeRedis, namespace: ns })
        const onB = countingStore(store)
        const channelA = makeChannel(pubsub)
        const channelB = makeChannel(pubsub)
        const cache = (channel?: RedisInvalidationChannel): KeyManagerOptions['cache'] => ({ ttl: '10m', ...(channel ? { channel } : {}), onError: (error) => console.error(error) })
        const a = setup({ store, cache: cache(channelA) }).keys
        const b = setup({ store: onB.store, cache: cache(channelB) }).keys
        // The control: a cache without a channel keeps the revoked key for its ttl (the clocks stand still).
        const unaware = setup({ store, cache: cache() }).keys
        let stopListening: (() => Promise<void>) | undefined
        try {
          const { key, token } = await a.create({ name: 'shared', environment: 'live' })
          expect(await b.verify(token)).toMatchObject({ valid: true })
          expect(await unaware.verify(token)).toMatchObject({ valid: true })
          // B's subscriber connection (opened on its first verify) is shared: this resolves once SUBSCRIBE is confirmed.
          stopListening = await channelB.subscribe(() => {})
          const reads = onB.calls['get'] ?? 0
          expect(await b.verify(token)).toMatchObject({ valid: true })
          expect(onB.calls['get'] ?? 0, 'the second verify on B is served from its cache').toBe(reads)

          await a.revoke(key.id)
          await eventually(async () => expect(await b.verify(token)).toMatchObject({ valid: false, reason: 'revoked' }))
          expect(onB.calls['get']!, 'B read the store again once told').toBeGreaterThan(reads)
          expect(await unaware.verify(token), 'without a channel the cached copy stays').toMatchObject({ valid: true })
        } finally {
          await stopListening?.()
          await closeAll([a, b, unaware])
          await dropNamespace(ns, `invalidation (${name})`)
        }
      })
    }
  })

  describe('model-based', () => {
    /** Roles as configured by `setup()` in test/helpers.ts (as in test/model/key-manager-model.test.ts). */
    /** The runs of standalone Redis in test/model/key-manager-model.test.ts; KEYWARDEN_MODEL_RUNS overrides. */
    const RUNS = { plain: 20, cached: 10 }
    const seed = process.env.KEYWARDEN_MODEL_SEED ? Number(process.env.KEYWARDEN_MODEL_SEED) : undefined
    const variants = [
      { name: 'without cache', runs: RUNS.plain, options: {} },
      { name: 'with cache', runs: RUNS.cached, options: { cache: { ttl: '10s' } } },
    ] as const

    for (const { name, client } of clients) {
      for (const variant of variants) {
        it(`${name}, ${variant.name}: KeyManager agrees with the reference model`, async () => {
          const property = modelRunProperty(async () => {
            const ns = `kwcm-${uniqueSuffix()}`
            return { store: new RedisStore({ client: client(), namespace: ns }), cleanup: () => dropNamespace(ns, `model (${name}, ${variant.name})`) }
          }, variant.options)
          const runs = process.env.KEYWARDEN_MODEL_RUNS ? Number(process.env.KEYWARDEN_MODEL_RUNS) : variant.runs
          await fc.assert(property, { numRuns: runs, ...(seed === undefined ? {} : { seed }), verbose: 1 })
        }, 120_000)
      }
    }
  })

  describe('races from four KeyManagers, two on each client, on one namespace', () => {
    const IDEMPOTENCY_KEY = 'c7a1e2f3-cluster-race-4d5e-9f0a1b2c3d4e'
    let ns: string
    let managers: KeyManager[]
    let writes: AcceptedWrite[]
    let store: KeyStore

    beforeEach(() => {
      ns = namespace()
      writes = []
      // The stores of an ioredis and a node-redis client, on the same namespace: two app instances each.
      const viaIoredis = new RedisStore({ client: ioredis, namespace: ns })
      const viaNodeRedis = new RedisStore({ client: nodeRedis, namespace: ns })
      store = viaIoredis
      managers = managersOn([viaIoredis, viaNodeRedis].map((inner) => recordingStore(inner, writes)), 4)
    })

    afterEach(async () => {
      await closeAll(managers)
      await dropNamespace(ns, 'races')
    })

    it('creates for three owners: each owner gets exactly its quota, the rest QuotaExceededError', async () => {
      const ops = quotaRaceOps()
      const { outcomes } = await runAll(managers, ops)

      for (const [ownerId, mine] of expectQuotaRace(outcomes, ops)) {
        expect(await countValid(managers[1]!, tokensOf(mine, 'create')), ownerId).toBe(QUOTA_RACE_LIMITS[ownerId])
      }
    })

    it('idempotent creates with one idempotencyKey make one key, and every caller gets its token', async () => {
      const input = { name: 'deploy', scopes: ['data:read'], idempotencyKey: IDEMPOTENCY_KEY }
      const { outcomes } = await runAll(managers, times(24, (): Op => ({ op: 'create', input })))

      expectOnlyTypedErrors(outcomes, {})
      expect(new Set(tokensOf(outcomes, 'create')).size).toBe(1)
      expect((await managers[0]!.list({ limit: 100 })).items).toHaveLength(1)
      expect(await versionOf(store, fulfilled(outcomes)[0]!.keyId!)).toBe(1)
    })

    it('rotations and verifies: each rotation is one version step, exactly the current and the grace secret verify', async () => {
      const { key, token: original } = await managers[0]!.create({ name: 'rotated' })
      const firstHash = (await store.get(key.id))!.hash
      const ops = interleave([...times(30, (): Op => ({ op: 'rotate', id: key.id, gracePeriod: '1h' })), ...times(10, (): Op => ({ op: 'verify', token: original }))])
      const { outcomes } = await runAll(managers, ops)

      expectOnlyTypedErrors(outcomes, { rotate: ['conflict'] })
      const tokens = tokensOf(outcomes, 'rotate')
      expect(tokens.length).toBeGreaterThanOrEqual(1)
      expect(await versionOf(store, key.id)).toBe(1 + tokens.length)
      expect(chainBreak(writes, key.id, 1, firstHash)).toBeNull()
      expect(await countValid(managers[1]!, [original, ...tokens])).toBe(2)
    })

    it('delete racing updates, rotations, revokes and disables: one delete wins and the key never comes back', async () => {
      const { key, token } = await managers[0]!.create({ name: 'short-lived', ownerId: 'deleter', owner: { quota: 1 } })
      const { outcomes } = await runAll(managers, deleteRaceOps(key.id, token))

      expectDeleteRaceErrors(outcomes)
      expect(fulfilled(outcomes, 'delete')).toHaveLength(1)
      await Promise.all(managers.map((keys) => keys.flush()))
      expect(await store.get(key.id)).toBeNull()
      for (const candidate of [token, ...tokensOf(outcomes, 'rotate')]) expect(await managers[3]!.verify(candidate)).toMatchObject({ valid: false, reason: 'unknown_key' })
      // Only the audit trail (kept on purpose) may still name the key.
      expect(withoutAuditTrail(await dumpClusterNamespace(ioredis, ns))).not.toContain(key.id)
      await expect(managers[2]!.create({ name: 'successor', ownerId: 'deleter', owner: { quota: 1 } })).resolves.toBeDefined()
    })

    it('200 verifies of one limited key from four managers let exactly the limit through', async () => {
      const policies = { fifty: { rate: [{ name: 'hourly', limit: 50, window: '1h' }] } } as const
      const limited = managersOn([new RedisStore({ client: ioredis, namespace: ns }), new RedisStore({ client: nodeRedis, namespace: ns })], 4, { policies })
      try {
        const { token } = await limited[0]!.create({ name: 'metered', policy: 'fifty' })
        const { outcomes } = await runAll(limited, times(200, (): Op => ({ op: 'verify', token })))
        expectOnlyTypedErrors(outcomes, {})
        expect(fulfilled(outcomes, 'verify').filter((outcome) => outcome.valid)).toHaveLength(50)
      } finally {
        await closeAll(limited)
      }
    })
  })
})
