import { Redis } from 'ioredis'
import { createServer } from 'node:net'
import pg from 'pg'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { RedisInvalidationChannel, RedisStore, type RedisInvalidationChannelOptions, type RedisPubSubClientLike } from '../../adapters/redis/index.js'
import { PostgresInvalidationChannel, PostgresStore, type PostgresInvalidationChannelOptions } from '../../adapters/sql/index.js'
import { ConfigError, type Duration, type InvalidationChannel, type KeyManager, type KeyStore, type VerifyResult } from '../../src/index.js'
import { setup } from '../helpers.js'
import { redisGate, postgresGate } from '../support/gates.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'

const redisAvailable = (await redisGate()).available

const postgresAvailable = (await postgresGate()).available

type NodeRedisClient = ReturnType<typeof createClient>

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Calls `read` every 10 ms until `done` holds or `timeoutMs` passed; returns the last value and when it
 * was read. The caller asserts on the value (no fixed sleeps: the loop ends as soon as it can).
 */
async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<{ value: T; elapsed: number }> {
  const started = Date.now()
  for (;;) {
    const value = await read()
    const elapsed = Date.now() - started
    if (done(value) || elapsed >= timeoutMs) return { value, elapsed }
    await delay(10)
  }
}

/** Waits until `condition()` holds, failing the test after `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 2_000, what = 'condition'): Promise<void> {
  const { value } = await poll(async () => condition(), Boolean, timeoutMs)
  if (!value) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** A local port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** One process's view: its own client (or pool), a store on the shared data, and its channel. */
interface Instance {
  readonly store: KeyStore
  readonly channel: InvalidationChannel
}

interface InstanceOptions {
  onError?: (error: unknown) => void
}

/** One backend, prepared per test: shared data (namespace or table) and a unique channel name. */
interface Harness {
  readonly kind: 'ioredis' | 'node-redis' | 'postgres'
  /** Opens an instance named `name` (its connections carry that name, so they can be found). */
  instance(name: string, options?: InstanceOptions): Promise<Instance>
  /** IDs of the server connections subscribed to this test's channel. */
  subscribers(): Promise<string[]>
  /** Subscribers of this test's channel by the server's own count (Redis: PUBSUB NUMSUB). */
  serverCount(): Promise<number>
  /** Kills the subscriber connection of instance `name` from another connection; returns the IDs killed. */
  cut(name: string): Promise<string[]>
  /** A channel on a client or pool that points at a closed port. */
  unreachable(options: { subscribeTimeout: Duration; onError: (error: unknown) => void }): Promise<{ channel: InvalidationChannel; dispose(): Promise<void> }>
  /** Closes every client and pool it opened, and deletes the data. */
  dispose(): Promise<void>
}

/** A KeyManager on the real clock with a cache of `ttl` on the instance's channel (`null`: no channel). */
function manager(instance: Instance, ttl: Duration, options: { channel?: null; onError?: (error: unknown) => void } = {}): KeyManager {
  const channel = options.channel === null ? undefined : instance.channel
  return setup({ store: instance.store, clock: () => Date.now(), cache: { ttl, channel, onError: options.onError ?? ((error) => void error) } }).keys
}

async function verifyUntilInvalid(keys: KeyManager, token: string, timeoutMs: number) {
  return poll<VerifyResult>(() => keys.verify(token), (result) => !result.valid, timeoutMs)
}

