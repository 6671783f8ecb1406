/**
 * HTTP throughput of the Express and Koa middlewares against the bare framework (hello-world) and a
 * trivial header check. Server and load generator (autocannon) each run in their own process, as in
 * production, so neither steals the other's event loop; on a 2-core machine they get a core each.
 * The variants of one framework and connection count run back to back, each in a fresh server after
 * a discarded warm-up run, and are compared with the bare figure of that same run.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { BenchResult } from './harness.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SERVER = fileURLToPath(new URL('./http-server.ts', import.meta.url))
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const FRAMEWORKS = { express: 'Express', koa: 'Koa' } as const
const VARIANTS = { bare: 'bare', 'header-check': 'header check', keywarden: 'keywarden apiKeyAuth' } as const
const WARM_UP_MS = 1000
const START_TIMEOUT_MS = 60_000

interface RunningServer {
  readonly url: string
  readonly token: string
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
    return { url: `http://127.0.0.1:${port}/hello`, token, stop }
  } catch (error) {
    kill(child)
    throw new Error(`${framework} ${variant} server: ${error instanceof Error ? error.message : String(error)}`)
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

/** Runs autocannon (`--json`) in its own process and returns the average requests per second. */
async function autocannon(server: RunningServer, connections: number, durationMs: number): Promise<number> {
  const args = [AUTOCANNON, '--json', '-c', String(connections), '-d', String(durationMs / 1000), '-H', `x-api-key=${server.token}`, server.url]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk) => (stdout += chunk))
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const lastLine = stdout.trim().split('\n').pop() ?? ''
  if (code !== 0 || !lastLine.startsWith('{')) throw new Error(`autocannon failed (exit ${code}): ${stderr.trim() || stdout.trim()}`)
  const result = JSON.parse(lastLine) as { requests: { average: number }; errors: number; timeouts: number; non2xx: number; '2xx': number }
  if (result.errors !== 0 || result.timeouts !== 0 || result.non2xx !== 0 || result['2xx'] === 0) {
    const { errors, timeouts, non2xx } = result
    throw new Error(`autocannon against ${server.url}: ${JSON.stringify({ errors, timeouts, non2xx, '2xx': result['2xx'] })}; every request must succeed`)
  }
  return result.requests.average
}

/** One measured run: fresh server, guard check, discarded warm-up, measured run, server stopped. */
async function measureVariant(framework: string, variant: string, connections: number, durationMs: number): Promise<number> {
  const server = await startServer(framework, variant)
  let requestsPerSecond: number
  try {
    await checkGuard(server, variant)
    await autocannon(server, connections, Math.min(WARM_UP_MS, durationMs))
    requestsPerSecond = await autocannon(server, connections, durationMs)
  } catch (error) {
    await server.stop().catch(() => undefined)
    throw error
  }
  await server.stop()
  return requestsPerSecond
}

/** Requests per second for each framework × connection count × variant; `bare` is each group's baseline. */
export async function benchHttp(durationMs: number, connections: readonly number[]): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  for (const [framework, frameworkLabel] of Object.entries(FRAMEWORKS)) {
    for (const c of connections) {
      let baseline = 0
      for (const [variant, variantLabel] of Object.entries(VARIANTS)) {
        const requestsPerSecond = await measureVariant(framework, variant, c, durationMs)
        if (variant === 'bare') baseline = requestsPerSecond
        results.push({
          name: `${frameworkLabel}: ${variantLabel}, c=${c}`,
          opsPerSecond: requestsPerSecond,
          ratioToBaseline: variant === 'bare' ? null : requestsPerSecond / baseline,
        })
      }
    }
  }
  return results
}
