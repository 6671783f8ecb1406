/**
 * Issue 15: a lost invalidation subscription must not keep a revoked key alive for a whole cache ttl.
 * On the local Redis Cluster (sharded pub/sub, Redis 7) and on standalone Redis, with ioredis and
 * node-redis: the subscriber connection of one instance is killed (`CLIENT KILL ID`, only our own
 * connection: other files share the servers), a revoke is made on another instance during the outage,
 * and the first instance refuses the key well within its 60 s ttl; once the subscription is back, it
 * caches again. Real servers, real clocks, polls with deadlines, no timing assertions.
 */
import { Cluster, Redis } from 'ioredis'
import { createClient, createCluster } from 'redis'
import { afterAll, describe, expect, it } from 'vitest'
import { RedisInvalidationChannel, RedisStore, type RedisClientLike, type RedisPubSubClientLike } from '../../adapters/redis/index.js'
import type { KeyManager } from '../../src/index.js'
import { countingStore, setup } from '../helpers.js'
import { redisGate } from '../support/gates.js'
import { CLUSTER_NODES, deleteClusterNamespace, keySlot, masterOfSlot, redisClusterGate } from '../support/redis-cluster.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import { eventually } from '../support/eventually.js'

const clusterGate = await redisClusterGate()
const redisAvailable = (await redisGate()).available


interface PubSubConnection {
  readonly id: string
  readonly name: string
  /** Classic and sharded subscriptions. */
  readonly sub: number
  readonly ssub: number
}

async function pubsubConnections(node: Redis): Promise<PubSubConnection[]> {
  const listing = String(await node.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
  return listing
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = new Map(line.trim().split(' ').map((field) => field.split('=', 2) as [string, string]))
      return { id: fields.get('id') ?? '', name: fields.get('name') ?? '', sub: Number(fields.get('sub') ?? 0), ssub: Number(fields.get('ssub') ?? 0) }
    })
}

/** One way to reach Redis for a test: a client whose connections carry `tag` in their name, and the node its subscriber lands on. */
interface Backend {
  readonly client: RedisPubSubClientLike & RedisClientLike
  /** The node holding the subscription (a standalone server, or the master owning the shard channel's slot). */
  node(channel: RedisInvalidationChannel): Promise<Redis>
  readonly sharded: boolean
  dispose(): Promise<void>
}

type Open = (tag: string, namespace: string) => Promise<Backend>

const admins: Redis[] = []
afterAll(async () => {
  await Promise.all(admins.map((admin) => admin.quit()))
})

function admin(host: string, port: number): Redis {
  const connection = new Redis({ host, port })
  admins.push(connection)
  return connection
}

async function clusterNode(cluster: Cluster, channel: RedisInvalidationChannel): Promise<Redis> {
  const slot = await keySlot(cluster, channel.shardChannel)
  const [host, port] = masterOfSlot(clusterGate.masters, slot).address.split(':')
  return admin(host!, Number(port))
}

const clusterBackends: Record<string, Open> = {
  'ioredis Cluster': async (tag, namespace) => {
    const cluster = new Cluster([...CLUSTER_NODES], { redisOptions: { connectionName: tag } })
    return {
      client: cluster,
      sharded: true,
      node: (channel) => clusterNode(cluster, channel),
      dispose: async () => {
        await deleteClusterNamespace(cluster, namespace)
        await cluster.quit()
      },
    }
  },
  'node-redis createCluster': async (tag, namespace) => {
    const cluster = createCluster({ rootNodes: CLUSTER_NODES.map((node) => ({ url: `redis://${node.host}:${node.port}` })), defaults: { name: tag } })
    cluster.on('error', () => undefined)
    await cluster.connect()
    const keys = new Cluster([...CLUSTER_NODES])
    return {
      client: cluster as unknown as RedisPubSubClientLike & RedisClientLike,
      sharded: true,
      node: (channel) => clusterNode(keys, channel),
      dispose: async () => {
        await deleteClusterNamespace(keys, namespace)
        await keys.quit()
        await cluster.close()
      },
    }
  },
}

