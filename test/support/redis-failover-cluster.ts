/**
 * A Redis Cluster of its own for test/adapters/redis-failover.test.ts, which kills, pauses, fails over
 * and reshards its nodes: 3 masters + 3 replicas on 127.0.0.1:7100-7105 (KEYWARDEN_REDIS_FAILOVER_PORTS
 * to move it), data in /tmp/keywarden-redis-failover (KEYWARDEN_REDIS_FAILOVER_DIR), started and torn
 * down by the test file itself with scripts/ci/start-redis-cluster.sh and stop-redis-cluster.sh, and a
 * cluster-node-timeout of 1000 ms so that a failover takes about two seconds. The shared cluster of
 * the other suites (7000-7005, test/support/redis-cluster.ts) is never touched.
 *
 * The gate needs only `redis-server` and `redis-cli` on the PATH: locally their absence skips the file
 * with a message, under CI=true it fails it.
 *
 * @example
 * ```ts
 * const gate = await failoverClusterGate()
 * describe.skipIf(!gate.available)('failover', () => {
 *   const cluster = new FailoverCluster()
 *   beforeAll(() => cluster.start(), 60_000)
 *   afterAll(() => cluster.stop(), 60_000)
 *   it('survives a kill', async () => {
 *     const victim = await cluster.masterOfSlot(slot)
 *     await cluster.kill(victim)
 *     await cluster.waitForPromotion(slot, victim)
 *   })
 * })
 * ```
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import { createCluster, type RedisClusterOptions } from 'redis'
import { gateService, type ServiceGate } from './services.js'

const run = promisify(execFile)
const SCRIPTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'ci')
const HOST = '127.0.0.1'

/** The six ports (3 masters + 3 replicas at first; failovers move the roles around). */
export const FAILOVER_PORTS: readonly number[] = (process.env.KEYWARDEN_REDIS_FAILOVER_PORTS ?? '7100 7101 7102 7103 7104 7105')
  .split(/[\s,]+/)
  .filter(Boolean)
  .map(Number)
const FAILOVER_DIR = process.env.KEYWARDEN_REDIS_FAILOVER_DIR ?? '/tmp/keywarden-redis-failover'

/** cluster-node-timeout of the dedicated cluster: a master unreachable this long is failed over. */
export const NODE_TIMEOUT_MS = 1_000

const SCRIPT_ENV = {
  ...process.env,
  KEYWARDEN_REDIS_CLUSTER_PORTS: FAILOVER_PORTS.join(' '),
  KEYWARDEN_REDIS_CLUSTER_DIR: FAILOVER_DIR,
  KEYWARDEN_REDIS_CLUSTER_NODE_TIMEOUT_MS: String(NODE_TIMEOUT_MS),
}

/**
 * ioredis `Cluster` settings that ride out a failover of this cluster instead of failing: a command
 * whose master is gone is tried again every 200 ms (`retryDelayOnFailover`, `retryDelayOnClusterDown`)
 * up to 32 redirections, about 3 s, longer than a failover here takes. docs/stores/redis.md
 * recommends them, scaled to the server's cluster-node-timeout.
 */
export const IOREDIS_FAILOVER_OPTIONS: ClusterOptions = { retryDelayOnFailover: 200, retryDelayOnClusterDown: 200, maxRedirections: 32 }

/**
 * node-redis `createCluster` settings that shorten its errors after a master dies: the slot map is
 * read again 250 ms after a node starts reconnecting (default 5 s), a dead node is retried every
 * 100 ms, and a command for a node that is down fails at once instead of waiting in the offline queue.
 */
export const NODE_REDIS_FAILOVER_OPTIONS = {
  topologyRefreshOnReconnectionAttemptStrategy: 250,
  defaults: { disableOfflineQueue: true, socket: { connectTimeout: 500, reconnectStrategy: () => 100 } },
} satisfies Partial<RedisClusterOptions>

/** Passes when redis-server and redis-cli are installed (the test starts its cluster itself). */
export function failoverClusterGate(): Promise<ServiceGate> {
  return gateService('redis-server (dedicated failover cluster)', async () => {
    await run('redis-cli', ['--version'])
    const { stdout } = await run('redis-server', ['--version'])
    return `redis-server ${/v=(\S+)/.exec(stdout)?.[1] ?? '(unknown version)'}, cluster on ${HOST}:${FAILOVER_PORTS.join(',')}`
  })
}

/** One node as `CLUSTER NODES` lists it. */
export interface NodeEntry {
  readonly id: string
  readonly port: number
  readonly master: boolean
  readonly failed: boolean
  /** The master's ID, for a replica. */
  readonly masterId: string | null
  readonly slots: readonly (readonly [number, number])[]
}