/** The shared scenarios, run for each backend. */
function describeChannel(harness: () => Promise<Harness>) {
  /**
   * Runs `body` with a fresh harness. Afterwards, even when it failed, closes every KeyManager and ends
   * every subscription it tracked, then the harness (a pool would wait forever for a LISTEN client).
   */
  async function withHarness(body: (h: Harness, track: <T extends KeyManager | (() => Promise<void>)>(resource: T) => T) => Promise<void>) {
    const h = await harness()
    const resources: (KeyManager | (() => Promise<void>))[] = []
    try {
      await body(h, (resource) => (resources.push(resource), resource))
    } finally {
      await Promise.all(resources.map((resource) => (typeof resource === 'function' ? resource() : resource.close())))
      await h.dispose()
    }
  }

  it('a disable, then a revoke, on instance B reaches the copy cached by instance A well within a second', async () => {
    await withHarness(async (h, track) => {
      const a = track(manager(await h.instance('a'), '1h'))
      const b = track(manager(await h.instance('b'), '1h'))
      // The control: same store, same ttl, no channel. It keeps its stale copy, so the cache is in play.
      const control = track(manager(await h.instance('c'), '1h', { channel: null }))
      const { key, token } = await b.create({ name: 'shared', environment: 'live' })
      for (const keys of [a, b, control]) expect((await keys.verify(token)).valid).toBe(true)
      // The first verify subscribes in the background; both instances listen once the server says so.
      await until(async () => (await h.subscribers()).length === 2, 2_000, 'both instances to subscribe')

      await b.disable(key.id)
      const disabled = await verifyUntilInvalid(a, token, 1_000)
      expect(disabled.value).toMatchObject({ valid: false, reason: 'disabled' })
      expect((await control.verify(token)).valid).toBe(true)

      await b.revoke(key.id)
      const revoked = await poll(() => a.verify(token), (result) => !result.valid && result.reason === 'revoked', 1_000)
      expect(revoked.value).toMatchObject({ valid: false, reason: 'revoked' })
      expect((await control.verify(token)).valid).toBe(true)
    })
  })

  it("when A's subscriber connection is cut, B's change still reaches A within the cache ttl", async () => {
    await withHarness(async (h, track) => {
      const errors: unknown[] = []
      const a = track(manager(await h.instance('a', { onError: (error) => void errors.push(error) }), '300ms'))
      const b = track(manager(await h.instance('b'), '300ms'))
      const { key, token } = await b.create({ name: 'shared', environment: 'live' })
      expect((await a.verify(token)).valid).toBe(true)
      await until(async () => (await h.subscribers()).length === 1, 2_000, 'A to subscribe')
      expect(await h.cut('a')).toHaveLength(1)

      await b.disable(key.id)
      const { value, elapsed } = await verifyUntilInvalid(a, token, 300 + 700)
      expect(value).toMatchObject({ valid: false, reason: 'disabled' })
      expect(elapsed).toBeLessThan(300 + 700)
    })
  })

  it('listens again after the subscriber connection is cut, and delivers again', async () => {
    await withHarness(async (h, track) => {
      const errors: unknown[] = []
      const a = track(manager(await h.instance('a', { onError: (error) => void errors.push(error) }), '1h'))
      const b = track(manager(await h.instance('b'), '1h'))
      const { key, token } = await b.create({ name: 'shared', environment: 'live' })
      expect((await a.verify(token)).valid).toBe(true)
      await until(async () => (await h.subscribers()).length === 1, 2_000, 'A to subscribe')
      const killed = await h.cut('a')
      expect(killed).toHaveLength(1)
      await until(
        async () => {
          const ids = await h.subscribers()
          return ids.length === 1 && !killed.includes(ids[0]!)
        },
        3_000,
        'A to subscribe again on a new connection',
      )

      await b.disable(key.id)
      expect((await verifyUntilInvalid(a, token, 1_000)).value).toMatchObject({ valid: false, reason: 'disabled' })
      // PostgreSQL re-listens by itself and says why; the Redis drivers reconnect on their own.
      if (h.kind === 'postgres') expect(errors.length).toBeGreaterThan(0)
    })
  })

  it('publish reaches every subscriber; unsubscribe stops delivery and closes the connection', async () => {
    await withHarness(async (h, track) => {
      const one = (await h.instance('one')).channel
      const witness = (await h.instance('witness')).channel
      const publisher = (await h.instance('publisher')).channel
      const got: string[] = []
      const seen: string[] = []
      const stopOne = track(await one.subscribe((keyId) => void got.push(keyId)))
      const stopWitness = track(await witness.subscribe((keyId) => void seen.push(keyId)))
      // subscribe resolves once the server has the subscription.
      expect(await h.subscribers()).toHaveLength(2)
      expect(await h.serverCount()).toBe(2)

      await publisher.publish('k1')
      await until(() => got.includes('k1') && seen.includes('k1'), 1_000, 'k1 to arrive')
      await stopOne()
      await until(async () => (await h.subscribers()).length === 1, 1_000, 'the connection to close')

      await publisher.publish('k2')
      await until(() => seen.includes('k2'), 1_000, 'k2 to reach the witness')
      expect(got).toEqual(['k1'])
      expect(seen).toEqual(['k1', 'k2'])

      await stopWitness()
      await stopOne() // a second call does nothing
      await until(async () => (await h.serverCount()) === 0, 1_000, 'no subscriber left')
    })
  })

  it('listeners of one channel object share one connection, closed by the last unsubscribe', async () => {
    await withHarness(async (h, track) => {
      const channel = (await h.instance('shared')).channel
      const publisher = (await h.instance('publisher')).channel
      const first: string[] = []
      const second: string[] = []
      const [stopFirst, stopSecond] = (await Promise.all([channel.subscribe((id) => void first.push(id)), channel.subscribe((id) => void second.push(id))])).map(track)
      expect(await h.subscribers()).toHaveLength(1)

      await publisher.publish('k1')
      await until(() => first.length === 1 && second.length === 1, 1_000, 'k1 to reach both listeners')
      await stopFirst!()
      expect(await h.subscribers()).toHaveLength(1)
      await publisher.publish('k2')
      await until(() => second.length === 2, 1_000, 'k2 to reach the second listener')
      expect(first).toEqual(['k1'])

      await stopSecond!()
      await until(async () => (await h.serverCount()) === 0, 1_000, 'no subscriber left')
      // Subscribing again opens a new connection.
      const stopAgain = track(await channel.subscribe(() => undefined))
      expect(await h.subscribers()).toHaveLength(1)
      await stopAgain()
    })
  })

  it("close() of the KeyManager unsubscribes: none of the instance's subscriber connections is left", async () => {
    await withHarness(async (h, track) => {
      const a = track(manager(await h.instance('a'), '1h'))
      const { token } = await a.create({ name: 'x', environment: 'live' })
      await a.verify(token)
      await until(async () => (await h.subscribers()).length === 1, 2_000, 'A to subscribe')
      await a.close()
      await until(async () => (await h.serverCount()) === 0, 1_000, 'no subscriber after close()')
      expect(await h.subscribers()).toEqual([])

      // Closed while the subscription is still starting: close() waits for it, then unsubscribes.
      const b = track(manager(await h.instance('b'), '1h'))
      await b.verify(token)
      await b.close()
      await until(async () => (await h.serverCount()) === 0, 1_000, 'no subscriber after an early close()')
      expect(await h.subscribers()).toEqual([])
    })
  })

  it('fails to subscribe within subscribeTimeout when the server is unreachable; the KeyManager reports it and verifies on', async () => {
    const h = await harness()
    const errors: unknown[] = []
    const reported: unknown[] = []
    const { channel, dispose } = await h.unreachable({ subscribeTimeout: '300ms', onError: (error) => void errors.push(error) })
    try {
      const started = Date.now()
      await expect(channel.subscribe(() => undefined)).rejects.toBeInstanceOf(Error)
      expect(Date.now() - started).toBeLessThan(2_000)

      const keys = setup({ store: new MemoryStore(), clock: () => Date.now(), cache: { ttl: '1h', channel, onError: (error) => void reported.push(error) } }).keys
      const { token } = await keys.create({ name: 'x', environment: 'live' })
      expect((await keys.verify(token)).valid).toBe(true)
      await until(() => reported.length > 0, 2_000, 'the KeyManager to report the channel error')
      const closing = Date.now()
      await keys.close()
      expect(Date.now() - closing).toBeLessThan(1_000)
    } finally {
      await dispose()
      await h.dispose()
    }
  })
}

