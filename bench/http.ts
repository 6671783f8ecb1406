/**
 * HTTP throughput of every adapter (Express, Koa, Fastify, Hono, the Fetch adapter) against the bare
 * framework (hello-world) and a trivial header check. BENCH_HTTP_FRAMEWORKS (comma list of express,
 * koa, fastify, hono, fetch; default all) picks the frameworks. Server and load generator (autocannon) each run in their own process, as in
 * production, so neither steals the other's event loop; on a 2-core machine they get a core each.
 * The variants of one framework and connection count take turns in rounds (see benchHttp).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Comparison, interleave, ROUNDS, type BenchResult } from './harness.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SERVER = fileURLToPath(new URL('./http-server.ts', import.meta.url))
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const ALL_FRAMEWORKS = { express: 'Express', koa: 'Koa', fastify: 'Fastify', hono: 'Hono', fetch: 'Fetch (withApiKey)' } as const
const FRAMEWORKS = pickFrameworks(process.env.BENCH_HTTP_FRAMEWORKS)
const VARIANTS = { bare: 'bare', 'header-check': 'header check', keywarden: 'keywarden apiKeyAuth' } as const
const WARM_UP_MS = 2000
/** Linux's USER_HZ, the unit of /proc/<pid>/stat times: 100 on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100
const HTTP_MIN_SLICE_MS = 3000
const HTTP_ROUNDS = Math.min(ROUNDS, 3)
const START_TIMEOUT_MS = 60_000

function pickFrameworks(list: string | undefined): Partial<Record<keyof typeof ALL_FRAMEWORKS, string>> {
  if (list === undefined || list.trim() === '') return ALL_FRAMEWORKS
  const names = list.split(',').map((name) => name.trim()).filter(Boolean)
  const unknown = names.filter((name) => !(name in ALL_FRAMEWORKS))
  if (unknown.length > 0) throw new Error(`BENCH_HTTP_FRAMEWORKS: unknown ${unknown.join(', ')} (known: ${Object.keys(ALL_FRAMEWORKS).join(', ')})`)
  return Object.fromEntries(names.map((name) => [name, ALL_FRAMEWORKS[name as keyof typeof ALL_FRAMEWORKS]]))
}

interface RunningServer {
  readonly url: string
  readonly token: string
  /** CPU seconds (user + system) the server process has used so far; `null` off Linux. */
  readonly cpuSeconds: () => number | null
  readonly stop: () => Promise<void>
}

