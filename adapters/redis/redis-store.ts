/**
 * The Redis {@link KeyStore}: a thin class over the client seam (client.ts), the key layout (keys.ts)
 * and one module per script (scripts/), each of which builds its own KEYS and ARGV.
 */
import type { AuditQuery, AuditRecord, AuditStore } from '../../src/audit/audit-store.js'
import { ConfigError } from '../../src/errors.js'
import { callStore } from '../../src/store-failure.js'
import type { CreditAdjustment, CreditsAdjusted, GuardedUsageOutcome, GuardedUsageRequest, UsageOutcome, UsageRequest, UsageStore } from '../../src/limits/usage-store.js'
import type { InsertResult, KeyQuery, KeyStore, QuotaCheck, StoredKey, UpdateResult } from '../../src/store.js'
import { importDriver } from '../driver.js'
import { listAuditEntries, pruneAuditEntries } from './audit.js'
import { toClientSeam, type IoredisLikeClient, type RedisClientLike, type SendCommand } from './client.js'
import { DurableWrites, type RedisDurability } from './durability.js'
import { checkNamespace, DEFAULT_NAMESPACE, KeyLayout } from './keys.js'
import { listRecords } from './list.js'
import { migrateNamespace } from './migration.js'
import { adjustCredits } from './scripts/adjust-credits.js'
import { consumeIfCurrent } from './scripts/consume-if-current.js'
import { consumeUsage } from './scripts/consume-usage.js'
import { deleteRecord } from './scripts/delete.js'
import { insertRecord } from './scripts/insert.js'
import { touchRecord } from './scripts/touch.js'
import { updateRecord } from './scripts/update.js'
import { SnapshotReads } from './snapshot-reads.js'

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
   * How the store reaches Redis: an ioredis `Redis` or `Cluster`, a connected node-redis client or
   * cluster (`createClient()`, `createCluster()`), or a `sendCommand` function. The caller owns it: the
   * store never connects, quits or closes it.
   */
  readonly client: RedisClientLike
  /**
   * Every key starts with `{namespace}:`, a Redis Cluster hash tag: a namespace lives on one shard, and
   * separate namespaces (per app or per region) spread over shards. Non-empty, without `{` or `}`.
   * Default `'keywarden'`.
   */
  readonly namespace?: string
  /**
   * What management writes (insert, update, delete, adjustCredits, and each batch of `migrate`) wait
   * for before they resolve: `{ replicas, timeoutMs }` sends `WAIT replicas timeoutMs` after the write,
   * on the same connection, to the master holding the namespace's slot, and rejects with
   * {@link ReplicationNotConfirmedError} (a `StoreError`) when fewer replicas acknowledged in time, so
   * a change that resolved survives the loss of that master. `'none'` waits for nothing.
   *
   * Default: `{ replicas: 1, timeoutMs: 1000 }` for an ioredis `Cluster` or node-redis `createCluster`
   * client (a cluster without replicas needs `'none'`); `'none'` for a standalone client and for a
   * `sendCommand` function, which usually have no replica. Set it there when the server has one. A
   * `sendCommand` function gets the write and its `WAIT` back to back and cannot be told where they
   * go: that is right only when it sends every command on one connection to one server.
   *
   * The hot path (the usage and `lastUsedAt` writes of verify) never waits: after a failover, the
   * counter increments and credit debits of the instant before it may be lost, in the clients' favour.
   * A `WAIT` blocks its connection, and the commands queued behind it, until the replicas answer (a
   * replica round trip), or for `timeoutMs` when they do not.
   */
  readonly durability?: RedisDurability
}

/** The time limit {@link RedisStore.connect} gives each command, in milliseconds (the middlewares' default timeout). */
const REDIS_COMMAND_TIMEOUT_MS = 5_000