// ---------------------------------------------------------------------------------------------------
// Redis

/** Every key whose name contains `namespace`, found with SCAN. */
async function deleteNamespace(client: Redis, namespace: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `*${namespace}*`, 'COUNT', 1000)
    if (batch.length > 0) await client.del(...batch)
    cursor = next
  } while (cursor !== '0')
}

/** `CLIENT LIST TYPE pubsub`, parsed: each connection's id, name and number of channel subscriptions. */
async function pubsubClients(admin: Redis): Promise<{ id: string; name: string; sub: number }[]> {
  const listing = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
  return listing
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = new Map(line.trim().split(' ').map((field) => field.split('=', 2) as [string, string]))
      return { id: fields.get('id') ?? '', name: fields.get('name') ?? '', sub: Number(fields.get('sub') ?? 0) }
    })
}

describe.skipIf(!redisAvailable)('RedisInvalidationChannel', () => {
  let admin: Redis

  beforeAll(() => {
    admin = new Redis(SERVICES.redis)
  })

  afterAll(async () => {
    await admin?.quit()
  })

  function redisHarness(kind: 'ioredis' | 'node-redis') {
    return async (): Promise<Harness> => {
      const suffix = uniqueSuffix()
      const namespace = `kwinv-${suffix}`
      const channelName = `kwtest:${suffix}:invalidate`
      const closers: (() => Promise<unknown>)[] = []
      const tag = (name: string) => `${namespace}-${name}`
      const ours = async () => (await pubsubClients(admin)).filter((client) => client.name.startsWith(`${namespace}-`) && client.sub > 0)
      const channelOptions = (options: InstanceOptions) => ({ channel: channelName, ...(options.onError ? { onError: options.onError } : {}) })
      return {
        kind,
        async instance(name, options = {}) {
          if (kind === 'ioredis') {
            const client = new Redis({ ...SERVICES.redis, connectionName: tag(name) })
            closers.push(() => client.quit())
            return { store: new RedisStore({ client, namespace }), channel: new RedisInvalidationChannel({ client, ...channelOptions(options) }) }
          }
          const client: NodeRedisClient = createClient({ socket: SERVICES.redis, name: tag(name) })
          await client.connect()
          closers.push(() => client.close())
          return { store: new RedisStore({ client, namespace }), channel: new RedisInvalidationChannel({ client, ...channelOptions(options) }) }
        },
        subscribers: async () => (await ours()).map((client) => client.id),
        serverCount: async () => Number(((await admin.call('PUBSUB', 'NUMSUB', channelName)) as [string, number])[1]),
        async cut(name) {
          const victims = (await ours()).filter((client) => client.name === tag(name))
          for (const { id } of victims) await admin.call('CLIENT', 'KILL', 'ID', id)
          return victims.map((client) => client.id)
        },
        async unreachable({ subscribeTimeout, onError }) {
          const port = await deadPort()
          if (kind === 'ioredis') {
            const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true })
            client.on('error', () => undefined) // the caller's own client: its errors are the caller's business
            return { channel: new RedisInvalidationChannel({ client, subscribeTimeout, onError }), dispose: async () => client.disconnect() }
          }
          const client: NodeRedisClient = createClient({ socket: { host: '127.0.0.1', port } })
          return { channel: new RedisInvalidationChannel({ client, subscribeTimeout, onError }), dispose: async () => undefined }
        },
        async dispose() {
          await Promise.all(closers.map((close) => close()))
          await deleteNamespace(admin, namespace)
        },
      }
    }
  }

  describe('with ioredis', () => describeChannel(redisHarness('ioredis')))
  describe('with node-redis', () => describeChannel(redisHarness('node-redis')))

  describe('a caller-owned subscriber', () => {
    /** Subscribes through `subscriber`, then checks that it is unsubscribed, open and free of our listeners. */
    async function expectUsedAndLeftOpen(
      client: RedisPubSubClientLike,
      subscriber: RedisPubSubClientLike & { listenerCount(event: string): number },
      ping: () => Promise<unknown>,
    ) {
      const channel = `kwtest:${uniqueSuffix()}:invalidate`
      const errorListeners = subscriber.listenerCount('error')
      const invalidation = new RedisInvalidationChannel({ client, subscriber, channel })
      const got: string[] = []
      const stop = await invalidation.subscribe((keyId) => void got.push(keyId))
      expect(await admin.call('PUBSUB', 'NUMSUB', channel)).toEqual([channel, 1])
      await invalidation.publish('k1')
      await until(() => got.includes('k1'), 1_000, 'k1 to arrive')
      await stop()
      expect(await admin.call('PUBSUB', 'NUMSUB', channel)).toEqual([channel, 0])
      // Still open and usable for ordinary commands; no listener of ours is left on it.
      expect(await ping()).toBe('PONG')
      expect(subscriber.listenerCount('error')).toBe(errorListeners)
      expect(subscriber.listenerCount('message')).toBe(0)
    }

    it('with ioredis: is used for SUBSCRIBE, unsubscribed at the end and left open', async () => {
      const client = new Redis(SERVICES.redis)
      const subscriber = new Redis(SERVICES.redis)
      try {
        await expectUsedAndLeftOpen(client, subscriber, () => subscriber.ping())
      } finally {
        await Promise.all([client.quit(), subscriber.quit()])
      }
    })

    it('with node-redis: is used for SUBSCRIBE, unsubscribed at the end and left open', async () => {
      const client = await createClient({ socket: SERVICES.redis }).connect()
      const subscriber = await createClient({ socket: SERVICES.redis }).connect()
      try {
        await expectUsedAndLeftOpen(client, subscriber, () => subscriber.ping())
      } finally {
        await Promise.all([client.close(), subscriber.close()])
      }
    })
  })

  it('subscribes through a client that fails fast (no offline queue) or connects lazily', async () => {
    const channel = `kwtest:${uniqueSuffix()}:invalidate`
    const ioredisClients = [{ enableOfflineQueue: false }, { lazyConnect: true }, { lazyConnect: true, enableOfflineQueue: false }].map(
      (options) => new Redis({ ...SERVICES.redis, ...options }),
    )
    const nodeRedisClient = await createClient({ socket: SERVICES.redis, disableOfflineQueue: true }).connect()
    const stops: (() => Promise<void>)[] = []
    try {
      for (const client of [...ioredisClients, nodeRedisClient]) {
        stops.push(await new RedisInvalidationChannel({ client, channel, subscribeTimeout: '2s' }).subscribe(() => undefined))
      }
      expect(await admin.call('PUBSUB', 'NUMSUB', channel)).toEqual([channel, 4])
    } finally {
      await Promise.all(stops.map((stop) => stop()))
      ioredisClients.forEach((client) => client.disconnect())
      await nodeRedisClient.close()
    }
    await until(async () => ((await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1] === 0, 1_000, 'no subscriber left')
  })

  it('defaults the channel name to keywarden:invalidate', () => {
    const client = new Redis({ ...SERVICES.redis, lazyConnect: true })
    expect(new RedisInvalidationChannel({ client }).channel).toBe('keywarden:invalidate')
    expect(new RedisInvalidationChannel({ client, channel: 'billing:invalidate' }).channel).toBe('billing:invalidate')
    client.disconnect()
  })

  it('throws ConfigError for wrong constructor arguments, naming the option', () => {
    const client = new Redis({ ...SERVICES.redis, lazyConnect: true })
    const nodeRedis = createClient({ socket: SERVICES.redis })
    try {
      const cases: [unknown, string][] = [
        [undefined, ''],
        [null, ''],
        ['redis://localhost', ''],
        [{}, 'client'],
        [{ client: null }, 'client'],
        [{ client: (args: string[]) => client.call(args[0]!, ...args.slice(1)) }, 'client'],
        [{ client: { call: async () => 'OK' } }, 'client'],
        [{ client: { publish: async () => 1, subscribe: async () => undefined, on: () => undefined } }, 'client'], // no duplicate()
        [{ client, channel: '' }, 'channel'],
        [{ client, channel: 42 }, 'channel'],
        [{ client, subscriber: {} }, 'subscriber'],
        [{ client, subscriber: 'redis://localhost' }, 'subscriber'],
        [{ client, subscribeTimeout: 'soon' }, 'subscribeTimeout'],
        [{ client, subscribeTimeout: 0 }, 'subscribeTimeout'],
        [{ client: nodeRedis, onError: 'log' }, 'onError'],
      ]
      for (const [options, path] of cases) {
        let thrown: unknown
        try {
          new RedisInvalidationChannel(options as RedisInvalidationChannelOptions)
        } catch (error) {
          thrown = error
        }
        expect(thrown, JSON.stringify(options ?? null)).toBeInstanceOf(ConfigError)
        expect((thrown as ConfigError).issues.map((issue) => issue.path.join('.')), path).toContain(path)
      }
      // A client without duplicate() is enough when the subscriber is given.
      const minimal = { publish: async () => 1, subscribe: async () => undefined, on: () => undefined, call: async () => 'OK' }
      expect(() => new RedisInvalidationChannel({ client: minimal as never, subscriber: client })).not.toThrow()
    } finally {
      client.disconnect()
    }
  })
})

