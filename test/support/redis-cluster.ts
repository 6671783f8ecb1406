/**
 * The local Redis Cluster for the suites that need one (test/adapters/redis-cluster.test.ts): where it
 * is, a gate like the other servers' (skip visibly locally, fail under CI=true), clients of both
 * drivers, and what a test needs to know about it (which master owns a namespace's slot, every key of a
 * namespace, its raw contents for the leak canary).
 *
 * The cluster is the one scripts/ci/start-redis-cluster.sh starts (3 masters + 3 replicas on
 * 127.0.0.1:7000-7005; `.ci/run` starts it too). Elsewhere set KEYWARDEN_REDIS_CLUSTER_NODES to a
 * comma-separated list of `host:port` or `host:first-last` entries (any reachable node is enough for
 * discovery; every node is used as a seed). Locally, KEYWARDEN_REDIS_CLUSTER_START=1 lets the gate run
 * that script when no cluster answers and redis-server is installed, and {@link stopStartedCluster}
 * tears it down again after the file; under CI=true it never starts one, a missing cluster fails.
 *
 * @example
 * ```ts
 * const gate = await redisClusterGate()
 * describe.skipIf(!gate.available)('on Redis Cluster', () => {
 *   afterAll(stopStartedCluster)
 *   it('works', async () => {
 *     const cluster = await ioredisCluster()
 *     ...
 *   })
 * })
 * ```
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import { createCluster } from 'redis'
import { gateService, type ServiceGate } from './services.js'

const run = promisify(execFile)
const SCRIPTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'ci')

/** One cluster node's address. */
export interface ClusterNode {
  readonly host: string
  readonly port: number
}

/** `host:port` and `host:first-last` entries, comma-separated. */
export function parseClusterNodes(text: string): ClusterNode[] {
  const nodes: ClusterNode[] = []
  for (const entry of text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^(.+):(\d+)(?:-(\d+))?$/.exec(entry)
    if (match === null) throw new Error(`KEYWARDEN_REDIS_CLUSTER_NODES: ${JSON.stringify(entry)} is not host:port or host:first-last`)
    const first = Number(match[2])
    const last = Number(match[3] ?? match[2])
    for (let port = first; port <= last; port++) nodes.push({ host: match[1]!, port })
  }
  if (nodes.length === 0) throw new Error('KEYWARDEN_REDIS_CLUSTER_NODES names no node')
  return nodes
}

/** The seed nodes, from KEYWARDEN_REDIS_CLUSTER_NODES (default `127.0.0.1:7000-7005`). */
export const CLUSTER_NODES: readonly ClusterNode[] = parseClusterNodes(process.env.KEYWARDEN_REDIS_CLUSTER_NODES || '127.0.0.1:7000-7005')

/** A master and the slot ranges it serves, as `CLUSTER SHARDS` answers. */
export interface ClusterMaster {
  readonly address: string
  readonly slots: readonly (readonly [number, number])[]
  readonly replicas: number
}

/** What the gate saw: the masters, for tests that place namespaces on each. */
export interface ClusterGate extends ServiceGate {
  readonly masters: readonly ClusterMaster[]
}

/** Asks one node after another until one answers; the cluster must be healthy (every slot served). */
async function describeCluster(): Promise<{ version: string; masters: ClusterMaster[] }> {
  let lastError: unknown
  for (const node of CLUSTER_NODES) {
    const probe = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2_000 })
    let failure: unknown
    probe.on('error', (error) => (failure = error))
    try {
      await probe.connect().catch((error: unknown) => {
        throw failure ?? error
      })
      const info = String(await probe.call('CLUSTER', 'INFO'))
      const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1]
      if (field('cluster_state') !== 'ok' || field('cluster_slots_ok') !== '16384') {
        throw new Error(`${node.host}:${node.port} is not a healthy cluster (cluster_state:${field('cluster_state')}, cluster_slots_ok:${field('cluster_slots_ok')})`)
      }
      const masters = await readMasters(probe)
      const version = /redis_version:(\S+)/.exec(await probe.info('server'))?.[1] ?? '(unknown version)'
      return { version, masters }
    } catch (error) {
      lastError = error
    } finally {
      probe.disconnect()
    }
  }
  throw lastError
}

