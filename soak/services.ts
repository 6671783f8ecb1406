/**
 * Private Redis and PostgreSQL servers for the soak, on free ports with data in temporary directories,
 * so the soak can stop and start them without touching the machine's shared servers (6379, 5432).
 * Every server and directory is registered for cleanup, which also runs on failure and on SIGINT.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { POSTGRES_USER, type StoreName } from './config.js'

const START_TIMEOUT_MS = 30_000

/** A store server the soak owns: it can be stopped and started again on the same port and data. */
export interface PrivateServer {
  readonly store: StoreName
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