function parseNodes(text: string): NodeEntry[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ')
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        master: flags!.includes('master'),
        // `fail?` (suspected) counts too: a master in doubt serves nothing the tests can rely on.
        failed: /fail|noaddr/.test(flags!),
        masterId: masterId === '-' ? null : masterId!,
        slots: slots.filter((range) => /^\d+(-\d+)?$/.test(range)).map((range) => {
          const [from, to] = range.split('-').map(Number)
          return [from!, to ?? from!] as const
        }),
      }
    })
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` every 50 ms until it returns a value other than `undefined`, or throws after `timeoutMs`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await pause(50)
  }
}

/** The dedicated cluster: starting and stopping it, its topology, and the faults the tests inject. */
export class FailoverCluster {
  readonly seeds = FAILOVER_PORTS.map((port) => ({ host: HOST, port }))
  readonly #admins = new Map<number, Redis>()
  readonly #clients: { close(): unknown }[] = []
  readonly #stopped = new Set<number>()

  /** Starts the cluster (or finds it healthy from an earlier run) and makes every master's replica link current. */
  async start(): Promise<void> {
    const { stdout } = await run('bash', [join(SCRIPTS, 'start-redis-cluster.sh')], { env: SCRIPT_ENV, timeout: 90_000 })
    process.stdout.write(stdout)
    await this.waitHealthy()
  }

  /** Closes every client made here, resumes any paused node and tears the cluster down. */
  async stop(): Promise<void> {
    for (const port of this.#stopped) this.signal(port, 'SIGCONT')
    for (const client of this.#clients.splice(0)) await Promise.resolve(client.close()).catch(() => undefined)
    for (const admin of this.#admins.values()) admin.disconnect()
    this.#admins.clear()
    const { stdout } = await run('bash', [join(SCRIPTS, 'stop-redis-cluster.sh')], { env: SCRIPT_ENV, timeout: 60_000 })
    process.stdout.write(stdout)
  }

  /** A plain connection to one node, for admin commands (never sent through a store). */
  admin(port: number): Redis {
    let admin = this.#admins.get(port)
    if (admin === undefined) {
      admin = new Redis({ host: HOST, port, lazyConnect: false, maxRetriesPerRequest: 0, enableOfflineQueue: true, retryStrategy: () => 100, connectTimeout: 1_000 })
      admin.on('error', () => undefined)
      this.#admins.set(port, admin)
    }
    return admin
  }

  /** An ioredis `Cluster` on the seeds, once ready; closed by {@link FailoverCluster.stop}. */
  async ioredis(options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster([...this.seeds], { scaleReads: 'master', ...options })
    cluster.on('error', () => undefined)
    this.#clients.push({ close: () => cluster.disconnect() })
    if (cluster.status !== 'ready') await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the ioredis Cluster was not ready within 10 s')), 10_000)
      cluster.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    return cluster
  }

  /** A connected node-redis cluster on the seeds; closed by {@link FailoverCluster.stop}. */
  async nodeRedis(options: Partial<RedisClusterOptions> = {}) {
    const cluster = createCluster({ ...options, rootNodes: this.seeds.map((seed) => ({ url: `redis://${seed.host}:${seed.port}` })) })
    cluster.on('error', () => undefined)
    this.#clients.push({ close: () => cluster.destroy() })
    return cluster.connect()
  }

  /** Every node, as a live node lists them. */
  async nodes(): Promise<NodeEntry[]> {
    for (const port of FAILOVER_PORTS) {
      if (this.#stopped.has(port)) continue
      try {
        return parseNodes(String(await this.admin(port).call('CLUSTER', 'NODES')))
      } catch {
        // Down or paused: ask the next one.
      }
    }
    throw new Error('no node of the failover cluster answers')
  }

  /** The slot of `key` (`CLUSTER KEYSLOT`). */
  async slotOf(key: string): Promise<number> {
    const port = FAILOVER_PORTS.find((candidate) => !this.#stopped.has(candidate))!
    return Number(await this.admin(port).call('CLUSTER', 'KEYSLOT', key))
  }

  /** The port of the live master serving `slot`. */
  async masterOfSlot(slot: number): Promise<number> {
    const master = (await this.nodes()).find((node) => node.master && !node.failed && node.slots.some(([from, to]) => slot >= from && slot <= to))
    if (master === undefined) throw new Error(`no live master serves slot ${slot}`)
    return master.port
  }

  /** The ports of the masters, in slot order. */
  async masters(): Promise<NodeEntry[]> {
    return (await this.nodes()).filter((node) => node.master && !node.failed && node.slots.length > 0).sort((a, b) => a.slots[0]![0] - b.slots[0]![0])
  }

  /** The replica of the master on `port`. */
  async replicaOf(port: number): Promise<number> {
    const nodes = await this.nodes()
    const master = nodes.find((node) => node.port === port)
    const replica = nodes.find((node) => node.masterId === master?.id && !node.failed)
    if (replica === undefined) throw new Error(`the master on ${port} has no replica`)
    return replica.port
  }

  /** `count` namespaces (`<prefix>-<n>`), one on each of `count` different masters, with their slots. */
  async namespacesOnEachMaster(prefix: string, count = 3): Promise<{ namespace: string; slot: number; master: number }[]> {
    const masters = await this.masters()
    const chosen = new Map<number, { namespace: string; slot: number; master: number }>()
    for (let n = 0; chosen.size < Math.min(count, masters.length); n++) {
      const namespace = `${prefix}-${n}`
      const slot = await this.slotOf(`{${namespace}}`)
      const master = masters.find((node) => node.slots.some(([from, to]) => slot >= from && slot <= to))!.port
      if (!chosen.has(master)) chosen.set(master, { namespace, slot, master })
    }
    return [...chosen.values()]
  }

  /** How many `WAIT` commands the node on `port` has run (`INFO commandstats`). */
  async waitCalls(port: number): Promise<number> {
    return Number(/^cmdstat_wait:calls=(\d+)/m.exec(String(await this.admin(port).info('commandstats')))?.[1] ?? 0)
  }

  /** MOVED and ASK replies every live node has sent so far (`INFO errorstats`), and TRYAGAIN ones. */
  async redirections(): Promise<{ moved: number; ask: number; tryagain: number }> {
    const totals = { moved: 0, ask: 0, tryagain: 0 }
    for (const port of FAILOVER_PORTS) {
      if (this.#stopped.has(port)) continue
      const stats = String(await this.admin(port).info('errorstats').catch(() => ''))
      for (const [, kind, count] of stats.matchAll(/^errorstat_(MOVED|ASK|TRYAGAIN):count=(\d+)/gm)) totals[kind!.toLowerCase() as keyof typeof totals] += Number(count)
    }
    return totals
  }

  #pid(port: number): number {
    return Number(readFileSync(join(FAILOVER_DIR, String(port), 'redis.pid'), 'utf8').trim())
  }

  /** Sends `signal` to the redis-server on `port` (by the pid file it wrote). */
  signal(port: number, signal: NodeJS.Signals): void {
    process.kill(this.#pid(port), signal)
  }

  /** SIGKILL: the node dies at once, without a chance to tell anyone. */
  kill(port: number): void {
    this.signal(port, 'SIGKILL')
    this.#stopped.add(port)
    this.#admins.get(port)?.disconnect()
    this.#admins.delete(port)
  }

  /** SIGSTOP: the node stops answering (its connections stay open) until {@link FailoverCluster.resume}. */
  pause(port: number): void {
    this.signal(port, 'SIGSTOP')
    this.#stopped.add(port)
  }

  /** SIGCONT after {@link FailoverCluster.pause}. */
  resume(port: number): void {
    this.signal(port, 'SIGCONT')
    this.#stopped.delete(port)
  }

  /** Starts a killed node again from its redis.conf; it rejoins with its nodes.conf, as a replica of whoever took its slots. */
  async restart(port: number): Promise<void> {
    await run('redis-server', [join(FAILOVER_DIR, String(port), 'redis.conf')])
    this.#stopped.delete(port)
    await until(`node ${port} answering`, async () => ((await this.admin(port).ping()) === 'PONG' ? true : undefined), 10_000)
  }

  /** Waits until a node other than `previous` serves `slot` and every live node says cluster_state:ok; the new master's port. */
  async waitForPromotion(slot: number, previous: number, timeoutMs = 15_000): Promise<number> {
    const promoted = await until(
      `a new master for slot ${slot}`,
      async () => {
        const port = await this.masterOfSlot(slot)
        return port === previous ? undefined : port
      },
      timeoutMs,
    )
    await this.waitStateOk(timeoutMs)
    return promoted
  }

  /** Waits until every live node answers cluster_state:ok. */
  async waitStateOk(timeoutMs = 15_000): Promise<void> {
    await until(
      'cluster_state:ok on every live node',
      async () => {
        for (const port of FAILOVER_PORTS) {
          if (this.#stopped.has(port)) continue
          if (!/^cluster_state:ok/m.test(String(await this.admin(port).call('CLUSTER', 'INFO')))) return undefined
        }
        return true
      },
      timeoutMs,
    )
  }

  /** Waits until the master on `port` has `replicas` replicas online and caught up (a `WAIT` on a plain connection confirms it). */
  async waitReplicated(port: number, replicas = 1, timeoutMs = 20_000): Promise<void> {
    await until(
      `${replicas} replica(s) of ${port} in sync`,
      async () => {
        const info = String(await this.admin(port).info('replication'))
        const online = [...info.matchAll(/^slave\d+:.*state=online/gm)].length
        if (online < replicas) return undefined
        return Number(await this.admin(port).call('WAIT', String(replicas), '200')) >= replicas ? true : undefined
      },
      timeoutMs,
    )
  }

  /** Waits until all six nodes run, three masters serve every slot and each has a replica in sync. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await this.waitStateOk(timeoutMs)
    await until(
      'three masters, each with a replica',
      async () => {
        const nodes = await this.nodes()
        const masters = nodes.filter((node) => node.master && !node.failed && node.slots.length > 0)
        const replicas = nodes.filter((node) => !node.master && !node.failed)
        return masters.length === 3 && replicas.length === 3 && masters.every((master) => replicas.some((replica) => replica.masterId === master.id)) ? masters : undefined
      },
      timeoutMs,
    ).then((masters) => Promise.all(masters.map((master) => this.waitReplicated(master.port, 1, timeoutMs))))
  }
}