/** The masters and their slots, from `CLUSTER SLOTS` (Redis 3+; `CLUSTER SHARDS` needs 7). */
async function readMasters(client: Redis): Promise<ClusterMaster[]> {
  const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...[string, number, ...unknown[]][]][]
  const byAddress = new Map<string, { slots: [number, number][]; replicas: number }>()
  for (const [from, to, master, ...replicas] of ranges) {
    const address = `${master[0]}:${master[1]}`
    const entry = byAddress.get(address) ?? { slots: [], replicas: replicas.length }
    entry.slots.push([from, to])
    byAddress.set(address, entry)
  }
  return [...byAddress].map(([address, { slots, replicas }]) => ({ address, slots, replicas })).sort((a, b) => a.slots[0]![0] - b.slots[0]![0])
}

let started = false

/** Runs scripts/ci/start-redis-cluster.sh, printing what it did. */
async function startCluster(): Promise<void> {
  const { stdout, stderr } = await run('bash', [join(SCRIPTS, 'start-redis-cluster.sh')], { timeout: 120_000 })
  process.stdout.write(stdout)
  process.stderr.write(stderr)
  started = true
}

async function hasRedisServer(): Promise<boolean> {
  return run('redis-server', ['--version']).then(
    () => true,
    () => false,
  )
}

let gate: Promise<ClusterGate> | undefined

/**
 * Probes the cluster once per test process. Locally, with KEYWARDEN_REDIS_CLUSTER_START=1 and
 * redis-server installed, a cluster that does not answer is started first (see the module comment).
 */
export function redisClusterGate(): Promise<ClusterGate> {
  return (gate ??= (async () => {
    let masters: ClusterMaster[] = []
    const seeds = CLUSTER_NODES.map((node) => `${node.host}:${node.port}`).join(', ')
    const probe = async () => {
      let described: Awaited<ReturnType<typeof describeCluster>>
      try {
        described = await describeCluster()
      } catch (error) {
        if (process.env.CI || process.env.KEYWARDEN_REDIS_CLUSTER_START !== '1' || !(await hasRedisServer())) {
          const hint = process.env.CI ? '' : '; start one with `bash scripts/ci/start-redis-cluster.sh`, or set KEYWARDEN_REDIS_CLUSTER_START=1'
          throw new Error(`${error instanceof Error ? error.message : String(error)} (seeds ${seeds})${hint}`)
        }
        console.log('[services] no Redis Cluster answers; KEYWARDEN_REDIS_CLUSTER_START=1: starting one with scripts/ci/start-redis-cluster.sh')
        await startCluster()
        described = await describeCluster()
      }
      masters = described.masters
      const replicas = masters.reduce((sum, master) => sum + master.replicas, 0)
      return `Redis ${described.version} Cluster, ${masters.length} masters + ${replicas} replicas (${masters.map((master) => master.address).join(', ')})`
    }
    // Starting a cluster takes about 8 s: the gate's time limit allows for it.
    const service = await gateService('Redis Cluster', probe, process.env.KEYWARDEN_REDIS_CLUSTER_START === '1' ? 120_000 : 5_000)
    return { ...service, masters }
  })())
}

/** Stops the cluster if the gate started it (KEYWARDEN_REDIS_CLUSTER_START=1); otherwise does nothing. */
export async function stopStartedCluster(): Promise<void> {
  if (!started) return
  started = false
  const { stdout } = await run('bash', [join(SCRIPTS, 'stop-redis-cluster.sh')], { timeout: 60_000 })
  process.stdout.write(stdout)
}

/**
 * An ioredis `Cluster` on the seed nodes, once it is ready (it knows every master, so
 * `cluster.nodes('master')` is complete). Reads stay on the masters (`scaleReads: 'master'`, the
 * default, as the docs recommend).
 */
export async function ioredisCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const cluster = new Cluster([...CLUSTER_NODES], { scaleReads: 'master', ...options })
  if (cluster.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the ioredis Cluster was not ready within 10 s')), 10_000)
      cluster.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
  return cluster
}

