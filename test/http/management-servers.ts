/**
 * The management API in its five forms, each over a real socket on port 0 with the same
 * configuration: Express (mounted with `express.json()`), Koa (`basePath`), the Fetch handler
 * behind a plain node server that turns each IncomingMessage into Node's own `Request` and the
 * `Response` back, Fastify (the plugin registered with a `prefix`) and Hono (`basePath`, served by
 * `@hono/node-server`). The principal comes from test headers (`x-user`, `x-tenant`, `x-role`), standing
 * in for the host's session.
 */
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { MemoryStore } from '../../adapters/memory/index.js'
import { createManagementHandler, KeyManager, type KeyStore, type ManagementHandler, type ManagementRouterOptions, type Principal } from '../../src/index.js'
import { keyManagementRouter as expressRouter } from '../../src/http/express.js'
import { keyManagementRouter as koaRouter } from '../../src/http/koa.js'
import { keyManagementRouter as fastifyRouter } from '../../src/http/fastify.js'
import { keyManagementRouter as honoRouter } from '../../src/http/hono.js'
import { serveFetch as serveFetchApp } from '../support/fetch-server.js'
import { manualClock, PEPPER } from '../helpers.js'

export const MANAGEMENT_FORMS = ['express', 'koa', 'fetch', 'fastify', 'hono'] as const
export type ManagementForm = (typeof MANAGEMENT_FORMS)[number]

/** Where every form is mounted. */
export const BASE_PATH = '/api/keys'
/** The one origin allowed to send state-changing browser requests. */
export const ALLOWED_ORIGIN = 'https://app.example.com'

export const ROLES = { admin: ['*'], member: ['data:read', 'data:write'], readonly: ['data:read'] }

/** The people of the tests: two tenants, admins and members. */
export const PEOPLE = {
  ana: { id: 'ana', tenantId: 'acme', role: 'admin' },
  ben: { id: 'ben', tenantId: 'acme', role: 'member' },
  cid: { id: 'cid', tenantId: 'acme', role: 'member' },
  rae: { id: 'rae', tenantId: 'acme', role: 'readonly' },
  ola: { id: 'ola', tenantId: 'globex', role: 'admin' },
  max: { id: 'max', tenantId: 'globex', role: 'member' },
} as const satisfies Record<string, Principal>

export type Person = keyof typeof PEOPLE

/** The headers that make `authorize` return this principal (the stand-in for a session cookie). */
export function sessionHeaders(person: Person): Record<string, string> {
  const { id, tenantId, role } = PEOPLE[person]
  return { 'x-user': id, 'x-tenant': tenantId, 'x-role': role }
}

/** What a host's `authorize` throws when `x-authorize: throw` is sent (its session store is down, say). */
export class HostSessionError extends Error {
  constructor() {
    super('the host session store is unreachable')
    this.name = 'HostSessionError'
  }
}

/**
 * The principal from the test headers: `null` without `x-user`; `x-authorize: throw` makes it throw a
 * {@link HostSessionError}, `x-authorize: malformed` return something that is not a principal.
 */
export function principalFromHeaders(header: (name: string) => string | undefined): Principal | null {
  const mode = header('x-authorize')
  if (mode === 'throw') throw new HostSessionError()
  if (mode === 'malformed') return { id: '', tenantId: 'acme', role: '' }
  const id = header('x-user')
  if (id === undefined || id === '') return null
  return { id, tenantId: header('x-tenant') ?? null, role: header('x-role') ?? 'member' }
}

function nodeHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/** A KeyManager as every management test uses it: a clock the test moves, a pepper, quotas and a credits policy. */
export function managementKeys(store: KeyStore = new MemoryStore()) {
  const time = manualClock()
  const keys = new KeyManager({
    store,
    prefix: 'acme',
    environments: ['live', 'test'],
    roles: ROLES,
    pepper: PEPPER,
    clock: time.clock,
    maxKeysPerOwner: (owner) => (owner['role'] === 'admin' ? Infinity : 2),
    limits: { policies: { metered: { credits: { initial: 100 } }, capped: { rate: [{ name: 'burst', limit: 10, window: '1s' }] } } },
  })
  return { keys, time }
}

