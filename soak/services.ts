/**
 * Private Redis and PostgreSQL servers for the soak, on free ports with data in temporary directories,
 * so the soak can stop and start them without touching the machine's shared servers (6379, 5432); and
 * a private Redis Cluster (3 masters + 3 replicas) on ports of its own, started and stopped with
 * scripts/ci/start-redis-cluster.sh and stop-redis-cluster.sh, whose namespace master can be failed over.
 * Every server and directory is registered for cleanup, which also runs on failure and on SIGINT.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { POSTGRES_USER, type FailoverMode } from './config.js'

const START_TIMEOUT_MS = 30_000

/** A store server the soak owns: it can be stopped and started again on the same port and data. */
export interface PrivateServer {
  readonly store: 'redis' | 'postgres'
  readonly host: string
  readonly port: number
  /** Stops it cleanly (Redis: SIGTERM, which writes the append-only file; PostgreSQL: `pg_ctl stop -m fast`). */
  stop(): Promise<void>
  /** Starts it again and resolves once it accepts connections. */
  start(): Promise<void>
  /** Stops it if running and deletes its data; safe to call twice. */
  destroy(): void
  /** What the server logged, for failure reports. */
  log(): string
}

type Cleanup = () => void
const cleanups = new Set<Cleanup>()

/** Registers a synchronous cleanup step; returns a function that runs it early (and only once). */
export function onCleanup(step: Cleanup): Cleanup {
  let done = false
  const once = () => {
    if (done) return
    done = true
    cleanups.delete(once)
    try {
      step()
    } catch (error) {
      console.error('soak: cleanup step failed:', error)
    }
  }
  cleanups.add(once)
  return once
}

/** Runs every registered cleanup step, newest first. Synchronous, so it also works in an `exit` handler. */
export function cleanupAll(): void {
  for (const step of [...cleanups].reverse()) step()
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`${what} did not come up within ${timeoutMs} ms`)
}

/** Sends one inline command over a fresh connection; resolves with the first reply line. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    socket.setTimeout(1000, () => socket.destroy(new Error('timeout')))
    socket.once('error', reject)
    socket.on('data', (chunk) => {
      reply += chunk
      if (reply.includes('\r\n')) {
        socket.end()
        resolve(reply.slice(0, reply.indexOf('\r\n')))
      }
    })
    socket.once('connect', () => socket.write(`${command}\r\n`))
  })
}

/**
 * `redis-server` as a child process. The append-only file is on (in a temporary directory, not the
 * machine's): with `--appendonly no` a restart would empty the store, and "nothing was lost" could not
 * hold for any store. SIGTERM makes Redis write and fsync it before exiting.
 */
export async function startPrivateRedis(): Promise<PrivateServer> {
  const port = await freePort()
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-soak-redis-'))
  const logFile = join(directory, 'redis.log')
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec']
  args.push('--dir', directory, '--logfile', logFile, '--daemonize', 'no')
  let child: ChildProcess | undefined

  const start = async () => {
    const started = spawn('redis-server', args, { stdio: 'ignore' })
    child = started
    const failed = new Promise<never>((_, reject) => {
      started.once('error', (error) => reject(new Error(`redis-server could not be started: ${error.message}`)))
      started.once('exit', (code, signal) => reject(new Error(`redis-server exited at start (${signal ?? code})`)))
    })
    failed.catch(() => undefined)
    await Promise.race([waitFor('redis-server', async () => (await redisCommand(port, 'PING')) === '+PONG'), failed])
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill('SIGTERM')
    await exited
  }
  const destroy = onCleanup(() => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      // Nothing to keep: no need to wait for a clean shutdown.
      child.kill('SIGKILL')
    }
    child = undefined
    rmSync(directory, { recursive: true, force: true })
  })
  await start()
  return { store: 'redis', host: '127.0.0.1', port, start, stop, destroy, log: () => readTail(logFile) }
}

/** The newest PostgreSQL's binaries (`/usr/lib/postgresql/<version>/bin`), or SOAK_PG_BIN. */
function postgresBinaries(): string {
  if (process.env.SOAK_PG_BIN) return process.env.SOAK_PG_BIN
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'initdb'))) : []
  versions.sort((a, b) => Number(b) - Number(a))
  if (versions.length === 0) throw new Error(`no PostgreSQL binaries under ${root}/*/bin (set SOAK_PG_BIN to the directory holding initdb and pg_ctl)`)
  return join(root, versions[0]!, 'bin')
}

/** initdb and the server refuse to run as root: as root, commands run as the postgres user. */
function asPostgres(command: string, args: readonly string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', POSTGRES_USER, '--', command, ...args]] : [command, [...args]]
}

