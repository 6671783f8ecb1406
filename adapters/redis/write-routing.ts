/**
 * How a management write and its `WAIT` reach the namespace's master together, on one connection
 * (durability.ts says why): back to back on a single-connection client, as one pipeline on an ioredis
 * `Cluster` or a node-redis cluster, with the cluster redirections (MOVED, ASK, TRYAGAIN, CLUSTERDOWN)
 * followed for the pair as a whole.
 */
import type { IoredisLikeClient, NodeRedisClusterLike, NodeRedisLikeClient, SendCommand } from './client.js'

/**
 * What {@link SendAndWait} resolves with: the write's reply, and the reply of the `WAIT` sent right
 * behind it (the number of replicas that acknowledged, as the client spells an integer).
 */
export interface WaitedReply {
  readonly reply: unknown
  readonly acknowledged: unknown
}

/**
 * Sends a write (`args`) and then `waitArgs` (`['WAIT', numreplicas, timeoutMs]`) right behind it on the
 * same connection, to the master serving the namespace's slot: `WAIT` counts the replicas that have
 * the writes of the connection it arrives on, so on any other connection it would prove nothing.
 * MOVED, ASK, TRYAGAIN and CLUSTERDOWN answers to the write are followed for the pair as a whole (the
 * write was not run). Rejects with the write's error when the write failed, or with `WAIT`'s.
 */
export type SendAndWait = (args: string[], waitArgs: string[]) => Promise<WaitedReply>

/** The members of an ioredis `Redis` or `Cluster` used to route a write and its `WAIT` (ioredis 5 and later have them). */
export interface IoredisRouting extends IoredisLikeClient {
  readonly isCluster?: boolean
  readonly options?: { readonly host?: string; readonly port?: number }
  pipeline(): IoredisPipeline
  nodes(role: 'all'): IoredisRouting[]
  refreshSlotsCache(): void
}

interface IoredisPipeline {
  call(command: string, ...args: string[]): unknown
  exec(): Promise<[Error | null, unknown][] | null>
}

/** The members of a node-redis cluster (5 or later) used to route a write and its `WAIT`. */
interface NodeRedisClusterRouting extends NodeRedisClusterLike {
  multi(routing: string): NodeRedisClusterPipeline
  nodeClient(node: unknown): Promise<NodeRedisLikeClient>
  readonly nodeByAddress?: { get(address: string): unknown }
}

interface NodeRedisClusterPipeline {
  addCommand(firstKey: string | undefined, isReadonly: boolean, args: string[]): NodeRedisClusterPipeline
  execAsPipeline(): Promise<unknown[]>
}

/** A node-redis client pool (`createClientPool`, node-redis 5 and later): one command per pooled client. */
export interface NodeRedisPoolLike extends NodeRedisLikeClient {
  execute<T>(task: (client: NodeRedisLikeClient) => Promise<T>): Promise<T>
}

type Settled = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown }

function settle(reply: Promise<unknown>): Promise<Settled> {
  return reply.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  )
}

/** Issues every command before awaiting any: one client, one connection, so they leave in this order. */
async function inOrder(send: SendCommand, commands: string[][]): Promise<Settled[]> {
  const sent = commands.map((args) => settle(Promise.resolve().then(() => send(args))))
  return Promise.all(sent)
}

/** A write's and its WAIT's outcomes as {@link SendAndWait} reports them. */
function waited(write: Settled | undefined, wait: Settled | undefined): WaitedReply {
  if (write === undefined || wait === undefined) throw new Error('Unexpected Redis reply: expected 2 pipelined replies')
  if (!write.ok) throw write.error
  if (!wait.ok) throw wait.error
  return { reply: write.value, acknowledged: wait.value }
}

/** Where a redirection sends the pair next: the node at `address` (with ASKING before the write for ASK), or the slot map again. */
type Target = { readonly address: string; readonly asking: boolean } | null

type Redirection = { readonly kind: 'moved' | 'ask'; readonly address: string } | { readonly kind: 'retry' }

function redirectionOf(error: unknown): Redirection | null {
  const message = error instanceof Error ? error.message : ''
  const [word, , address] = message.split(' ')
  if ((word === 'MOVED' || word === 'ASK') && address !== undefined) return { kind: word === 'MOVED' ? 'moved' : 'ask', address }
  if (word === 'TRYAGAIN' || word === 'CLUSTERDOWN') return { kind: 'retry' }
  return null
}

// As ioredis' defaults: 16 redirections (maxRedirections), 100 ms before trying again (retryDelayOnTryAgain).
const MAX_REDIRECTIONS = 16
const RETRY_DELAY_MS = 100

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Sends the pair to `target` until the write is not redirected. A redirected write did not run, so
 * sending it again cannot apply it twice; any other failure (a closed connection included, after
 * which the write may have run) is reported as it is.
 */
async function followRedirections(attempt: (target: Target) => Promise<Settled[]>, onMoved: () => void): Promise<WaitedReply> {
  let target: Target = null
  for (let redirections = 0; ; redirections++) {
    const [write, wait] = await attempt(target)
    const redirection = write !== undefined && !write.ok && redirections < MAX_REDIRECTIONS ? redirectionOf(write.error) : null
    if (redirection === null) return waited(write, wait)
    if (redirection.kind === 'retry') {
      target = null
      await pause(RETRY_DELAY_MS)
      continue
    }
    if (redirection.kind === 'moved') onMoved()
    target = { address: redirection.address, asking: redirection.kind === 'ask' }
  }
}

