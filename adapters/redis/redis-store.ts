import { ConfigError } from '../../src/errors.js'
import { callStore } from '../../src/store-failure.js'
import type { InsertResult, KeyQuery, KeyStore, QuotaCheck, StoredKey, UpdateResult } from '../../src/store.js'
import { importDriver } from '../driver.js'
import { toSendCommand, type IoredisLikeClient, type RedisClientLike, type SendCommand } from './client.js'
import { checkNamespace, DEFAULT_NAMESPACE, KeyLayout, orderMember } from './keys.js'
import { listRecords, scoreArgument } from './list.js'
import { decodeFixed, decodeRecord, encodeDoc, encodeFixed, encodeNumber, READ_FIELDS } from './record-codec.js'
import { readOutcome, readText, readTexts } from './replies.js'
import { DELETE, INSERT, runScript, TOUCH, UPDATE } from './scripts.js'

/**
 * Options of {@link RedisStore}.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { RedisStore, type RedisStoreOptions } from 'keywarden/adapters/redis'
 *
 * const options: RedisStoreOptions = { client: new Redis(), namespace: 'billing-api' }
 * const store = new RedisStore(options)
 * ```
 */
export interface RedisStoreOptions {
  /**
   * How the store reaches Redis: an ioredis `Redis` or `Cluster`, a connected node-redis client, or a
   * `sendCommand` function. The caller owns it: the store never connects, quits or closes it.
   */
  readonly client: RedisClientLike
  /**
   * Every key starts with `{namespace}:`, a Redis Cluster hash tag: a namespace lives on one shard, and
   * separate namespaces (per app or per region) spread over shards. Non-empty, without `{` or `}`.
   * Default `'keywarden'`.
   */
  readonly namespace?: string
}

/** The time limit {@link RedisStore.connect} gives each command, in milliseconds (the middlewares' default timeout). */
const REDIS_COMMAND_TIMEOUT_MS = 5_000

// Replacing a record concurrently with one of other immutable fields between our read and our script
// takes a delete and an insert each time; a few attempts are plenty.
const MAX_ATTEMPTS = 5

/**
 * A {@link KeyStore} on Redis (5 or later, standalone or Cluster). Each operation is one Lua script or
 * one command, so each is atomic; the record keeps a keyed hash of the secret, never the secret.
 * No migration is needed: the first insert creates the keys. The constructor does no I/O.
 *
 * @example With ioredis
 * ```ts
 * import { Redis } from 'ioredis'
 * import { KeyManager } from 'keywarden'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const client = new Redis(process.env.REDIS_URL!)
 * const keys = new KeyManager({ store: new RedisStore({ client }), pepper: process.env.KEY_PEPPER })
 * ```
 *
 * @example With node-redis
 * ```ts
 * import { createClient } from 'redis'
 * import { KeyManager } from 'keywarden'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const client = await createClient({ url: process.env.REDIS_URL }).connect()
 * const keys = new KeyManager({ store: new RedisStore({ client, namespace: 'billing-api' }) })
 * ```
 *
 * @example With a sendCommand function (any client, or a node-redis cluster)
 * ```ts
 * import { createCluster } from 'redis'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const cluster = await createCluster({ rootNodes: [{ url: 'redis://redis-1:6379' }] }).connect()
 * // Every key of a namespace shares the hash tag {namespace}: route by it.
 * const store = new RedisStore({ client: (args) => cluster.sendCommand('{keywarden}', false, args) })
 * ```
 */
export class RedisStore implements KeyStore {
  /** The namespace every key of this store is tagged with. */
  readonly namespace: string

  private readonly send: SendCommand
  private readonly keys: KeyLayout