/** Starts bench/http-server.ts and waits for its `TOKEN` and `READY` lines. */
async function startServer(framework: string, variant: string): Promise<RunningServer> {
  // cwd = package root, so tsx finds tsconfig.json and its `keywarden/*` paths.
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, framework, variant], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    const { port, token } = await new Promise<{ port: number; token: string }>((resolve, reject) => {
      let token = ''
      const timer = setTimeout(() => reject(new Error(`no READY within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
      child.once('exit', (code, signal) => reject(new Error(`exited early (${signal ?? code}): ${stderr.trim()}`)))
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith('TOKEN ')) token = line.slice(6)
        if (line.startsWith('READY ')) {
          clearTimeout(timer)
          resolve({ port: Number(line.slice(6)), token })
        }
      })
    })
    const stop = async () => {
      child.kill('SIGTERM')
      await exited
      if (child.exitCode !== 0) throw new Error(`${framework} ${variant} server ended with ${child.signalCode ?? child.exitCode}: ${stderr.trim()}`)
    }
    return { url: `http://127.0.0.1:${port}/hello`, token, stop, cpuSeconds: () => processCpuSeconds(child.pid) }
  } catch (error) {
    kill(child)
    throw new Error(`${framework} ${variant} server: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** utime + stime of a process from /proc (Linux), in seconds; `null` where there is no /proc. */
function processCpuSeconds(pid: number | undefined): number | null {
  try {
    // Fields after the parenthesised command name: state is 3rd, utime 14th, stime 15th (1-based).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  } catch {
    return null
  }
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}

/** Checks that the variant really guards the route: without the key only `bare` may answer 200. */
async function checkGuard(server: RunningServer, variant: string): Promise<void> {
  const [without, withKey] = await Promise.all([fetch(server.url), fetch(server.url, { headers: { 'x-api-key': server.token } })])
  const expected = variant === 'bare' ? 200 : 401
  if (without.status !== expected || withKey.status !== 200) {
    throw new Error(`${variant} server answers ${without.status} without the key (expected ${expected}) and ${withKey.status} with it`)
  }
}

/** Runs autocannon (`--json`) in its own process; returns requests per second and requests completed. */
async function autocannon(server: RunningServer, connections: number, durationMs: number): Promise<{ requestsPerSecond: number; requests: number }> {
  const args = [AUTOCANNON, '--json', '-c', String(connections), '-d', String(durationMs / 1000), '-H', `x-api-key=${server.token}`, server.url]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk) => (stdout += chunk))
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const lastLine = stdout.trim().split('\n').pop() ?? ''
  if (code !== 0 || !lastLine.startsWith('{')) throw new Error(`autocannon failed (exit ${code}): ${stderr.trim() || stdout.trim()}`)
  const result = JSON.parse(lastLine) as { requests: { total: number }; duration: number; errors: number; timeouts: number; non2xx: number; '2xx': number }
  if (result.errors !== 0 || result.timeouts !== 0 || result.non2xx !== 0 || result['2xx'] === 0) {
    const { errors, timeouts, non2xx } = result
    throw new Error(`autocannon against ${server.url}: ${JSON.stringify({ errors, timeouts, non2xx, '2xx': result['2xx'] })}; every request must succeed`)
  }
  return { requestsPerSecond: result.requests.total / result.duration, requests: result.requests.total }
}

/**
 * Requests per second for each framework × connection count × variant; `bare` is each group's baseline.
 * A group's servers run side by side (idle unless measured); after a discarded warm-up each, the
 * variants take turns for ROUNDS rounds, and each ratio is the median of same-round ratios.
 */
export async function benchHttp(durationMs: number, connections: readonly number[]): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  const variants = Object.entries(VARIANTS)
  for (const [framework, frameworkLabel] of Object.entries(FRAMEWORKS)) {
    for (const c of connections) {
      const servers: RunningServer[] = []
      try {
        for (const [variant] of variants) servers.push(await startServer(framework, variant))
        for (const [index, [variant]] of variants.entries()) {
          await checkGuard(servers[index]!, variant)
          await autocannon(servers[index]!, c, WARM_UP_MS)
        }
        // autocannon needs whole seconds to settle, so HTTP takes fewer, longer rounds than in-process cases.
        // Besides throughput, each slice records the server's CPU per request: on a shared 2-core machine
        // throughput swings with the neighbours, CPU per request much less.
        const perCpuSecond = servers.map((): number[] => [])
        const comparison = await interleave(
          servers.map((server, index) => async () => {
            const cpuBefore = server.cpuSeconds()
            const { requestsPerSecond, requests } = await autocannon(server, c, Math.max(HTTP_MIN_SLICE_MS, durationMs))
            const cpuAfter = server.cpuSeconds()
            if (cpuBefore !== null && cpuAfter !== null && cpuAfter > cpuBefore) perCpuSecond[index]!.push(requests / (cpuAfter - cpuBefore))
            return requestsPerSecond
          }),
          HTTP_ROUNDS,
        )
        const cpu = perCpuSecond.every((samples) => samples.length === HTTP_ROUNDS) ? new Comparison(perCpuSecond) : null
        for (const [index, [, variantLabel]] of variants.entries()) {
          results.push({
            name: `${frameworkLabel}: ${variantLabel}, c=${c}`,
            opsPerSecond: comparison.opsPerSecond(index),
            ratioToBaseline: index === 0 ? null : comparison.ratio(index),
          })
        }
        if (cpu !== null) {
          for (const [index, [, variantLabel]] of variants.entries()) {
            results.push({
              name: `${frameworkLabel}: ${variantLabel}, c=${c}, requests per server CPU-second`,
              opsPerSecond: cpu.opsPerSecond(index),
              ratioToBaseline: index === 0 ? null : cpu.ratio(index),
            })
          }
        }
      } finally {
        await Promise.all(servers.map((server) => server.stop()))
      }
    }
  }
  return results
}