/**
 * Runs `commands` as one ioredis pipeline of `client`. With `preferKey` (a node's `host:port`), an
 * ioredis Cluster pipeline goes to that node's connection in its pool: the field ioredis' own pipeline
 * sets to follow MOVED and ASK (Pipeline.js), so the Cluster's `keyPrefix` still applies.
 */
async function runIoredisPipeline(client: IoredisRouting, commands: string[][], preferKey?: string): Promise<Settled[]> {
  const pipeline = client.pipeline()
  if (preferKey !== undefined) (pipeline as IoredisPipeline & { preferKey?: string }).preferKey = preferKey
  for (const [command, ...args] of commands) pipeline.call(command!, ...args)
  const replies = (await pipeline.exec()) ?? []
  return replies.map(([error, value]) => (error ? { ok: false, error } : { ok: true, value }))
}

/**
 * ioredis `Cluster`: `call('WAIT')` has no key, so ioredis would send it to any node. One pipeline
 * holds the write and the WAIT instead: ioredis routes a pipeline by the first key of its commands
 * (the write's, in the namespace's slot) to that slot's master, whatever `scaleReads` says (the write
 * is not read-only), and writes both commands on that node's one connection. ioredis does not follow
 * a redirection for a pipeline holding a command that is not read-only, so this does: to the node
 * named by MOVED or ASK (with ASKING first for ASK), refreshing the slot map after MOVED.
 */
export function ioredisClusterSendAndWait(cluster: IoredisRouting): SendAndWait {
  const known = (address: string) => cluster.nodes('all').some((node) => `${node.options?.host}:${node.options?.port}` === address)
  return (args, waitArgs) =>
    followRedirections(
      async (target) => {
        if (target === null) return runIoredisPipeline(cluster, [args, waitArgs])
        if (!known(target.address)) {
          // A node the pool does not know yet: the slot map refresh after MOVED will find it.
          await pause(RETRY_DELAY_MS)
          return runIoredisPipeline(cluster, [args, waitArgs])
        }
        if (!target.asking) return runIoredisPipeline(cluster, [args, waitArgs], target.address)
        return (await runIoredisPipeline(cluster, [['ASKING'], args, waitArgs], target.address)).slice(1)
      },
      () => cluster.refreshSlotsCache(),
    )
}

/**
 * node-redis cluster, 5 or later: `sendCommand(firstKey, false, ['WAIT', …])` is sent to every
 * master there (WAIT's request policy is `all_shards`), so the pair goes as one pipeline,
 * `multi(hashTag).execAsPipeline()`, which runs on the one client of the slot's master. A redirection
 * is followed to the client of the node it names (`nodeByAddress`, `nodeClient`); after MOVED, one
 * keyed read through the cluster makes it rediscover the slots (a pipeline does not). node-redis 4
 * has no policies: its `sendCommand` sends WAIT to the slot's master, on the same client.
 */
export function nodeRedisClusterSendAndWait(cluster: NodeRedisClusterLike, hashTag: string): SendAndWait {
  const routing = cluster as Partial<NodeRedisClusterRouting>
  if (typeof routing.multi !== 'function' || typeof routing.nodeClient !== 'function') {
    return async (args, waitArgs) => {
      const [write, wait] = await inOrder((command) => cluster.sendCommand(hashTag, false, command), [args, waitArgs])
      return waited(write, wait)
    }
  }
  const modern = routing as NodeRedisClusterRouting
  const clientAt = async (address: string): Promise<NodeRedisLikeClient | undefined> => {
    const node = modern.nodeByAddress?.get(address)
    return node === undefined ? undefined : modern.nodeClient(node)
  }
  return (args, waitArgs) =>
    followRedirections(
      async (target) => {
        const client = target === null ? undefined : await clientAt(target.address)
        if (client === undefined) {
          if (target !== null) await pause(RETRY_DELAY_MS)
          try {
            const replies = await modern.multi(hashTag).addCommand(hashTag, false, args).addCommand(undefined, false, waitArgs).execAsPipeline()
            return replies.map((value) => ({ ok: true, value }))
          } catch (error) {
            // The pipeline rejects with the first error: the write's, or WAIT's behind a write that ran.
            return [{ ok: false, error }, { ok: false, error }]
          }
        }
        const replies = await inOrder((command) => client.sendCommand(command), target!.asking ? [['ASKING'], args, waitArgs] : [args, waitArgs])
        return replies.slice(target!.asking ? 1 : 0)
      },
      () => void cluster.sendCommand(hashTag, false, ['EXISTS', hashTag]).catch(() => undefined),
    )
}

/** A client without redirections: the pair goes back to back through `send`, on its one connection. */
export function directSendAndWait(send: SendCommand): SendAndWait {
  return async (args, waitArgs) => {
    const [write, wait] = await inOrder(send, [args, waitArgs])
    return waited(write, wait)
  }
}
