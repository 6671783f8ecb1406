import express from 'express'
import Fastify, { type FastifyRequest } from 'fastify'
import { Hono, type Context } from 'hono'
import Koa from 'koa'
import Router from '@koa/router'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { MemoryStore } from '../../adapters/memory/index.js'
import type { KeyManager, ApiKeyAuthOptions } from '../../src/index.js'
import { apiKeyAuth as expressAuth } from '../../src/http/express.js'
import { apiKeyAuth as koaAuth } from '../../src/http/koa.js'
import { apiKeyAuth as fastifyAuth, apiKeyPlugin } from '../../src/http/fastify.js'
import { apiKeyAuth as honoAuth } from '../../src/http/hono.js'
import { withApiKey } from '../../src/http/fetch.js'
import { recordHttpResponse } from '../support/canary/index.js'
import { serveFetch, type FetchApp } from '../support/fetch-server.js'

/** A real listening server with the routes every HTTP test uses, and what reached the app. */
export interface TestServer {
  readonly port: number
  /** Requests that got past the middleware. */
  readonly passed: string[]
  /** Errors that reached the framework's error handling. */
  readonly errors: unknown[]
  close(): Promise<void>
}

/** Every adapter the shared HTTP suite runs against. */
export const FRAMEWORKS = ['express', 'koa', 'fastify', 'hono', 'fetch'] as const
export type Framework = (typeof FRAMEWORKS)[number]

/**
 * The adapters that read a Fetch `Headers` object, which joins repeated lines with `, `. Two
 * `Authorization` lines are still told apart (split where a second scheme starts): ambiguous, as with
 * node; but so is one line listing two credentials (node's shape: malformed). Two `X-API-Key` lines
 * arrive as one malformed value. Every one of them gets the same 400, byte for byte.
 */
export const JOINS_REPEATED_HEADERS: ReadonlySet<Framework> = new Set(['hono', 'fetch'])

/** Each framework's way of building a guard from options, for tests of what construction refuses. */
export const GUARD_FACTORIES: Record<Framework, (keys: KeyManager, options: ApiKeyAuthOptions<never>) => unknown> = {
  express: expressAuth,
  koa: koaAuth,
  fastify: fastifyAuth,
  hono: honoAuth,
  fetch: (keys, options) => withApiKey(keys, options, () => new Response()),
}

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
  } else if (framework === 'koa') {
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
  } else if (framework === 'fastify') {
    // The plugin form, one encapsulated scope per scope requirement: each guards its own routes only.
    const app = fastifyApp(errors)
    app.get('/open', async () => ({ open: true }))
    for (const [method, path, scopes] of [['GET', '/read', ['data:read']], ['POST', '/write', ['data:write']]] as const) {
      void app.register(async (scope) => {
        await scope.register(apiKeyPlugin(keys, fastifyOptions({ scopes: [...scopes], ...options }, path)))
        scope.route({ method, url: path, handler: async (request) => {
          passed.push(path)
          return method === 'GET' ? { owner: request.apiKey.ownerId, id: request.apiKey.id } : { owner: request.apiKey.ownerId }
        } })
      })
    }
    server = await listenFastify(app)
  } else if (framework === 'hono') {
    const app = honoApp(errors)
    app.get('/open', (c) => c.json({ open: true }))
    app.get('/read', honoAuth(keys, honoOptions({ scopes: ['data:read'], ...options })), (c) => {
      passed.push(c.req.path)
      return c.json({ owner: c.get('apiKey').ownerId, id: c.get('apiKey').id })
    })
    app.post('/write', honoAuth(keys, honoOptions({ scopes: ['data:write'], ...options })), (c) => {
      passed.push(c.req.path)
      return c.json({ owner: c.get('apiKey').ownerId })
    })
    server = serveFetch(app.fetch)
  } else {
    server = serveFetch(
      fetchRouter(errors, [
        { method: 'GET', path: '/open', handler: () => Response.json({ open: true }) },
        { method: 'GET', path: '/read', handler: withApiKey(keys, fetchOptions({ scopes: ['data:read'], ...options }, '/read'), (request, { key }) => {
          passed.push(new URL(request.url).pathname)
          return Response.json({ owner: key.ownerId, id: key.id })
        }) },
        { method: 'POST', path: '/write', handler: withApiKey(keys, fetchOptions({ scopes: ['data:write'], ...options }, '/write'), (request, { key }) => {
          passed.push(new URL(request.url).pathname)
          return Response.json({ owner: key.ownerId })
        }) },
      ]),
    )
  }
  return served(server, passed, errors)
}