async function deleteStandalone(client: Redis, namespace: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `{${namespace}}:*`, 'COUNT', 1000)
    if (batch.length > 0) await client.del(...batch)
    cursor = next
  } while (cursor !== '0')
}

const standaloneBackends: Record<string, Open> = {
  'ioredis Redis': async (tag, namespace) => {
    const client = new Redis({ ...SERVICES.redis, connectionName: tag })
    return {
      client,
      sharded: false,
      node: async () => admin(SERVICES.redis.host, SERVICES.redis.port),
      dispose: async () => {
        await deleteStandalone(client, namespace)
        await client.quit()
      },
    }
  },
  'node-redis createClient': async (tag, namespace) => {
    const client = await createClient({ socket: SERVICES.redis, name: tag }).connect()
    const cleaner = new Redis(SERVICES.redis)
    return {
      client: client as unknown as RedisPubSubClientLike & RedisClientLike,
      sharded: false,
      node: async () => admin(SERVICES.redis.host, SERVICES.redis.port),
      dispose: async () => {
        await deleteStandalone(cleaner, namespace)
        await cleaner.quit()
        await client.close()
      },
    }
  },
}

function describeLostSubscription(open: Open) {
  it('uses the expected pub/sub; a revoke made while the subscriber is cut is refused well within the 60 s ttl; caching resumes after', async () => {
    const suffix = uniqueSuffix()
    const tag = `kwlost-${suffix}`
    const namespace = `kwlost-${suffix}`
    const backend = await open(tag, namespace)
    const managers: KeyManager[] = []
    try {
      const store = new RedisStore({ client: backend.client, namespace })
      const onReader = countingStore(store)
      const channel = () => new RedisInvalidationChannel({ client: backend.client, namespace, channel: `${namespace}:invalidate`, onError: () => undefined })
      const readerChannel = channel()
      const cache = { ttl: '60s' as const, onError: () => undefined }
      const writer = setup({ store, clock: () => Date.now(), cache: { ...cache, channel: channel() } }).keys
      const reader = setup({ store: onReader.store, clock: () => Date.now(), cache: { ...cache, channel: readerChannel } }).keys
      // The control: same store and ttl, no channel. It keeps its stale copy, so the cache is in play.
      const control = setup({ store, clock: () => Date.now(), cache }).keys
      managers.push(writer, reader, control)
      const node = await backend.node(readerChannel)
      // Only the reader ever verifies, so its subscriber is the only connection of ours subscribed.
      const ours = async () => (await pubsubConnections(node)).filter((connection) => connection.name.includes(tag) && connection.sub + connection.ssub > 0)

      const { key, token } = await writer.create({ name: 'shared', environment: 'live' })
      expect((await reader.verify(token)).valid).toBe(true)
      expect((await control.verify(token)).valid).toBe(true)
      await eventually(async () => expect(await ours()).toHaveLength(1))
      const [subscriber] = await ours()
      // The reader's subscription is shared: this listener hears the same loss and recovery it does.
      const states: string[] = []
      const stopWatching = await readerChannel.subscribe(() => undefined, { onLost: () => void states.push('lost'), onRestored: () => void states.push('restored') })
      managers.push({ close: stopWatching } as unknown as KeyManager)
      if (backend.sharded) {
        expect(subscriber!.ssub, 'SSUBSCRIBE, not SUBSCRIBE').toBe(1)
        expect(await node.call('PUBSUB', 'SHARDCHANNELS', readerChannel.shardChannel)).toEqual([readerChannel.shardChannel])
        expect(readerChannel.shardChannel).toBe(`{${namespace}}:${namespace}:invalidate`)
      } else {
        expect(subscriber!.sub, 'SUBSCRIBE on standalone Redis').toBe(1)
        expect(await node.call('PUBSUB', 'NUMSUB', readerChannel.channel)).toEqual([readerChannel.channel, 1])
      }
      const reads = () => onReader.calls['get'] ?? 0
      // Served from the reader's cache while the subscription is up.
      await eventually(async () => {
        await reader.verify(token)
        const before = reads()
        expect((await reader.verify(token)).valid).toBe(true)
        expect(reads()).toBe(before)
      })

      await node.call('CLIENT', 'KILL', 'ID', subscriber!.id)
      await writer.revoke(key.id)
      // Far sooner than the 60 s ttl: only the lost-subscription handling (or a delivered message) explains it.
      await eventually(async () => expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' }), 15_000)
      expect((await control.verify(token)).valid, 'without a channel the cached copy stays').toBe(true)
      expect(states[0], 'the channel reported the loss').toBe('lost')

      // The subscription comes back on a new connection, and the reader caches again.
      await eventually(async () => {
        const now = await ours()
        expect(now).toHaveLength(1)
        expect(now[0]!.id).not.toBe(subscriber!.id)
      }, 15_000)
      // A heartbeat late on a busy machine may add a loss and a recovery of its own; the last word is the recovery.
      await eventually(async () => expect(states.at(-1)).toBe('restored'), 15_000)
      await eventually(async () => {
        await reader.verify(token)
        const before = reads()
        expect(await reader.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })
        expect(reads(), 'cached again after the subscription is back').toBe(before)
      }, 15_000)
    } finally {
      await Promise.all(managers.map((keys) => keys.close()))
      await backend.dispose()
    }
  }, 30_000)
}

