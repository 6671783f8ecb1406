/**
 * The test process's side of worker.ts: spawns the worker on a store location and drives its
 * protocol. The worker inherits standard error (where it never writes a secret) and answers on stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Batch, ManagerConfig, Op } from './harness.js'
import type { StoreLocation } from './shared-store.js'

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url))
/** The project root: tsx and tsconfig resolve from there. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ANSWER_TIMEOUT_MS = 20_000

type Answer = { type: 'ready' } | { type: 'armed' } | { type: 'done'; batch: Batch }

export interface WorkerHandle {
  /** Sends the worker its half of the next race, on its store for `backend`, and waits until it holds it. */
  arm(backend: StoreLocation['backend'], ops: readonly Op[]): Promise<void>
  /** Tells the worker to start at `at` (epoch ms); resolves with its batch when it is done. */
  go(at: number): Promise<Batch>
  /** Asks the worker to close its client and exit; resolves when it has. */
  quit(): Promise<void>
}

/**
 * Starts a worker on `locations` (one per backend) and waits until its clients are connected. Its
 * managers take `config` (the same object the test built its own managers from), if one is given.
 */
export async function startWorker(locations: readonly StoreLocation[], config?: ManagerConfig): Promise<WorkerHandle> {
  const args = [JSON.stringify(locations), ...(config === undefined ? [] : [JSON.stringify(config)])]
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  }) as unknown as ChildProcessWithoutNullStreams
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve(code))
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()

  async function next<T extends Answer['type']>(type: T): Promise<Extract<Answer, { type: T }>> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the worker sent no '${type}' within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS)
    })
    const died = exited.then((code) => {
      throw new Error(`the worker exited (code ${code}) before sending '${type}'`)
    })
    try {
      const line = await Promise.race([lines.next(), timeout, died])
      if (line.done) throw new Error(`the worker closed its output before sending '${type}'`)
      const answer = JSON.parse(line.value) as Answer
      if (answer.type !== type) throw new Error(`the worker sent '${answer.type}' where '${type}' was expected`)
      return answer as Extract<Answer, { type: T }>
    } finally {
      clearTimeout(timer)
    }
  }

  const write = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`)
  try {
    await next('ready')
  } catch (error) {
    child.kill()
    throw error
  }
  return {
    arm: async (backend, ops) => {
      write({ type: 'arm', backend, ops })
      await next('armed')
    },
    go: async (at) => {
      write({ type: 'go', at })
      return (await next('done')).batch
    },
    quit: async () => {
      if (child.exitCode === null) {
        write({ type: 'quit' })
        child.stdin.end()
      }
      const code = await exited
      if (code !== 0) throw new Error(`the worker exited with code ${code}`)
    },
  }
}
