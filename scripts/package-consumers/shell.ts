/**
 * Child processes for `npm run check:package`: run a command to completion with its output captured
 * (and appended to a log file), or start a long-running one in the background. Every child gets its
 * own process group, so a timeout or the end of the run stops npm's and bash's children too.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync } from 'node:fs'

export interface RunOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  /** File the command line and its output are appended to. */
  log?: string
  timeoutMs?: number
}

export interface RunResult {
  /** Exit code, or null when a signal (e.g. the timeout) ended the process. */
  code: number | null
  stdout: string
  stderr: string
  ms: number
  timedOut: boolean
}

const live = new Set<ChildProcess>()

/** Stops a child and everything it started (its process group). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // Already gone.
  }
}

/** Stops every child still running: for an interrupted or failed run. */
export function killAll(): void {
  for (const child of live) killGroup(child, 'SIGKILL')
}

function spawnGroup(command: string, args: readonly string[], options: RunOptions): ChildProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  live.add(child)
  child.on('close', () => live.delete(child))
  return child
}

function logTo(file: string | undefined, text: string): void {
  if (file) appendFileSync(file, text)
}

/** Runs a command to completion; never rejects (a failed spawn is exit code 127). */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = performance.now()
  logTo(options.log, `\n$ ${[command, ...args].join(' ')}    (in ${options.cwd})\n`)
  return new Promise((resolve) => {
    const child = spawnGroup(command, args, options)
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk
      logTo(options.log, chunk.toString())
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk
      logTo(options.log, chunk.toString())
    })
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          killGroup(child, 'SIGKILL')
        }, options.timeoutMs)
      : undefined
    const finish = (code: number | null, extra = '') => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr: stderr + extra, ms: performance.now() - started, timedOut })
    }
    child.on('error', (error) => finish(127, String(error)))
    child.on('close', (code) => finish(code))
  })
}

export interface Background {
  /** Everything the process printed so far, stdout and stderr interleaved. */
  output(): string
  /** Whether the process has ended. */
  exited(): boolean
  /** Stops the process group: SIGTERM, then SIGKILL after two seconds. */
  stop(): Promise<void>
}

/** Starts a long-running command (a server) and keeps its output. */
export function startBackground(command: string, args: readonly string[], options: RunOptions): Background {
  logTo(options.log, `\n$ ${[command, ...args].join(' ')} &    (in ${options.cwd})\n`)
  const child = spawnGroup(command, args, options)
  let output = ''
  let ended = false
  const append = (chunk: Buffer) => {
    output += chunk
    logTo(options.log, chunk.toString())
  }
  child.stdout!.on('data', append)
  child.stderr!.on('data', append)
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()))
  child.on('close', () => (ended = true))
  child.on('error', (error) => {
    output += String(error)
    ended = true
  })
  return {
    output: () => output,
    exited: () => ended,
    async stop() {
      if (ended) return
      killGroup(child, 'SIGTERM')
      const escalate = setTimeout(() => killGroup(child, 'SIGKILL'), 2_000)
      await closed
      clearTimeout(escalate)
    },
  }
}

// Variables npm sets for `npm run` that would make a consumer project see this repository (its
// node_modules/.bin on PATH, its package.json): consumers must run as in a newcomer's fresh shell.
const KEPT_NPM_CONFIG = ['cache', 'userconfig', 'globalconfig', 'cafile', 'registry', 'proxy', 'https_proxy', 'noproxy', 'strict_ssl']

/** The environment of a newcomer's shell, with npm told to reuse its cache and stay quiet. */
export function consumerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    const lower = name.toLowerCase()
    if (lower.startsWith('npm_config_') && KEPT_NPM_CONFIG.includes(lower.slice('npm_config_'.length))) env[name] = value
    else if (!lower.startsWith('npm_') && name !== 'INIT_CWD' && name !== 'NODE') env[name] = value
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => !dir.includes('node_modules/.bin') && !dir.includes('node-gyp-bin'))
    .join(':')
  return {
    ...env,
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    NO_COLOR: '1',
  }
}

/** The last `lines` lines of a command's output, indented, for a failure report. */
export function tail(text: string, lines = 25): string {
  const all = text.trimEnd().split('\n')
  const shown = all.slice(-lines).map((line) => `      ${line}`)
  return (all.length > lines ? [`      … (${all.length - lines} earlier lines in the log)`, ...shown] : shown).join('\n')
}
