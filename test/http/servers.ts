import express from 'express'
import Koa from 'koa'
import Router from '@koa/router'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import type { KeyManager, ApiKeyAuthOptions } from '../../src/index.js'
import { apiKeyAuth as expressAuth } from '../../src/http/express.js'
import { apiKeyAuth as koaAuth } from '../../src/http/koa.js'
import { recordHttpResponse } from '../support/canary/index.js'

/** A real listening server with the routes every HTTP test uses, and what reached the app. */
export interface TestServer {
  readonly port: number
  /** Requests that got past the middleware. */
  readonly passed: string[]
  /** Errors that reached the framework's error handling. */
  readonly errors: unknown[]
  close(): Promise<void>
}

export type Framework = 'express' | 'koa'

async function listen(server: Server): Promise<number> {
  if (!server.listening) await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Routes: GET /read needs data:read, POST /write needs data:write, GET /open is public. */
export async function startServer(framework: Framework, keys: KeyManager, options: ApiKeyAuthOptions = {}): Promise<TestServer> {
  const passed: string[] = []
  const errors: unknown[] = []
  let server: Server
  if (framework === 'express') {
    const app = express()
    app.get('/open', (_req, res) => void res.json({ open: true }))
    app.get('/read', expressAuth(keys, { scopes: ['data:read'], ...options }), (req, res) => {
      passed.push(req.path)
      res.json({ owner: req.apiKey.ownerId, id: req.apiKey.id })
    })
    app.post('/write', expressAuth(keys, { scopes: ['data:write'], ...options }), (req, res) => {
      passed.push(req.path)
      res.json({ owner: req.apiKey.ownerId })
    })
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error)
      res.status(500).end()
    })
    server = app.listen(0, '127.0.0.1')
  } else {
    const app = new Koa()
    const router = new Router()
    router.get('/open', (ctx) => {
      ctx.body = { open: true }
    })
    router.get('/read', koaAuth(keys, { scopes: ['data:read'], ...options }), (ctx) => {
      passed.push(ctx.path)
      ctx.body = { owner: ctx.state.apiKey.ownerId, id: ctx.state.apiKey.id }
    })
    router.post('/write', koaAuth(keys, { scopes: ['data:write'], ...options }), (ctx) => {
      passed.push(ctx.path)
      ctx.body = { owner: ctx.state.apiKey.ownerId }
    })
    app.on('error', (error) => void errors.push(error))
    app.use(router.routes())
    server = app.listen(0, '127.0.0.1')
  }
  return served(server, passed, errors)
}

/** One guarded route of {@link startRoutes}. */
export interface GuardedRoute {
  readonly method: 'GET' | 'POST'
  readonly path: string
  /** `any`: one options object serves both frameworks (its functions take whatever each passes). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly options: ApiKeyAuthOptions<any>
}

/**
 * A real listening server with the given guarded routes; each answers `{ id, path }` with the verified
 * key. The same middleware instance guards every route that passes the same options object, as an app
 * would mount one guard on several routes.
 */
export async function startRoutes(framework: Framework, keys: KeyManager, routes: readonly GuardedRoute[]): Promise<TestServer> {
  const passed: string[] = []
  const errors: unknown[] = []
  let server: Server
  if (framework === 'express') {
    const app = express()
    const guards = new Map<object, ReturnType<typeof expressAuth>>()
    for (const route of routes) {
      const guard = guards.get(route.options) ?? expressAuth(keys, route.options)
      guards.set(route.options, guard)
      const handler = (req: express.Request, res: express.Response) => {
        passed.push(req.path)
        res.json({ id: req.apiKey.id, path: req.path, scopes: req.apiKeyScopes })
      }
      if (route.method === 'GET') app.get(route.path, guard, handler)
      else app.post(route.path, guard, handler)
    }
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error)
      res.status(500).end()
    })
    server = app.listen(0, '127.0.0.1')
  } else {
    const app = new Koa()
    const router = new Router()
    const guards = new Map<object, ReturnType<typeof koaAuth>>()
    for (const route of routes) {
      const guard = guards.get(route.options) ?? koaAuth(keys, route.options)
      guards.set(route.options, guard)
      const handler = (ctx: Koa.Context) => {
        passed.push(ctx.path)
        ctx.body = { id: ctx.state.apiKey.id, path: ctx.path, scopes: ctx.state.apiKeyScopes }
      }
      if (route.method === 'GET') router.get(route.path, guard, handler)
      else router.post(route.path, guard, handler)
    }
    app.on('error', (error) => void errors.push(error))
    app.use(router.routes())
    server = app.listen(0, '127.0.0.1')
  }
  return served(server, passed, errors)
}

/** A parsed raw HTTP response; `raw` is the bytes as received. */
export interface RawResponse {
  readonly raw: string
  readonly status: number
  /** Header lines in order, names lower-cased. */
  readonly headers: readonly [string, string][]
  readonly body: string
  header(name: string): string | undefined
}

/**
 * Sends one request as raw bytes over a fresh TCP connection (so repeated and odd header lines reach
 * the server exactly as written) and returns the raw response.
 */
export async function rawRequest(port: number, headerLines: readonly string[], target = '/read', method = 'GET', body = ''): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const head = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headerLines]
  if (body) head.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Content-Type: application/json')
  // Write without half-closing: node drops a connection whose client ended it before the answer.
  socket.write(`${head.join('\r\n')}\r\n\r\n${body}`)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  await once(socket, 'close')
  const raw = Buffer.concat(chunks).toString('latin1')
  // For the leak canary: the response as the client received it (the request's target is left out).
  recordHttpResponse(raw, `client ${method} ${target.split('?')[0]}`)
  const split = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = raw.slice(0, split).split('\r\n')
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  })
  return {
    raw,
    status: Number(statusLine.split(' ')[1]),
    headers,
    body: raw.slice(split + 4),
    header: (name) => headers.find(([key]) => key === name.toLowerCase())?.[1],
  }
}

/** The raw response without its Date line, which changes every second. */
export function withoutDate(response: RawResponse): string {
  return response.raw.replace(/^Date: .*\r\n/im, '')
}

/** A started server's handle: its port, what its handlers saw, and a close that cuts open connections. */
async function served(server: Server, passed: string[], errors: unknown[]) {
  const port = await listen(server)
  return {
    port,
    passed,
    errors,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}
