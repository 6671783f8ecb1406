/**
 * The soak's verify traffic, in a process of its own (forked by soak/run.ts with an IPC channel), so
 * the load generator never shares an event loop with the app servers or with the orchestrator's timing.
 *
 * It only executes: the orchestrator sends tokens once (`tokens`), then jobs (token index and app
 * instance) and keeps the queue topped up; this process runs them with `concurrency` keep-alive
 * connections per instance at no more than `rate` requests per second in total, and sends back, per
 * request, the status (0 for a transport error) and the wall-clock times it was sent and answered.
 */
import { Agent, request } from 'node:http'

export type LoadMessage =
  | { type: 'init'; urls: readonly string[]; concurrency: number; rate: number }
  | { type: 'tokens'; entries: readonly (readonly [number, string])[] }
  | { type: 'jobs'; tokens: Int32Array; instances: Uint8Array }
  | { type: 'stop' }

export type LoadReply =
  | { type: 'results'; tokens: Int32Array; instances: Uint8Array; statuses: Uint16Array; sent: Float64Array; received: Float64Array }
  | { type: 'drained' }

const REQUEST_TIMEOUT_MS = 10_000
const FLUSH_INTERVAL_MS = 100

const tokens: string[] = []
const jobTokens: number[] = []
const jobInstances: number[] = []
let jobHead = 0
let targets: { host: string; port: number; agent: Agent }[] = []
let rate = 0
let nextSlot = 0
let stopping = false
let wakeLanes: (() => void) | undefined

const results = { tokens: [] as number[], instances: [] as number[], statuses: [] as number[], sent: [] as number[], received: [] as number[] }

function send(message: LoadReply): void {
  process.send!(message)
}

function flush(): void {
  if (results.tokens.length === 0) return
  send({
    type: 'results',
    tokens: Int32Array.from(results.tokens),
    instances: Uint8Array.from(results.instances),
    statuses: Uint16Array.from(results.statuses),
    sent: Float64Array.from(results.sent),
    received: Float64Array.from(results.received),
  })
  for (const column of Object.values(results)) column.length = 0
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for this request's slot under the rate limit (one slot every 1000/rate ms, across all lanes). */
async function pace(): Promise<void> {
  if (rate <= 0) return
  const now = Date.now()
  const slot = Math.max(nextSlot, now)
  nextSlot = slot + 1000 / rate
  if (slot > now) await sleep(slot - now)
}

/** One GET /data with the token in X-API-Key, or (one request in ten) as a Bearer token; `''` sends no credentials. */
function verifyOnce(token: string, instance: number): Promise<{ status: number; sent: number; received: number }> {
  const target = targets[instance]!
  const headers: Record<string, string> = {}
  if (token !== '') {
    if (Math.random() < 0.1) headers.authorization = `Bearer ${token}`
    else headers['x-api-key'] = token
  }
  return new Promise((resolve) => {
    const sent = Date.now()
    const done = (status: number) => resolve({ status, sent, received: Date.now() })
    const req = request({ host: target.host, port: target.port, path: '/data', method: 'GET', headers, agent: target.agent }, (res) => {
      res.resume()
      res.once('end', () => done(res.statusCode ?? 0))
      res.once('error', () => done(0))
    })
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')))
    req.once('error', () => done(0))
    req.end()
  })
}

async function lane(): Promise<void> {
  while (!stopping) {
    if (jobHead >= jobTokens.length) {
      await new Promise<void>((resolve) => {
        const previous = wakeLanes
        wakeLanes = () => {
          previous?.()
          resolve()
        }
      })
      continue
    }
    const token = jobTokens[jobHead]!
    const instance = jobInstances[jobHead]!
    jobHead++
    if (jobHead > 10_000 && jobHead * 2 > jobTokens.length) {
      jobTokens.splice(0, jobHead)
      jobInstances.splice(0, jobHead)
      jobHead = 0
    }
    await pace()
    const { status, sent, received } = await verifyOnce(tokens[token] ?? '', instance)
    results.tokens.push(token)
    results.instances.push(instance)
    results.statuses.push(status)
    results.sent.push(sent)
    results.received.push(received)
  }
}

function wake(): void {
  const wakeAll = wakeLanes
  wakeLanes = undefined
  wakeAll?.()
}

let lanes: Promise<void>[] = []
const flushTimer = setInterval(flush, FLUSH_INTERVAL_MS)

process.on('message', (message: LoadMessage) => {
  switch (message.type) {
    case 'init': {
      targets = message.urls.map((url) => {
        const { hostname, port } = new URL(url)
        return { host: hostname, port: Number(port), agent: new Agent({ keepAlive: true, maxSockets: message.concurrency, scheduling: 'lifo' }) }
      })
      rate = message.rate
      lanes = Array.from({ length: message.concurrency }, () => lane())
      break
    }
    case 'tokens':
      for (const [index, token] of message.entries) tokens[index] = token
      break
    case 'jobs':
      for (let i = 0; i < message.tokens.length; i++) {
        jobTokens.push(message.tokens[i]!)
        jobInstances.push(message.instances[i]!)
      }
      wake()
      break
    case 'stop':
      stopping = true
      wake()
      void Promise.all(lanes).then(() => {
        clearInterval(flushTimer)
        flush()
        for (const target of targets) target.agent.destroy()
        send({ type: 'drained' })
      })
      break
  }
})
process.on('disconnect', () => process.exit(0))