/** A listening management server of one form. */
export interface ManagementServer {
  readonly form: ManagementForm
  readonly port: number
  /** `http://127.0.0.1:<port>/api/keys`. */
  readonly baseUrl: string
  /** Errors that reached the framework's (or, for Fetch, the node wrapper's) error handling. */
  readonly errors: unknown[]
  /** The Fetch form's handler itself, to call with a `new Request(...)` (Fetch form only). */
  readonly handler: ManagementHandler | null
  close(): Promise<void>
}

/** The router options the forms share; `authorize` is each form's own reading of the test headers. */
export type SharedRouterOptions = Omit<ManagementRouterOptions<unknown>, 'authorize' | 'basePath'>

/** The options of the main configuration: cookie-style login, so cross-site requests are refused. */
export const DEFAULT_ROUTER_OPTIONS: SharedRouterOptions = { allowedOrigins: [ALLOWED_ORIGIN], types: ['ci', 'deploy'] }

/** The answer of the host's own error handler (never the router's). */
const HOST_ERROR_BODY = 'host error handler'

/** Starts the management API of `keys` in one form on 127.0.0.1, port 0. */
export async function startManagementServer(form: ManagementForm, keys: KeyManager, options: SharedRouterOptions = DEFAULT_ROUTER_OPTIONS): Promise<ManagementServer> {
  const errors: unknown[] = []
  let server: Server
  let handler: ManagementHandler | null = null
  if (form === 'express') {
    const app = express()
    app.use(BASE_PATH, express.json(), expressRouter(keys, { ...options, authorize: (req) => principalFromHeaders((name) => nodeHeader(req, name)) }))
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error)
      res.status(500).type('text/plain').send(HOST_ERROR_BODY)
    })
    server = app.listen(0, '127.0.0.1')
  } else if (form === 'koa') {
    const app = new Koa()
    app.silent = true
    app.on('error', (error: unknown) => void errors.push(error))
    app.use(koaRouter(keys, { ...options, basePath: BASE_PATH, authorize: (ctx) => principalFromHeaders((name) => nodeHeader(ctx.req, name)) }))
    server = app.listen(0, '127.0.0.1')
  } else if (form === 'fastify') {
    const app = Fastify()
    app.setErrorHandler((error, _request, reply) => {
      errors.push(error)
      void reply.code(500).type('text/plain').send(HOST_ERROR_BODY)
    })
    await app.register(fastifyRouter(keys, { ...options, authorize: (request) => principalFromHeaders((name) => nodeHeader(request.raw, name)) }), { prefix: BASE_PATH })
    await app.listen({ port: 0, host: '127.0.0.1' })
    server = app.server
  } else if (form === 'hono') {
    const app = new Hono()
    app.onError((error, c) => {
      errors.push(error)
      return c.text(HOST_ERROR_BODY, 500)
    })
    app.use(honoRouter(keys, { ...options, basePath: BASE_PATH, authorize: (c) => principalFromHeaders((name) => c.req.header(name)) }))
    server = serveFetchApp(app.fetch)
  } else {
    const fetchHandler = createManagementHandler(keys, { ...options, basePath: BASE_PATH, authorize: (request) => principalFromHeaders((name) => request.headers.get(name) ?? undefined) })
    handler = fetchHandler
    server = createServer((req, res) => {
      serveFetch(fetchHandler, req, res).catch((error: unknown) => {
        errors.push(error)
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' })
        res.end(HOST_ERROR_BODY)
      })
    })
    server.listen(0, '127.0.0.1')
  }
  if (!server.listening) await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    form,
    port,
    baseUrl: `http://127.0.0.1:${port}${BASE_PATH}`,
    errors,
    handler,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}

/** IncomingMessage -> Node's global `Request` -> the handler -> `Response` -> ServerResponse. */
async function serveFetch(handler: ManagementHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = new Headers()
  for (let index = 0; index < req.rawHeaders.length; index += 2) headers.append(req.rawHeaders[index]!, req.rawHeaders[index + 1]!)
  const method = req.method ?? 'GET'
  const withBody = method !== 'GET' && method !== 'HEAD'
  const init: RequestInit & { duplex?: 'half' } = { method, headers }
  if (withBody) {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>
    init.duplex = 'half'
  }
  const request = new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`, init)
  const response = await handler(request)
  const outgoing: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    outgoing[name] = value
  })
  const body = Buffer.from(await response.arrayBuffer())
  if (body.length > 0) outgoing['content-length'] = String(body.length)
  res.writeHead(response.status, outgoing)
  res.end(body.length > 0 ? body : undefined)
}
