/**
 * One server for the HTTP benchmark (bench/http.ts), in a process of its own so the load generator
 * never shares its event loop: `node --import tsx bench/http-server.ts <express|koa|fastify|hono|fetch> <bare|header-check|keywarden>`.
 * Hono and the Fetch adapter listen through `@hono/node-server` (with its defaults), as node users serve them.
 *
 * GET /hello answers the same tiny JSON body in every variant; only what runs before it differs:
 * - `bare`: nothing (the framework's hello-world);
 * - `header-check`: `x-api-key` compared with a fixed string, 401 otherwise (the least an app could do);
 * - `keywarden`: `apiKeyAuth(keys, { scopes: ['data:read'] })` over a MemoryStore of 1,000 keys.
 *
 * Prints `TOKEN <token>` (the value to send in `x-api-key`), then `READY <port>` once listening on
 * 127.0.0.1. Every variant prints a token of the same length, so every variant gets the same request bytes.
 * Exits with code 0 on SIGTERM.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Router from '@koa/router'
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth as expressApiKeyAuth } from 'keywarden/express'
import { apiKeyAuth as fastifyApiKeyAuth } from 'keywarden/fastify'
import { withApiKey } from 'keywarden/fetch'
import { apiKeyAuth as honoApiKeyAuth } from 'keywarden/hono'
import { apiKeyAuth as koaApiKeyAuth } from 'keywarden/koa'
import { formatToken } from '../src/token/format.js'

const FRAMEWORKS = ['express', 'koa', 'fastify', 'hono', 'fetch'] as const
const VARIANTS = ['bare', 'header-check', 'keywarden'] as const
const KEY_COUNT = 1000
const BODY = { hello: 'world' }
/** What header-check expects: shaped like a real token, so the request is as long as in the keywarden variant. */
const FIXED_TOKEN = formatToken({ prefix: 'bench', environment: 'live', keyId: '0'.repeat(16), secret: '0'.repeat(32) })

const [framework, variant] = process.argv.slice(2) as [(typeof FRAMEWORKS)[number], (typeof VARIANTS)[number]]
if (!FRAMEWORKS.includes(framework) || !VARIANTS.includes(variant)) {
  console.error(`usage: http-server.ts <${FRAMEWORKS.join('|')}> <${VARIANTS.join('|')}>`)
  process.exit(2)
}

/** A KeyManager with KEY_COUNT keys granting data:read; returns it and the token of a key in the middle. */
async function seededKeys(): Promise<{ keys: KeyManager; token: string }> {
  const keys = new KeyManager({ store: new MemoryStore(), prefix: 'bench', pepper: 'bench-pepper-0123456789abcdef' })
  let token = ''
  for (let i = 0; i < KEY_COUNT; i++) {
    const issued = await keys.create({ name: `k${i}`, environment: 'live', scopes: ['data:read'] })
    if (i === KEY_COUNT / 2) token = issued.token
  }
  return { keys, token }
}

// Every variant loads keywarden and holds the same seeded KeyManager, so all start from the same code
// and heap; only the middleware on the route differs.
const seeded = await seededKeys()
const token = variant === 'keywarden' ? seeded.token : FIXED_TOKEN

function expressServer(): Server {
  const app = express()
  const hello: express.RequestHandler = (_req, res) => void res.json(BODY)
  if (variant === 'bare') app.get('/hello', hello)
  else if (variant === 'header-check') {
    app.get('/hello', (req, res, next) => (req.headers['x-api-key'] === FIXED_TOKEN ? next() : void res.status(401).json({ error: 'unauthorized' })), hello)
  } else app.get('/hello', expressApiKeyAuth(seeded.keys, { scopes: ['data:read'] }), hello)
  return app.listen(0, '127.0.0.1')
}

function koaServer(): Server {
  // @koa/router in every variant (the documented way to guard a route), so the router is part of the baseline.
  const app = new Koa()
  const router = new Router()
  const hello = (ctx: Koa.Context) => {
    ctx.body = BODY
  }
  if (variant === 'bare') router.get('/hello', hello)
  else if (variant === 'header-check') {
    router.get(
      '/hello',
      async (ctx, next) => {
        if (ctx.req.headers['x-api-key'] !== FIXED_TOKEN) {
          ctx.status = 401
          ctx.body = { error: 'unauthorized' }
          return
        }
        await next()
      },
      hello,
    )
  } else router.get('/hello', koaApiKeyAuth(seeded.keys, { scopes: ['data:read'] }), hello)
  app.use(router.routes())
  return app.listen(0, '127.0.0.1')
}

async function fastifyServer(): Promise<Server> {
  // Logger off (Fastify's default); the guard in onRequest, as docs/middleware/fastify.md recommends.
  const app = Fastify()
  const hello = async () => BODY
  if (variant === 'bare') app.get('/hello', hello)
  else if (variant === 'header-check') {
    app.get('/hello', { onRequest: async (request, reply) => (request.headers['x-api-key'] === FIXED_TOKEN ? undefined : reply.code(401).send({ error: 'unauthorized' })) }, hello)
  } else app.get('/hello', { onRequest: fastifyApiKeyAuth(seeded.keys, { scopes: ['data:read'] }) }, hello)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app.server
}

function honoServer(): Server {
  const app = new Hono()
  if (variant === 'bare') app.get('/hello', (c) => c.json(BODY))
  else if (variant === 'header-check') {
    app.get('/hello', async (c, next) => (c.req.header('x-api-key') === FIXED_TOKEN ? next() : c.json({ error: 'unauthorized' }, 401)), (c) => c.json(BODY))
  } else app.get('/hello', honoApiKeyAuth(seeded.keys, { scopes: ['data:read'] }), (c) => c.json(BODY))
  return listenFetch(app.fetch)
}

function fetchServer(): Server {
  // No router: one handler, as a Worker or a Next.js route handler has.
  const hello = () => Response.json(BODY)
  if (variant === 'bare') return listenFetch(hello)
  if (variant === 'header-check') return listenFetch((request) => (request.headers.get('x-api-key') === FIXED_TOKEN ? hello() : Response.json({ error: 'unauthorized' }, { status: 401 })))
  return listenFetch(withApiKey(seeded.keys, { scopes: ['data:read'] }, hello))
}

function listenFetch(fetch: (request: Request) => Response | Promise<Response>): Server {
  const server = createAdaptorServer({ fetch }) as Server
  server.listen(0, '127.0.0.1')
  return server
}

const servers: Record<(typeof FRAMEWORKS)[number], () => Server | Promise<Server>> = { express: expressServer, koa: koaServer, fastify: fastifyServer, hono: honoServer, fetch: fetchServer }
const server = await servers[framework]()
const ready = () => {
  console.log(`TOKEN ${token}`)
  console.log(`READY ${(server.address() as AddressInfo).port}`)
}
if (server.listening) ready()
else server.once('listening', ready)
process.on('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