/** One guarded route of {@link startRoutes}. */
export interface GuardedRoute {
  readonly method: 'GET' | 'POST'
  readonly path: string
  /** `any`: one options object serves every framework (its functions take whatever each passes; see {@link RequestView}). */
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
  } else if (framework === 'koa') {
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
  } else if (framework === 'fastify') {
    // The per-route form, in preHandler as the docs show it (after parsing: cost functions may read the body).
    const app = fastifyApp(errors)
    const guards = new Map<object, ReturnType<typeof fastifyAuth>>()
    for (const route of routes) {
      const guard = guards.get(route.options) ?? fastifyAuth(keys, fastifyOptions(route.options, route.path))
      guards.set(route.options, guard)
      app.route({ method: route.method, url: route.path, preHandler: guard, handler: async (request) => {
        const path = request.url.split('?')[0]!
        passed.push(path)
        return { id: request.apiKey.id, path, scopes: request.apiKeyScopes }
      } })
    }
    server = await listenFastify(app)
  } else if (framework === 'hono') {
    const app = honoApp(errors)
    const guards = new Map<object, ReturnType<typeof honoAuth>>()
    for (const route of routes) {
      const guard = guards.get(route.options) ?? honoAuth(keys, honoOptions(route.options))
      guards.set(route.options, guard)
      app.on(route.method, route.path, guard, (c) => {
        passed.push(c.req.path)
        return c.json({ id: c.get('apiKey').id, path: c.req.path, scopes: c.get('apiKeyScopes') })
      })
    }
    server = serveFetch(app.fetch)
  } else {
    // withApiKey wraps one handler: routes sharing options each get a guard of their own.
    server = serveFetch(
      fetchRouter(
        errors,
        routes.map((route) => ({
          method: route.method,
          path: route.path,
          handler: withApiKey(keys, fetchOptions(route.options, route.path), (request, { key, scopes }) => {
            const path = new URL(request.url).pathname
            passed.push(path)
            return Response.json({ id: key.id, path, scopes })
          }),
        })),
      ),
    )
  }
  return served(server, passed, errors)
}

// ---------------------------------------------------------------------------------------------------
// Fastify, Hono and Fetch servers. The shared tests write their `cost`, `scopes` and `check` functions
// against a node-like request (`method`, `path`, `headers` by lower-case name, `params`), which Express
// and Koa hand over as they are; for the other adapters each function is wrapped to see that view of
// the adapter's own argument (a FastifyRequest, a Hono Context, a Fetch Request). test/http/adapters.test.ts
// checks that each adapter passes its own argument unwrapped.

/** What the shared tests' option functions read from a request. */
export interface RequestView {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly params: Readonly<Record<string, string>>
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyOptions = ApiKeyAuthOptions<any>

/** The options with each request function seeing `view(request)` instead of the adapter's argument. */
function viewing<R>(options: AnyOptions, view: (request: R) => RequestView): ApiKeyAuthOptions<R> {
  const wrapped: AnyOptions = { ...options }
  const { cost, scopes, check } = options
  if (typeof cost === 'function') wrapped.cost = (request: R) => cost(view(request))
  if (typeof scopes === 'function') wrapped.scopes = (request: R) => scopes(view(request))
  if (typeof check === 'function') wrapped.check = (key, request: R) => check(key, view(request))
  return wrapped
}

const headersOf = (headers: Headers): Record<string, string> => Object.fromEntries(headers)

function fastifyOptions(options: AnyOptions, _path: string): ApiKeyAuthOptions<FastifyRequest> {
  return viewing<FastifyRequest>(options, (request) => ({
    method: request.method,
    path: request.url.split('?')[0]!,
    headers: request.headers as Record<string, string>,
    params: request.params as Record<string, string>,
  }))
}

function honoOptions(options: AnyOptions): ApiKeyAuthOptions<Context> {
  return viewing<Context>(options, (c) => ({ method: c.req.method, path: c.req.path, headers: headersOf(c.req.raw.headers), params: c.req.param() }))
}

function fetchOptions(options: AnyOptions, pattern: string): ApiKeyAuthOptions<Request> {
  return viewing<Request>(options, (request) => {
    const path = new URL(request.url).pathname
    return { method: request.method, path, headers: headersOf(request.headers), params: matchPath(pattern, path) ?? {} }
  })
}

/** A Fastify app whose error handler records what reached it, with an async onSend hook as CORS or helmet add. */
function fastifyApp(errors: unknown[]) {
  const app = Fastify()
  // A guard that answers must `return reply`, or Fastify runs the handler while this hook is pending.
  app.addHook('onSend', async (_request, _reply, payload) => payload)
  app.setErrorHandler((error, _request, reply) => {
    errors.push(error)
    void reply.code(500).send()
  })
  return app
}

async function listenFastify(app: ReturnType<typeof fastifyApp>): Promise<Server> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app.server
}

function honoApp(errors: unknown[]) {
  const app = new Hono()
  app.onError((error, c) => {
    errors.push(error)
    return c.body(null, 500)
  })
  return app
}

/** `/own/:tenant` against a path: the parameters, or `null` when it does not match. */
function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/')
  const got = path.split('/')
  if (want.length !== got.length) return null
  const params: Record<string, string> = {}
  for (const [index, part] of want.entries()) {
    if (part.startsWith(':')) params[part.slice(1)] = decodeURIComponent(got[index]!)
    else if (part !== got[index]) return null
  }
  return params
}

/** The smallest router a Fetch handler needs: method and path, 404 otherwise; a throw is recorded and answered 500. */
function fetchRouter(errors: unknown[], routes: readonly { method: string; path: string; handler: (request: Request) => Response | Promise<Response> }[]): FetchApp {
  return async (request) => {
    const path = new URL(request.url).pathname
    const route = routes.find((candidate) => candidate.method === request.method && matchPath(candidate.path, path) !== null)
    if (route === undefined) return new Response(null, { status: 404 })
    try {
      return await route.handler(request)
    } catch (error) {
      errors.push(error)
      return new Response(null, { status: 500 })
    }
  }
}

/**
 * A memory store whose reads a test can break after creating keys, by replacing `get`: without the
 * synchronous read path (`getSync`, which the KeyManager binds once, when it is built), every read of
 * a key goes through `get`.
 */
export function breakableStore(): MemoryStore {
  const store = new MemoryStore()
  Object.defineProperty(store, 'getSync', { value: undefined })
  return store
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