/**
 * A {@link KeyStore}, {@link UsageStore} and {@link AuditStore} on Redis (5 or later, standalone or
 * Cluster). Each operation is one Lua script or one command, so each is atomic; the record keeps a keyed
 * hash of the secret, never the secret. Audit entries are written by the script of the change they
 * describe, and outlive the key (keys.ts describes the layout). Rate counters expire by themselves once they no longer matter, so there is no
 * `purgeUsage`; credit balances are kept until deleted.
 * A namespace written by 0.1.0 needs {@link RedisStore.migrate} once for quotas per tenant; a new one
 * needs nothing (the first insert creates the keys). The constructor does no I/O.
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
 * @example With Redis Cluster (an ioredis Cluster or a node-redis cluster)
 * ```ts
 * import { Cluster } from 'ioredis'
 * import { createCluster } from 'redis'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * // Every key of a namespace shares the hash tag {namespace}: one slot, on one shard.
 * const viaIoredis = new RedisStore({ client: new Cluster([{ host: 'redis-1', port: 6379 }]), namespace: 'billing-api' })
 * const cluster = await createCluster({ rootNodes: [{ url: 'redis://redis-1:6379' }] }).connect()
 * const viaNodeRedis = new RedisStore({ client: cluster, namespace: 'search-api' })
 * ```
 *
 * @example With a sendCommand function (any client)
 * ```ts
 * import { Redis } from 'ioredis'
 * import { RedisStore } from 'keywarden/adapters/redis'
 *
 * const redis = new Redis()
 * const store = new RedisStore({ client: (args) => redis.call(args[0]!, ...args.slice(1)) })
 * ```
 */
export class RedisStore implements KeyStore, UsageStore, AuditStore {
  /** The namespace every key of this store is tagged with. */
  readonly namespace: string

  /** What management writes wait for: {@link RedisStoreOptions.durability} as resolved for this client. */
  readonly durability: RedisDurability

  private readonly send: SendCommand
  private readonly writes: DurableWrites
  private readonly keys: KeyLayout
  private readonly snapshots: SnapshotReads