// ---------------------------------------------------------------------------------------------------
// PostgreSQL

describe.skipIf(!postgresAvailable)('PostgresInvalidationChannel', () => {
  let admin: pg.Pool

  beforeAll(() => {
    admin = new pg.Pool({ ...SERVICES.postgres, max: 2 })
  })

  afterAll(async () => {
    await admin?.end()
  })

  async function postgresHarness(): Promise<Harness> {
    const suffix = uniqueSuffix()
    const table = `kwinv_${suffix}`
    const channelName = `kwinv_${suffix}`
    const pools: pg.Pool[] = []
    const tag = (name: string) => `${table}_${name}`
    const listenQuery = `LISTEN "${channelName}"`
    const listening = async (applicationName?: string): Promise<string[]> => {
      const { rows } = await admin.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE query = $1 AND application_name LIKE $2 ORDER BY pid',
        [listenQuery, applicationName ?? `${table}\\_%`],
      )
      return rows.map((row) => String(row.pid))
    }
    let migrated = false
    return {
      kind: 'postgres',
      async instance(name, options = {}) {
        const pool = new pg.Pool({ ...SERVICES.postgres, application_name: tag(name), max: 4 })
        pools.push(pool)
        const store = new PostgresStore({ pool, table })
        if (!migrated) {
          await store.migrate()
          migrated = true
        }
        const channel = new PostgresInvalidationChannel({ pool, channel: channelName, ...(options.onError ? { onError: options.onError } : {}) })
        return { store, channel }
      },
      subscribers: () => listening(),
      serverCount: async () => (await listening()).length,
      async cut(name) {
        const { rows } = await admin.query<{ pid: number }>(
          // The function in the select list, so it runs only for the rows the WHERE clause kept.
          'SELECT pid, pg_terminate_backend(pid) FROM (SELECT pid FROM pg_stat_activity WHERE query = $1 AND application_name = $2) AS listeners',
          [listenQuery, tag(name)],
        )
        return rows.map((row) => String(row.pid))
      },
      async unreachable({ subscribeTimeout, onError }) {
        const pool = new pg.Pool({ host: '127.0.0.1', port: await deadPort(), user: 'postgres', database: 'test' })
        return { channel: new PostgresInvalidationChannel({ pool, subscribeTimeout, onError }), dispose: () => pool.end() }
      },
      async dispose() {
        await admin.query(`DROP TABLE IF EXISTS "${table}"`)
        // end() waits for every client to come back: bounded, so a failed test's leak cannot hang teardown.
        await Promise.all(pools.map((pool) => Promise.race([pool.end(), delay(2_000)])))
      },
    }
  }

  describeChannel(postgresHarness)

  it('notifies and listens on the default channel keywarden_invalidate, quoted (case-sensitive)', async () => {
    const pool = new pg.Pool({ ...SERVICES.postgres, max: 2 })
    let stop: (() => Promise<void>) | undefined
    try {
      expect(new PostgresInvalidationChannel({ pool }).channel).toBe('keywarden_invalidate')
      const mixed = new PostgresInvalidationChannel({ pool, channel: `Kw_${uniqueSuffix()}` })
      const got: string[] = []
      stop = await mixed.subscribe((keyId) => void got.push(keyId))
      await mixed.publish('k1')
      await until(() => got.includes('k1'), 1_000, 'k1 to arrive')
      // Only the exact (quoted) name: the lower-cased one is another channel.
      await pool.query('SELECT pg_notify($1, $2)', [mixed.channel.toLowerCase(), 'other'])
      await mixed.publish('k2')
      await until(() => got.includes('k2'), 1_000, 'k2 to arrive')
      expect(got).toEqual(['k1', 'k2'])
    } finally {
      await stop?.()
      await pool.end() // would wait forever for a client that was never released
    }
  })

  it('throws ConfigError for wrong constructor arguments, naming the option', () => {
    const pool = new pg.Pool(SERVICES.postgres)
    const client = new pg.Client(SERVICES.postgres)
    const cases: [unknown, string][] = [
      [undefined, ''],
      [null, ''],
      ['postgres://localhost', ''],
      [{}, 'pool'],
      [{ pool: null }, 'pool'],
      [{ pool: client }, 'pool'], // a single client cannot lend a connection for LISTEN
      [{ pool: { query: async () => ({ rows: [], rowCount: 0 }) } }, 'pool'],
      [{ pool, channel: '' }, 'channel'],
      [{ pool, channel: '1abc' }, 'channel'],
      [{ pool, channel: 'keywarden-invalidate' }, 'channel'],
      [{ pool, channel: 'a"; DROP TABLE x; --' }, 'channel'],
      [{ pool, channel: 'a'.repeat(64) }, 'channel'],
      [{ pool, channel: 7 }, 'channel'],
      [{ pool, subscribeTimeout: '5 seconds' }, 'subscribeTimeout'],
      [{ pool, onError: true }, 'onError'],
    ]
    for (const [options, path] of cases) {
      let thrown: unknown
      try {
        new PostgresInvalidationChannel(options as PostgresInvalidationChannelOptions)
      } catch (error) {
        thrown = error
      }
      expect(thrown, String(path)).toBeInstanceOf(ConfigError)
      expect((thrown as ConfigError).issues.map((issue) => issue.path.join('.')), path).toContain(path)
    }
    expect(new PostgresInvalidationChannel({ pool, channel: 'a'.repeat(63) }).channel).toHaveLength(63)
    return pool.end()
  })
})