describe.skipIf(!clusterGate.available)('lost invalidation subscription on Redis Cluster (sharded pub/sub)', () => {
  for (const [name, open] of Object.entries(clusterBackends)) describe(name, () => describeLostSubscription(open))
})

describe.skipIf(!redisAvailable)('lost invalidation subscription on standalone Redis', () => {
  for (const [name, open] of Object.entries(standaloneBackends)) describe(name, () => describeLostSubscription(open))
})

describe.skipIf(!redisAvailable)('a subscriber that goes deaf without any connection event', () => {
  /**
   * The subscription is dropped behind the channel's back (UNSUBSCRIBE on the caller's own subscriber
   * connection): no 'close', no 'reconnecting', nothing a driver reports, as with ioredis' sharded
   * subscribers after some Cluster failovers. Only the heartbeat can tell.
   */
  async function deafened(heartbeat: '100ms' | false) {
    const namespace = `kwdeaf-${uniqueSuffix()}`
    const client = new Redis(SERVICES.redis)
    const subscriber = new Redis(SERVICES.redis)
    const name = `${namespace}:invalidate`
    const channel = new RedisInvalidationChannel({ client, subscriber, channel: name, heartbeat, onError: () => undefined })
    const states: string[] = []
    const stop = await channel.subscribe(() => undefined, { onLost: () => void states.push('lost'), onRestored: () => void states.push('restored') })
    await subscriber.unsubscribe(name)
    return {
      states,
      resubscribe: () => subscriber.subscribe(name),
      async dispose() {
        await stop().catch(() => undefined)
        await Promise.all([client.quit(), subscriber.quit()])
      },
    }
  }

  it('the heartbeat reports the loss, and the recovery once the subscription is back', async () => {
    const deaf = await deafened('100ms')
    try {
      await eventually(async () => expect(deaf.states).toEqual(['lost']), 5_000)
      await deaf.resubscribe()
      await eventually(async () => expect(deaf.states.at(-1)).toBe('restored'), 5_000)
    } finally {
      await deaf.dispose()
    }
  })

  it('without the heartbeat nothing reports it (the control)', async () => {
    const deaf = await deafened(false)
    try {
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(deaf.states).toEqual([])
    } finally {
      await deaf.dispose()
    }
  })

  it('a heartbeat that is not a positive duration or false is a ConfigError naming it', () => {
    const client = new Redis({ ...SERVICES.redis, lazyConnect: true })
    for (const heartbeat of ['0ms', 'soon', -5, true]) {
      expect(() => new RedisInvalidationChannel({ client, heartbeat: heartbeat as never }), String(heartbeat)).toThrow(
        expect.objectContaining({ code: 'config_invalid', issues: [expect.objectContaining({ path: ['heartbeat'] })] }),
      )
    }
    client.disconnect()
  })
})
