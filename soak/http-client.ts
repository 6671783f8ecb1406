/** The orchestrator's own HTTP calls to the app instances: admin calls and single verify requests. */
import { Agent, request } from 'node:http'

export interface Instance {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly agent: Agent
}

export function instanceAt(name: string, port: number): Instance {
  return { name, host: '127.0.0.1', port, agent: new Agent({ keepAlive: true, maxSockets: 16, scheduling: 'lifo' }) }
}

/** One GET /data; status 0 for a transport error. Times are wall-clock epoch ms, like the servers'. */
export function verifyRequest(instance: Instance, token: string): Promise<{ status: number; sent: number; received: number }> {
  return new Promise((resolve) => {
    const sent = Date.now()
    const done = (status: number) => resolve({ status, sent, received: Date.now() })
    const headers = token === '' ? {} : { 'x-api-key': token }
    const req = request({ host: instance.host, port: instance.port, path: '/data', headers, agent: instance.agent }, (res) => {
      res.resume()
      res.once('end', () => done(res.statusCode ?? 0))
      res.once('error', () => done(0))
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.once('error', () => done(0))
    req.end()
  })
}

/** POSTs JSON and parses the JSON answer; rejects on a transport error or after `timeoutMs`. */
export function postJson<T>(instance: Instance, path: string, body: unknown, timeoutMs = 30_000): Promise<T> {
  return requestJson(instance, 'POST', path, body, timeoutMs)
}

export function getJson<T>(instance: Instance, path: string, timeoutMs = 30_000): Promise<T> {
  return requestJson(instance, 'GET', path, undefined, timeoutMs)
}

function requestJson<T>(instance: Instance, method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {}
    if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
    const req = request({ host: instance.host, port: instance.port, path, method, headers, agent: instance.agent }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.once('error', reject)
      res.once('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`${method} ${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
          resolve(JSON.parse(text) as T)
        } catch (error) {
          reject(error)
        }
      })
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)))
    req.once('error', reject)
    req.end(payload)
  })
}