  /** @throws {@link keywarden!ConfigError | ConfigError} naming `client` or `namespace`. */
  constructor(options: RedisStoreOptions | RedisClientLike) {
    // The client alone (`new RedisStore(redis)`) means the default namespace.
    if (typeof options === 'function' || (typeof options === 'object' && options !== null && !('client' in options))) {
      options = { client: options as RedisClientLike }
    }
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError([{ path: [], message: 'must be a Redis client or an object with a client' }])
    }
    this.send = toSendCommand(options.client)
    this.namespace = checkNamespace(options.namespace ?? DEFAULT_NAMESPACE)
    this.keys = new KeyLayout(this.namespace)
  }

  /** One script: ID check, quota count (the owner's set of non-revoked IDs) and every write. */
  async insert(record: StoredKey, quota: QuotaCheck | null): Promise<InsertResult> {
    return this.run('insert', async () => {
      const { keys } = this
      const { ownerId, tenantId } = record
      const declared = [keys.record(record.id), keys.allIndex, keys.expiryIndex]
      const position = (key: string | null): string => (key === null ? '0' : String(declared.push(key)))
      const ownerLive = position(ownerId === null ? null : keys.ownerLive(ownerId))
      // The contract has quota.ownerId === record.ownerId; another owner is still counted correctly.
      const checked = quota !== null && Number.isFinite(quota.limit)
      const quotaLive = !checked ? '0' : quota.ownerId === ownerId ? ownerLive : position(keys.ownerLive(quota.ownerId))
      const positions = [
        position(ownerId === null ? null : keys.ownerIndex(ownerId)),
        ownerLive,
        position(tenantId === null ? null : keys.tenantIndex(tenantId)),
        quotaLive,
      ]
      const args = [
        record.id,
        orderMember(record.createdAt, record.id),
        encodeFixed(record),
        encodeDoc(record),
        encodeNumber(record.version),
        record.lastUsedAt === null ? '' : encodeNumber(record.lastUsedAt),
        expiryScore(record),
        ...positions,
        checked ? String(quota.limit) : '',
        record.revokedAt === null ? '1' : '0',
      ]
      return readOutcome(await runScript(this.send, INSERT, declared, args), ['inserted', 'id_taken', 'quota_exceeded'] as const)
    })
  }

  /** One HMGET. */
  async get(id: string): Promise<StoredKey | null> {
    return this.run('get', async () => decodeRecord(readTexts(await this.send(['HMGET', this.keys.record(id), ...READ_FIELDS]))))
  }

  /**
   * One script: compare-and-set on `version`, then the new fields, the owner's quota set (revoking frees
   * a slot) and the expiry index. Immutable fields and `lastUsedAt` stay as stored.
   */
  async update(record: StoredKey, expectedVersion: number): Promise<UpdateResult> {
    return this.run('update', async () => {
      // Encoded before the first await: later changes to `record` by the caller cannot leak in.
      const doc = encodeDoc(record)
      let fixed = encodeFixed(record)
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const { ownerId } = decodeFixed(fixed)
        const declared = [this.keys.record(record.id), this.keys.expiryIndex]
        const ownerLive = ownerId === null ? '0' : String(declared.push(this.keys.ownerLive(ownerId)))
        const args = [
          fixed,
          encodeNumber(expectedVersion),
          encodeNumber(record.version),
          doc,
          record.id,
          expiryScore(record),
          ownerLive,
          record.revokedAt === null ? '1' : '0',
        ]
        const reply = await runScript(this.send, UPDATE, declared, args)
        const outcome = readOutcome(reply, ['updated', 'not_found', 'conflict', 'stale_keys'] as const)
        if (outcome !== 'stale_keys') return outcome
        // The stored immutable fields differ from the record passed in: index by the stored ones.
        const stored = readText(await this.send(['HGET', this.keys.record(record.id), 'fixed']))
        if (stored === null) return 'not_found'
        fixed = stored
      }
      throw new Error('The record was replaced concurrently on every attempt')
    })
  }

  /** Reads the immutable fields (they name the indexes), then one script removes the record and its entries. */
  async delete(id: string): Promise<boolean> {
    const { keys } = this
    return this.run('delete', async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const fixed = readText(await this.send(['HGET', keys.record(id), 'fixed']))
        if (fixed === null) return false
        const { ownerId, tenantId, createdAt } = decodeFixed(fixed)
        const declared = [keys.record(id), keys.allIndex, keys.expiryIndex]
        const position = (key: string | null): string => (key === null ? '0' : String(declared.push(key)))
        const args = [
          fixed,
          id,
          orderMember(createdAt, id),
          position(ownerId === null ? null : keys.ownerIndex(ownerId)),
          position(ownerId === null ? null : keys.ownerLive(ownerId)),
          position(tenantId === null ? null : keys.tenantIndex(tenantId)),
        ]
        const outcome = readOutcome(await runScript(this.send, DELETE, declared, args), ['deleted', 'not_found', 'stale_keys'] as const)
        if (outcome !== 'stale_keys') return outcome === 'deleted'
      }
      throw new Error('The record was replaced concurrently on every attempt')
    })
  }

  /** Walks the owner, tenant or all-records index in batches (or reads the expiry window); see list.ts. */
  async list(query: KeyQuery): Promise<StoredKey[]> {
    return this.run('list', () => listRecords(this.send, this.keys, query))
  }

  /** One script: raises `lastUsedAt`, never lowers it, never creates a record. */
  async touch(id: string, at: number): Promise<void> {
    await this.run('touch', () => runScript(this.send, TOUCH, [this.keys.record(id)], [encodeNumber(at)]))
  }

  /**
   * Creates an ioredis client (importing `ioredis`, which must be installed) and a store that owns it:
   * `close()` quits it. Without `ioredis` installed this throws a `ConfigError` saying what to install.
   * The client fails fast: no offline queue, a 5 s limit on each command, and no command sent again
   * after a reconnect.
   *
   * @example
   * ```ts
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = await RedisStore.connect(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { namespace: 'billing-api' })
   * ```
   */
  static async connect(url: string, options: { namespace?: string } = {}): Promise<RedisStore> {
    const ioredis = (await importDriver('ioredis', 'ioredis', 'RedisStore.connect')) as {
      Redis: new (url: string, options: object) => IoredisLikeClient & { connect(): Promise<void>; quit(): Promise<unknown> }
    }
    // Fail fast instead of queueing commands while the server is away: verify answers 503 at once.
    // Bound every command (a stalled link otherwise hangs management calls until TCP gives up), and so
    // never replay one after a reconnect: a write reported as failed must not be applied later.
    const client = new ioredis.Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      lazyConnect: true,
    })
    await client.connect()
    const store = new RedisStore({ client, ...options })
    store.releaseOwnedClient = async () => void (await client.quit())
    return store
  }

  /** Quits the client only if the store created it ({@link RedisStore.connect}); a client you passed in is yours. */
  async close(): Promise<void> {
    const release = this.releaseOwnedClient
    this.releaseOwnedClient = undefined
    await release?.()
  }

  private releaseOwnedClient: (() => Promise<void>) | undefined

  /** Runs one operation; any failure (connection, timeout, a reply of the wrong shape) becomes a {@link StoreError}. */
  private async run<T>(operation: string, body: () => Promise<T>): Promise<T> {
    return callStore(operation, body)
  }
}

/** The expiry-index score, or '' when the record is not in that index (it never expires, or is revoked). */
function expiryScore(record: StoredKey): string {
  return record.revokedAt === null && record.expiresAt !== null ? scoreArgument(record.expiresAt) : ''
}
