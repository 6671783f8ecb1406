/**
 * Runs the example servers as the README does (tsx, in a process of their own, PORT=0) and talks to
 * them over real HTTP: start one and read its banner, run one until it exits, send raw requests.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { Agent, request, type IncomingHttpHeaders } from 'node:http'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const startTimeoutMs = 30_000

/** The two example servers, by framework. */
export const exampleServers = [
  ['Express', 'examples/express-server.ts'],
  ['Koa', 'examples/koa-server.ts'],
] as const

/** A started example server. */
export interface RunningExample {
  readonly baseUrl: string
  /** Everything it printed to stdout and stderr up to the end of its banner. */
  readonly output: string
  /** The `curl` lines of its banner. */
  readonly curlLines: string[]
  /** Sends SIGTERM and waits for the process to end. */
  stop(): Promise<void>
}

/** How a run that was expected to refuse to start ended. */
export interface ExampleExit {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** True when it printed its banner instead (it was then stopped). */
  readonly started: boolean
}

/** The server's environment: ours minus the variables the examples read, then `overrides`. */
function exampleEnvironment(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' }
  delete env.ADMIN_TOKEN
  delete env.KEY_PEPPER
  return { ...env, ...overrides }
}

function spawnExample(file: string, overrides: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [`${root}/node_modules/tsx/dist/cli.mjs`, file], {
    cwd: root,
    env: exampleEnvironment(overrides),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  return exited
}

// The banner ends with the revoke line.
const bannerComplete = (stdout: string): boolean => stdout.includes('/revoke')

/** Starts an example server and resolves once its banner is out. */
export async function startExample(file: string, env: Record<string, string> = {}): Promise<RunningExample> {
  const child = spawnExample(file, env)
  let output = ''
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`example did not start:\n${output}`)), startTimeoutMs)
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (bannerComplete(output)) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.on('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`example exited with ${code}:\n${output}`))
      })
    })
  } catch (error) {
    await stopProcess(child)
    throw error
  }
  const baseUrl = /listening on (http:\/\/\S+)/.exec(output)?.[1]
  if (!baseUrl) throw new Error(`no address in the banner:\n${output}`)
  return {
    baseUrl,
    output,
    curlLines: output.split('\n').filter((line) => line.startsWith('curl ')),
    stop: () => stopProcess(child),
  }
}

/** Runs an example that should refuse to start until it exits; one that starts anyway is stopped. */
export async function runUntilExit(file: string, env: Record<string, string>): Promise<ExampleExit> {
  const child = spawnExample(file, env)
  let stdout = ''
  let stderr = ''
  let started = false
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    if (!started && bannerComplete(stdout)) {
      started = true
      child.kill('SIGTERM')
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), startTimeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)))
  clearTimeout(timer)
  return { code, stdout, stderr, started }
}

/** Runs a printed curl line in a shell, as a reader would, and returns status and parsed body. */
export function runCurl(line: string, env: Record<string, string> = {}): { status: number; body: Record<string, unknown> } {
  const output = execFileSync('bash', ['-c', `${line} -w '\\n%{http_code}'`], { encoding: 'utf8', env: { ...process.env, ...env } })
  const split = output.lastIndexOf('\n')
  return { status: Number(output.slice(split + 1)), body: JSON.parse(output.slice(0, split) || '{}') }
}

/** What a raw request got back. */
export interface RawResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  /** The body parsed as JSON (a body that is not JSON fails the request). */
  readonly body: Record<string, unknown>
}

/** A raw request: the path goes out byte for byte; a body given as chunks goes out chunked. */
export interface RawRequest {
  readonly method?: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string | { readonly chunks: readonly string[] }
}

/** Sends one request over `agent` (keep-alive, like a browser or a client library) with node:http. */
export function sendRequest(agent: Agent, baseUrl: string, { method = 'GET', path, headers = {}, body }: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const outgoing = request({ agent, host: hostname, port, method, path, headers }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('error', reject)
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        try {
          resolve({ status: response.statusCode!, headers: response.headers, text, body: text ? JSON.parse(text) : {} })
        } catch {
          reject(new Error(`${response.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`))
        }
      })
    })
    outgoing.on('error', reject)
    if (typeof body === 'string') {
      outgoing.setHeader('Content-Length', Buffer.byteLength(body))
      outgoing.end(body)
    } else {
      for (const chunk of body?.chunks ?? []) outgoing.write(chunk)
      outgoing.end()
    }
  })
}
