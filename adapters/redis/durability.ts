/**
 * Durability of management writes. Redis replicates asynchronously: a master acknowledges a write
 * before any replica has it, and when it dies in that instant the replica promoted in its place never
 * saw the write. So each script a management write runs (insert, update, delete, adjustCredits, each
 * batch of migrate) is followed by `WAIT numreplicas timeout` on the same connection, to the master of
 * the namespace's slot (client.ts routes the pair), and a write that fewer replicas acknowledged in
 * time rejects with {@link ReplicationNotConfirmedError}. Plain reads between the scripts are not
 * followed by one, and the hot path (touch, consumeUsage, consumeIfCurrent) never waits.
 */
import * as z from 'zod/mini'
import { ConfigError, StoreError } from '../../src/errors.js'
import { PARSE_CONTEXT, toIssues } from '../../src/validation.js'
import type { ClientKind, ClientSeam, SendCommand } from './client.js'
import { readInteger } from './replies.js'

/**
 * How long a management write waits for replicas: `{ replicas, timeoutMs }` sends
 * `WAIT replicas timeoutMs` after it, and rejects with {@link ReplicationNotConfirmedError} when fewer
 * than `replicas` replicas acknowledged within `timeoutMs`; `'none'` waits for nothing. `replicas` is
 * a whole number from 1, `timeoutMs` one from 1 to 60000 (Redis reads a `WAIT` timeout of 0 as
 * "forever", so it is refused).
 *
 * @example
 * ```ts
 * import { Cluster } from 'ioredis'
 * import { RedisStore, type RedisDurability } from 'keywarden/adapters/redis'
 *
 * // Two replicas per shard: wait for both, for up to half a second.
 * const durability: RedisDurability = { replicas: 2, timeoutMs: 500 }
 * const store = new RedisStore({ client: new Cluster([{ host: 'redis-1', port: 6379 }]), durability })
 * ```
 */
export type RedisDurability =
  | 'none'
  | {
      /** How many replicas must acknowledge each management write: a whole number from 1. */
      readonly replicas: number
      /** How long `WAIT` waits for them, in milliseconds: a whole number from 1 to 60000. */
      readonly timeoutMs: number
    }

/** The default for ioredis `Cluster` and node-redis `createCluster` clients. */
const CLUSTER_DEFAULT: RedisDurability = Object.freeze({ replicas: 1, timeoutMs: 1_000 })

/** The largest `timeoutMs`: `WAIT` blocks its connection (and every command queued behind it) that long. */
const MAX_TIMEOUT_MS = 60_000

const waitSchema = z.strictObject({
  replicas: z.number().check(z.int(), z.gte(1), z.lte(Number.MAX_SAFE_INTEGER)),
  timeoutMs: z.number().check(z.int(), z.gte(1), z.lte(MAX_TIMEOUT_MS)),
})

/**
 * The durability `option` stands for with a client of `kind`: the Cluster default when it is
 * `undefined` and the client is a cluster, `'none'` for other clients.
 *
 * @throws {@link ConfigError} naming `durability` (or its field) when it is neither `'none'` nor `{ replicas, timeoutMs }`.
 */
export function resolveDurability(option: unknown, kind: ClientKind): RedisDurability {
  if (option === undefined) return kind === 'ioredis-cluster' || kind === 'node-redis-cluster' ? CLUSTER_DEFAULT : 'none'
  if (option === 'none') return 'none'
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw new ConfigError([{ path: ['durability'], message: "must be 'none' or { replicas, timeoutMs }" }])
  }
  const parsed = waitSchema.safeParse(option, PARSE_CONTEXT)
  if (!parsed.success) throw new ConfigError(toIssues(parsed.error, waitSchema).map((issue) => ({ ...issue, path: ['durability', ...issue.path] })))
  return Object.freeze({ replicas: parsed.data.replicas, timeoutMs: parsed.data.timeoutMs })
}

/**
 * A management write was applied on the Redis primary, but fewer replicas than
 * {@link RedisStoreOptions.durability} asks for acknowledged it within its `timeoutMs`: if the primary
 * failed now, the replica promoted in its place might not have the change. A {@link StoreError}
 * (middlewares answer 503). The change may well survive, and is visible to reads on the primary: retry
 * the operation once the replicas are back (revoking, disabling or deleting again is harmless), or
 * check what the store holds.
 *
 * @example
 * ```ts
 * import { StoreError } from 'keywarden'
 * import { ReplicationNotConfirmedError } from 'keywarden/adapters/redis'
 *
 * try {
 *   await keys.revoke(keyId)
 * } catch (error) {
 *   if (error instanceof ReplicationNotConfirmedError) console.warn(`revoke applied, ${error.acknowledged}/${error.replicas} replicas confirmed it`)
 *   else if (error instanceof StoreError) console.error('the revoke failed', error.cause)
 *   else throw error
 * }
 * ```
 */
export class ReplicationNotConfirmedError extends StoreError {
  /** How many replicas were asked for. */
  readonly replicas: number
  /** How many acknowledged the change within {@link ReplicationNotConfirmedError.timeoutMs}. */
  readonly acknowledged: number
  /** How long `WAIT` waited, in milliseconds. */
  readonly timeoutMs: number

  /** The error for `operation`, waited for as `durability` says, that `acknowledged` replicas confirmed. */
  constructor(operation: string, durability: { readonly replicas: number; readonly timeoutMs: number }, acknowledged: number) {
    super(operation)
    this.message =
      `The change ('${operation}') was applied on the primary, but its replication to ${durability.replicas} replica(s) was not ` +
      `confirmed within ${durability.timeoutMs} ms (${acknowledged} acknowledged): it may be lost if the primary fails`
    this.replicas = durability.replicas
    this.acknowledged = acknowledged
    this.timeoutMs = durability.timeoutMs
  }
}

function isScript(args: readonly string[]): boolean {
  const command = args[0]?.toUpperCase()
  return command === 'EVALSHA' || command === 'EVAL'
}

/** The sends of a store's management writes, each waiting for replicas as its durability says. */
export class DurableWrites {
  /** What every management write waits for. */
  readonly durability: RedisDurability
  readonly #seam: ClientSeam

  /** @throws {@link ConfigError} naming `durability` (see {@link resolveDurability}). */
  constructor(seam: ClientSeam, option: unknown) {
    this.#seam = seam
    this.durability = resolveDurability(option, seam.kind)
  }

  /**
   * The send for the write `operation`: with durability, each script it sends (EVALSHA, or the EVAL
   * after NOSCRIPT) goes with a `WAIT` behind it, and only the `WAIT` of the attempt that ran counts,
   * so a failed EVALSHA's is never taken for the EVAL's. A `WAIT` also covers every earlier write on
   * its connection: the hot-path writes of the same client sent before it are confirmed with it.
   */
  sendFor(operation: string): SendCommand {
    const durability = this.durability
    const { send, sendAndWait } = this.#seam
    if (durability === 'none') return send
    const waitArgs = ['WAIT', String(durability.replicas), String(durability.timeoutMs)]
    return async (args) => {
      if (!isScript(args)) return send(args)
      const { reply, acknowledged } = await sendAndWait(args, waitArgs)
      const count = readInteger(acknowledged)
      if (count < durability.replicas) throw new ReplicationNotConfirmedError(operation, durability, count)
      return reply
    }
  }
}