/** Like {@link run}, without blocking the event loop: the soak's traffic goes on while pg_ctl works. */
function runAsync(command: string, args: readonly string[], cwd: string): Promise<void> {
  const [file, argv] = asPostgres(command, args)
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (chunk) => (output += chunk))
    child.stderr!.on('data', (chunk) => (output += chunk))
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? code}): ${output.trim()}`))
    })
  })
}

function run(command: string, args: readonly string[], cwd: string): void {
  const [file, argv] = asPostgres(command, args)
  const result = spawnSync(file, argv, { cwd, encoding: 'utf8', timeout: 120_000 })
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? result.signal ?? result.status}): ${(result.stderr || result.stdout || '').trim()}`)
  }
}

/** A throwaway cluster (initdb) in a temporary directory, started and stopped with pg_ctl. */
export async function startPrivatePostgres(): Promise<PrivateServer> {
  const bin = postgresBinaries()
  const port = await freePort()
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-soak-pg-'))
  const data = join(directory, 'data')
  const logFile = join(directory, 'server.log')
  const pgCtl = join(bin, 'pg_ctl')
  let running = false
  const destroy = onCleanup(() => {
    if (running) {
      const [file, argv] = asPostgres(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop'])
      spawnSync(file, argv, { cwd: directory, stdio: 'ignore', timeout: 30_000 })
      running = false
    }
    rmSync(directory, { recursive: true, force: true })
  })
  try {
    if (process.getuid?.() === 0) {
      const ids = spawnSync('id', ['-u', POSTGRES_USER], { encoding: 'utf8' })
      const gids = spawnSync('id', ['-g', POSTGRES_USER], { encoding: 'utf8' })
      if (ids.status !== 0) throw new Error(`running as root needs a '${POSTGRES_USER}' user to own the cluster`)
      chownSync(directory, Number(ids.stdout.trim()), Number(gids.stdout.trim()))
    }
    run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', POSTGRES_USER, '-E', 'UTF8', '--no-sync'], directory)
    // fsync off: a throwaway cluster on a shared machine; a clean stop still writes everything.
    const serverOptions = `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`
    const start = async () => {
      running = true
      await runAsync(pgCtl, ['-D', data, '-o', serverOptions, '-l', logFile, '-w', '-t', '60', 'start'], directory)
    }
    const stop = async () => {
      await runAsync(pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop'], directory)
      running = false
    }
    await start()
    return { store: 'postgres', host: '127.0.0.1', port, start, stop, destroy, log: () => readTail(logFile) }
  } catch (error) {
    destroy()
    throw error
  }
}

function readTail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

// ---- the private Redis Cluster ------------------------------------------------------------------

const SCRIPTS = fileURLToPath(new URL('../scripts/ci/', import.meta.url))
const CLUSTER_HOST = '127.0.0.1'
/** How long a failover (promotion seen by every live node) or a node's rejoin may take. */
const FAILOVER_LIMIT_MS = 30_000

export interface ClusterNode {
  readonly host: string
  readonly port: number
}

/** The shard serving one slot, as a node sees it in `CLUSTER SHARDS`. */
export interface ClusterShard {
  readonly slot: number
  readonly master: ClusterNode
  readonly replicas: readonly ClusterNode[]
}

/** What a failover did and when (epoch ms). */
export interface FailoverResult {
  readonly mode: FailoverMode
  readonly slot: number
  readonly oldMaster: ClusterNode
  readonly newMaster: ClusterNode
  /** Just before the SIGKILL or `CLUSTER FAILOVER`. */
  readonly brokenAt: number
  /** When the replica first answered `ROLE` as a master. */
  readonly promotedAt: number
  /** When every live node had `cluster_state:ok` and named the new master for the slot. */
  readonly settledAt: number
}

/** The soak's private Redis Cluster. */
export interface PrivateCluster {
  readonly store: 'redis-cluster'
  readonly host: string
  /** The first node, as a seed. */
  readonly port: number
  readonly nodes: readonly ClusterNode[]
  /** The shard serving `key`'s slot (`CLUSTER KEYSLOT`, `CLUSTER SHARDS`), asked of a live node. */
  shardOf(key: string): Promise<ClusterShard>
  /**
   * Fails the shard's master over to its first replica: `kill` sends the master SIGKILL (by the pid
   * file it wrote), `manual` sends `CLUSTER FAILOVER` to the replica. Resolves once the replica is the
   * master as every live node sees it; rejects after 30 s.
   */
  failover(shard: ClusterShard, mode: FailoverMode): Promise<FailoverResult>
  /** Starts a killed node again, as the start script started it; resolves once it is a replica with its link up. */
  restart(node: ClusterNode): Promise<void>
  /** Stops every node (stop-redis-cluster.sh) and deletes the data; safe to call twice. */
  destroy(): void
  /** What the nodes logged (their tails), for failure reports. */
  log(): string
}

const address = (node: ClusterNode) => `${node.host}:${node.port}`

/** Whether something accepts TCP connections on `port` (a free port refuses at once). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, CLUSTER_HOST)
    socket.setTimeout(1_000, () => (socket.destroy(), resolve(true)))
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
  })
}

function runScript(name: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(SCRIPTS, name)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (chunk) => (output += chunk))
    child.stderr!.on('data', (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', (error) => (clearTimeout(timer), reject(error)))
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`scripts/ci/${name} failed (${signal ?? code}):\n${output.trim()}`))
    })
  })
}

/** One command on a fresh connection to `node`, without retries; the connection is closed afterwards. */
async function nodeCommand(node: ClusterNode, ...args: string[]): Promise<unknown> {
  const client = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000, commandTimeout: 2_000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
    return await client.call(args[0]!, ...args.slice(1))
  } finally {
    client.disconnect()
  }
}

/** A flat `[name, value, name, value, ...]` reply as an object. */
function pairs(reply: unknown): Record<string, unknown> {
  const list = reply as unknown[]
  const object: Record<string, unknown> = {}
  for (let i = 0; i + 1 < list.length; i += 2) object[String(list[i])] = list[i + 1]
  return object
}

/**
 * The soak's own Redis Cluster: scripts/ci/start-redis-cluster.sh on `ports` (default 7200-7205), data
 * in a directory named after the first port (so a cluster left over by a soak that was killed is
 * recognised by stop-redis-cluster.sh and torn down first). Any other server on one of the ports, or
 * on its cluster bus port, is an error: the soak never uses a cluster it did not start.
 */
export async function startPrivateRedisCluster(ports: readonly number[]): Promise<PrivateCluster> {
  const directory = join(tmpdir(), `keywarden-soak-cluster-${ports[0]}`)
  const env = { KEYWARDEN_REDIS_CLUSTER_PORTS: ports.join(' '), KEYWARDEN_REDIS_CLUSTER_DIR: directory, KEYWARDEN_REDIS_CLUSTER_WAIT_S: '60' }
  const nodes = ports.map((port) => ({ host: CLUSTER_HOST, port }))
  // A leftover of an earlier soak (same directory) goes; the script leaves other servers alone and fails.
  await runScript('stop-redis-cluster.sh', env, 60_000).catch((error: unknown) => {
    throw new Error(`a server this soak did not start holds one of the cluster ports ${ports.join(', ')} (set SOAK_CLUSTER_PORTS): ${error instanceof Error ? error.message : String(error)}`)
  })
  for (const port of ports.flatMap((port) => [port, port + 10_000])) {
    if (await listening(port)) throw new Error(`port ${port} is taken (the cluster needs ${ports.join(', ')} and each + 10000): set SOAK_CLUSTER_PORTS`)
  }
  const killed = new Map<number, { args: string[] }>()
  const destroy = onCleanup(() => {
    const result = spawnSync('bash', [join(SCRIPTS, 'stop-redis-cluster.sh')], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 })
    if (result.status !== 0) console.error(`soak: stop-redis-cluster.sh failed (${result.error?.message ?? result.signal ?? result.status}): ${(result.stderr || result.stdout || '').trim()}`)
    rmSync(directory, { recursive: true, force: true })
  })
  try {
    const output = await runScript('start-redis-cluster.sh', env, 120_000)
    for (const line of output.trim().split('\n')) if (/cluster is up|master|replica/.test(line)) console.log(`  ${line}`)
  } catch (error) {
    destroy()
    throw error
  }

  const live = () => nodes.filter((node) => !killed.has(node.port))
  const shardOf = async (key: string): Promise<ClusterShard> => {
    let lastError: unknown
    for (const node of live()) {
      try {
        const slot = Number(await nodeCommand(node, 'CLUSTER', 'KEYSLOT', key))
        for (const shard of (await nodeCommand(node, 'CLUSTER', 'SHARDS')) as unknown[]) {
          const fields = pairs(shard)
          const ranges = (fields.slots as unknown[]).map(Number)
          let owns = false
          for (let i = 0; i + 1 < ranges.length; i += 2) if (slot >= ranges[i]! && slot <= ranges[i + 1]!) owns = true
          if (!owns) continue
          const members = (fields.nodes as unknown[]).map(pairs).filter((member) => member.health === 'online')
          const toNode = (member: Record<string, unknown>) => ({ host: String(member.ip), port: Number(member.port) })
          const master = members.find((member) => member.role === 'master')
          if (master === undefined) throw new Error(`no online master for slot ${slot}`)
          return { slot, master: toNode(master), replicas: members.filter((member) => member.role === 'replica').map(toNode) }
        }
        throw new Error(`no shard serves slot ${slot}`)
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  /** Whether every live node has cluster_state:ok and names `master` as the slot's master. */
  const settled = async (slot: number, master: ClusterNode): Promise<boolean> => {
    for (const node of live()) {
      const info = String(await nodeCommand(node, 'CLUSTER', 'INFO'))
      if (!/^cluster_state:ok\r?$/m.test(info)) return false
      const ranges = (await nodeCommand(node, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]
      if (owner === undefined || Number(owner[1]) !== master.port) return false
    }
    return true
  }

  const failover = async (shard: ClusterShard, mode: FailoverMode): Promise<FailoverResult> => {
    const replica = shard.replicas[0]
    if (replica === undefined) throw new Error(`slot ${shard.slot}: its master ${address(shard.master)} has no replica to fail over to`)
    let brokenAt: number
    if (mode === 'kill') {
      // What the node was started with, to start it again as the script did (it rejoins as a replica).
      const config = pairs(await nodeCommand(shard.master, 'CONFIG', 'GET', '*'))
      const pid = Number(/^process_id:(\d+)/m.exec(String(await nodeCommand(shard.master, 'INFO', 'server')))?.[1])
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`could not read the pid of ${address(shard.master)}`)
      const args = ['--bind', CLUSTER_HOST, '--port', String(shard.master.port), '--dir', String(config.dir)]
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', String(config['cluster-config-file']), '--cluster-node-timeout', String(config['cluster-node-timeout']))
      args.push('--appendonly', String(config.appendonly), '--save', String(config.save ?? ''), '--daemonize', 'yes', '--pidfile', String(config.pidfile), '--logfile', String(config.logfile))
      killed.set(shard.master.port, { args })
      brokenAt = Date.now()
      process.kill(pid, 'SIGKILL')
    } else {
      brokenAt = Date.now()
      const reply = await nodeCommand(replica, 'CLUSTER', 'FAILOVER')
      if (reply !== 'OK') throw new Error(`CLUSTER FAILOVER on ${address(replica)} answered ${String(reply)}`)
    }
    let promotedAt: number | null = null
    const deadline = brokenAt + FAILOVER_LIMIT_MS
    while (Date.now() < deadline) {
      const now = Date.now()
      try {
        if (promotedAt === null && ((await nodeCommand(replica, 'ROLE')) as unknown[])[0] === 'master') promotedAt = now
        if (promotedAt !== null && (await settled(shard.slot, replica))) {
          return { mode, slot: shard.slot, oldMaster: shard.master, newMaster: replica, brokenAt, promotedAt, settledAt: Date.now() }
        }
      } catch {
        // A node busy with the failover; ask again.
      }
      await sleep(50)
    }
    throw new Error(`slot ${shard.slot}: ${address(replica)} was not the master on every live node within ${FAILOVER_LIMIT_MS} ms of the ${mode === 'kill' ? 'kill of' : 'CLUSTER FAILOVER away from'} ${address(shard.master)}`)
  }

  const restart = async (node: ClusterNode): Promise<void> => {
    const entry = killed.get(node.port)
    if (entry === undefined) throw new Error(`${address(node)} was not killed`)
    const result = spawnSync('redis-server', entry.args, { encoding: 'utf8', timeout: 10_000 })
    if (result.status !== 0) throw new Error(`redis-server ${entry.args.join(' ')} failed: ${(result.stderr || result.stdout || '').trim()}`)
    killed.delete(node.port)
    await waitFor(
      `${address(node)} rejoining as a replica`,
      async () => {
        const role = (await nodeCommand(node, 'ROLE')) as unknown[]
        return role[0] === 'slave' && role[3] === 'connected'
      },
      FAILOVER_LIMIT_MS,
    )
  }

  const log = () =>
    nodes
      .map((node) => {
        const tail = readTail(join(directory, String(node.port), 'redis.log'), 15)
        return tail ? `--- ${address(node)}\n${tail}` : ''
      })
      .filter(Boolean)
      .join('\n')

  return { store: 'redis-cluster', host: CLUSTER_HOST, port: ports[0]!, nodes, shardOf, failover, restart, destroy, log }
}