function createNodeRedisCluster() {
  return createCluster({ rootNodes: CLUSTER_NODES.map((node) => ({ url: `redis://${node.host}:${node.port}` })) })
}

/** A node-redis cluster, as `createCluster` on the seed nodes types it. */
export type NodeRedisCluster = ReturnType<typeof createNodeRedisCluster>

/** A connected node-redis cluster (`createCluster`) on the seed nodes. */
export async function nodeRedisCluster(): Promise<NodeRedisCluster> {
  const cluster = createNodeRedisCluster()
  cluster.on('error', (error: unknown) => console.error('[redis-cluster] node-redis cluster error', error))
  return cluster.connect()
}

/** The slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`). */
export async function keySlot(cluster: Cluster, key: string): Promise<number> {
  return Number(await cluster.call('CLUSTER', 'KEYSLOT', key))
}

/** The master whose slot ranges hold `slot`. */
export function masterOfSlot(masters: readonly ClusterMaster[], slot: number): ClusterMaster {
  const master = masters.find((candidate) => candidate.slots.some(([from, to]) => slot >= from && slot <= to))
  if (master === undefined) throw new Error(`no master serves slot ${slot}`)
  return master
}

/**
 * `count` fresh namespaces (`<prefix>-<n>`) whose hash slots are on `count` different masters, with
 * the master and slot of each. The slot is asked of the cluster for the hash tag `{namespace}`, the
 * first part of every key of the namespace.
 */
export async function namespacesOnDistinctMasters(
  cluster: Cluster,
  masters: readonly ClusterMaster[],
  count: number,
  prefix: string,
): Promise<{ namespace: string; slot: number; master: string }[]> {
  if (masters.length < count) throw new Error(`the cluster has ${masters.length} masters, ${count} are needed`)
  const chosen = new Map<string, { namespace: string; slot: number; master: string }>()
  for (let n = 0; chosen.size < count; n++) {
    if (n > 1_000) throw new Error('no spread of namespaces over the masters found')
    const namespace = `${prefix}-${n}`
    const slot = await keySlot(cluster, `{${namespace}}`)
    const master = masterOfSlot(masters, slot).address
    if (!chosen.has(master)) chosen.set(master, { namespace, slot, master })
  }
  return [...chosen.values()]
}

/**
 * Every key of `namespace` (`{namespace}:…`), found with SCAN on every master (never KEYS). All of
 * them are in the one slot of the hash tag, so one master holds them.
 */
export async function keysOfNamespace(cluster: Cluster, namespace: string): Promise<string[]> {
  const found = new Set<string>()
  for (const node of cluster.nodes('master')) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `{${namespace}}:*`, 'COUNT', 1000)
      for (const key of batch) found.add(key)
      cursor = next
    } while (cursor !== '0')
  }
  return [...found].sort()
}

/** Deletes every key of `namespace`: one DEL, legal on Cluster because all its keys share one slot. */
export async function deleteClusterNamespace(cluster: Cluster, namespace: string): Promise<void> {
  const keys = await keysOfNamespace(cluster, namespace)
  for (let start = 0; start < keys.length; start += 500) await cluster.del(...keys.slice(start, start + 500))
}

/** Every key of `namespace` with its value, raw, for the leak canary (as test/support/canary/dump.ts does for standalone Redis). */
export async function dumpClusterNamespace(cluster: Cluster, namespace: string): Promise<string> {
  const lines: string[] = []
  for (const key of await keysOfNamespace(cluster, namespace)) {
    const type = await cluster.type(key)
    const value =
      type === 'hash'
        ? await cluster.hgetall(key)
        : type === 'zset'
          ? await cluster.zrange(key, '0', '-1', 'WITHSCORES')
          : type === 'set'
            ? await cluster.smembers(key)
            : type === 'string'
              ? await cluster.get(key)
              : `(${type})`
    lines.push(`${key} ${JSON.stringify(value)}`)
  }
  return lines.join('\n')
}