  /** @throws {@link keywarden!ConfigError | ConfigError} naming `client`, `namespace` or `durability`. */
  constructor(options: RedisStoreOptions | RedisClientLike) {
    // The client alone (`new RedisStore(redis)`) means the default namespace.
    if (typeof options === 'function' || (typeof options === 'object' && options !== null && !('client' in options))) {
      options = { client: options as RedisClientLike }
    }
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError([{ path: [], message: 'must be a Redis client or an object with a client' }])
    }
    this.namespace = checkNamespace(options.namespace ?? DEFAULT_NAMESPACE)
    this.keys = new KeyLayout(this.namespace)
    // A node-redis cluster routes by a key it is told: the hash tag, which names the namespace's slot.
    const seam = toClientSeam(options.client, this.keys.hashTag)
    this.send = seam.send
    this.writes = new DurableWrites(seam, options.durability)
    this.durability = this.writes.durability
    this.snapshots = new SnapshotReads(this.send, this.keys)
  }

  /**
   * One script: the ID check, the quota count (the owner's set in the record's tenant) and every write.
   * Before any write it checks every key's type and every argument, so a failed insert writes nothing.
   * With `audit`, the same script writes the entry and its index members, only when it inserts.
   */
  async insert(record: StoredKey, quota: QuotaCheck | null, audit?: AuditRecord): Promise<InsertResult> {
    return this.run('insert', () => insertRecord(this.writes.sendFor('insert'), this.keys, record, quota, audit))
  }

  /**
   * One read of the record's verify snapshot; the reads of one event-loop turn share one `MGET`
   * (snapshot-reads.ts). A 0.1.0 record not yet migrated is read from its hash in a second round trip.
   */
  async get(id: string): Promise<StoredKey | null> {
    return this.run('get', () => this.snapshots.read(id))
  }

  /**
   * One script: compare-and-set on `version`, then the new fields, the quota set (revoking frees a slot)
   * and the expiry index, after checking every key's type and argument. Immutable fields and
   * `lastUsedAt` stay as stored. With `audit`, the same script writes the entry, only when it updates.
   */
  async update(record: StoredKey, expectedVersion: number, audit?: AuditRecord): Promise<UpdateResult> {
    return this.run('update', () => updateRecord(this.writes.sendFor('update'), this.keys, record, expectedVersion, audit))
  }

  /**
   * Reads the immutable fields (they name the indexes), then one script removes the record and its
   * index and set entries, and writes `audit` if given. The key's audit entries stay.
   */
  async delete(id: string, audit?: AuditRecord): Promise<boolean> {
    return this.run('delete', () => deleteRecord(this.writes.sendFor('delete'), this.keys, id, audit))
  }

  /** Walks the owner, tenant or all-records index in batches (or reads the expiry window); see list.ts. */
  async list(query: KeyQuery): Promise<StoredKey[]> {
    return this.run('list', () => listRecords(this.send, this.keys, query))
  }

  /** One script: raises `lastUsedAt`, never lowers it, never creates a record. */
  async touch(id: string, at: number): Promise<void> {
    await this.run('touch', () => touchRecord(this.send, this.keys, id, at))
  }

  /**
   * One script, one round trip: reads every counter and the balance, decides as the contract says
   * (`applyUsage`, computed in Lua with the same doubles), and writes only what a committed request
   * moves. Each counter written expires when its state stops mattering (a full bucket, a past window),
   * measured from `request.now`, so the server's clock need not agree with the caller's.
   *
   * @example
   * ```ts
   * import { Redis } from 'ioredis'
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = new RedisStore({ client: new Redis(), namespace: 'billing-api' })
   * const outcome = await store.consumeUsage({
   *   now: Date.now(),
   *   cost: 1,
   *   commit: true,
   *   rate: [{ id: 'rate:pro:minute:key:5hJ2kQ9xWmTz3LbN', algorithm: 'token-bucket', limit: 600, capacity: 600, windowMs: 60_000 }],
   *   credits: { id: 'credits:key:5hJ2kQ9xWmTz3LbN', initial: 1000, refill: null },
   * })
   * if (outcome.refused !== null) console.info('refused:', outcome.refused)
   * ```
   */
  async consumeUsage(request: UsageRequest): Promise<UsageOutcome> {
    return this.run('consumeUsage', () => consumeUsage(this.send, this.keys, request))
  }

  /**
   * One script, one round trip: reads the record with ID `request.keyId` and, only while it is as the
   * KeyManager last saw it (same `version`; not revoked, enabled, not expired at `request.now`; `hash`
   * equal to the stored hash, or to the previous one during its grace period, compared in constant
   * time), consumes exactly as {@link RedisStore.consumeUsage} does. Otherwise it writes nothing and
   * answers the record as {@link RedisStore.get} would read it (or `null`), in the same round trip. The
   * KeyManager calls it by itself, so a verify of a limited key costs one round trip instead of two,
   * when this store is also the counter store and no verification cache is configured.
   *
   * @example
   * ```ts
   * import { Redis } from 'ioredis'
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = new RedisStore({ client: new Redis(), namespace: 'billing-api' })
   * const answer = await store.consumeIfCurrent({
   *   keyId: '5hJ2kQ9xWmTz3LbN',
   *   version: 3,
   *   hash: 'kw1$sha256$-$…', // the keyed hash of the presented secret
   *   now: Date.now(),
   *   cost: 1,
   *   commit: true,
   *   rate: [{ id: 'rate:pro:minute:key:5hJ2kQ9xWmTz3LbN', algorithm: 'token-bucket', limit: 600, capacity: 600, windowMs: 60_000 }],
   *   credits: null,
   * })
   * if (!answer.applied) console.info('the key changed since it was last seen:', answer.record?.version)
   * ```
   */
  async consumeIfCurrent(request: GuardedUsageRequest): Promise<GuardedUsageOutcome> {
    return this.run('consumeIfCurrent', () => consumeIfCurrent(this.send, this.keys, request))
  }

  /**
   * One script: refills the balance if its period is due, then sets it or adds to it (never below 0),
   * and writes `change.audit` with `changes: { credits: { from: previous, to: remaining } }` if given.
   *
   * @example
   * ```ts
   * import { Redis } from 'ioredis'
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = new RedisStore({ client: new Redis(), namespace: 'billing-api' })
   * const pool = { id: 'credits:key:5hJ2kQ9xWmTz3LbN', initial: 0, refill: null }
   * const { previous, remaining } = await store.adjustCredits({ pool, now: Date.now(), mode: 'add', amount: 500 })
   * ```
   */
  async adjustCredits(change: CreditAdjustment): Promise<CreditsAdjusted> {
    return this.run('adjustCredits', () => adjustCredits(this.writes.sendFor('adjustCredits'), this.keys, change))
  }

  /**
   * Walks the audit index of the query's most selective filter (key, tenant, owner, actor or action;
   * every entry without one) newest first, one round trip per batch, filtering the rest in code.
   *
   * @example
   * ```ts
   * import { Redis } from 'ioredis'
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = new RedisStore({ client: new Redis(), namespace: 'billing-api' })
   * const history = await store.listAudit({ keyId: '5hJ2kQ9xWmTz3LbN', limit: 50 })
   * const last = history.at(-1)
   * if (last) console.info(await store.listAudit({ keyId: '5hJ2kQ9xWmTz3LbN', before: { at: last.at, id: last.id }, limit: 50 }))
   * ```
   */
  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    return this.run('listAudit', () => listAuditEntries(this.send, this.keys, query))
  }

  /**
   * Removes up to `limit` of the oldest entries with `at < before` from the entries hash and every
   * index, in atomic scripts of at most 256 entries each, so Redis is never blocked for long.
   *
   * @example
   * ```ts
   * import { Redis } from 'ioredis'
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = new RedisStore({ client: new Redis(), namespace: 'billing-api' })
   * const yearAgo = Date.now() - 365 * 24 * 60 * 60 * 1000
   * while ((await store.pruneAudit(yearAgo, 1000)) === 1000) {}
   * ```
   */
  async pruneAudit(before: number, limit: number): Promise<number> {
    return this.run('pruneAudit', () => pruneAuditEntries(this.send, this.keys, before, limit))
  }

  /**
   * Converts a namespace written by keywarden 0.1.0: quotas count per owner within each tenant (0.1.0's
   * owner sets counted every tenant together), and every record gets its verify snapshot, so a verify
   * of a key ID that does not exist is one read instead of two. Idempotent and resumable: it
   * walks the records in batches of 100, one short atomic script each, records where it got to, and
   * once done marks the namespace, so later calls cost one read. Safe to run at every start and while
   * other instances of this version serve requests; run it once no 0.1.0 instance writes to the
   * namespace any more. Until it has run, an owner's 0.1.0 keys count in each of the owner's tenants,
   * so a quota may refuse sooner than it should, never later, and each 0.1.0 record is read from its
   * hash in a second round trip. A namespace this version created needs no migration.
   *
   * Once this version writes to a namespace, 0.1.0 instances must not change keys in it (revoke,
   * update, delete): they do not know the snapshot and would leave it stale. 0.1.0 instances that only
   * verify may keep running until they are replaced.
   *
   * @example
   * ```ts
   * import { Redis } from 'ioredis'
   * import { KeyManager } from 'keywarden'
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = new RedisStore({ client: new Redis(process.env.REDIS_URL!), namespace: 'billing-api' })
   * await store.migrate() // at every start: returns after one read once the namespace is migrated
   * const keys = new KeyManager({ store, maxKeysPerOwner: 5 })
   * ```
   */
  async migrate(): Promise<void> {
    await this.run('migrate', () => migrateNamespace(this.writes.sendFor('migrate'), this.keys))
  }

  /**
   * Creates an ioredis client (importing `ioredis`, which must be installed) and a store that owns it:
   * `close()` quits it. Without `ioredis` installed this throws a `ConfigError` saying what to install.
   * The client fails fast: no offline queue, a 5 s limit on each command, and no command sent again
   * after a reconnect.
   * `options` takes the store's `namespace` and `durability` (default `'none'`: a standalone server).
   *
   * @example
   * ```ts
   * import { RedisStore } from 'keywarden/adapters/redis'
   *
   * const store = await RedisStore.connect(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { namespace: 'billing-api' })
   * ```
   */
  static async connect(url: string, options: Pick<RedisStoreOptions, 'namespace' | 'durability'> = {}): Promise<RedisStore> {
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
