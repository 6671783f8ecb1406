/**
 * The same API on Koa and @koa/router: `npm run start:koa` (or `npx tsx examples/koa-server.ts`).
 * PORT (default 3000) and HOST (default 127.0.0.1) choose where it listens; PORT=0 picks a free port.
 * ADMIN_TOKEN (16+ characters) sets the admin token; unset, one is made up per run; too short, no start.
 */
import Koa, { type Context } from 'koa'
import Router from '@koa/router'
import type { AddressInfo } from 'node:net'
import { apiKeyAuth, keyManagementRouter } from 'keywarden/koa'
import { ADMIN_PRINCIPAL, isAdmin } from './admin-token.js'
import { PROBLEM_HEADERS, problemFor, RequestRejection, type Problem } from './problems.js'
import { assertWellFormedUrl } from './request-input.js'
import { keys, printBanner, seedDemoKeys } from './shared.js'

const app = new Koa()
const router = new Router()

// Outermost: whatever fails below, and a path no route matched, is answered with a problem body.
app.use(async (ctx, next) => {
  try {
    await next()
  } catch (error) {
    sendProblem(ctx, problemFor(error))
    return
  }
  if (ctx.status === 404 && ctx.body == null) sendProblem(ctx, problemFor(new RequestRejection('not_found')))
})
// A path or query that does not decode is the client's mistake (400), not ours.
app.use((ctx, next) => {
  assertWellFormedUrl(ctx.url)
  return next()
})

router.get('/health', (ctx) => {
  ctx.body = { ok: true }
})

router.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'], environment: 'live' }), (ctx) => {
  ctx.body = { reports: ['2026-q3', '2026-q4'], owner: ctx.state.apiKey.ownerId, key: ctx.state.apiKey.name }
})
router.post('/reports', apiKeyAuth(keys, { scopes: ['data:write'], environment: 'live' }), (ctx) => {
  ctx.status = 201
  ctx.body = { created: true, owner: ctx.state.apiKey.ownerId }
})

// The settings page's back end in one line: the management API, for whoever the host's own login says
// is asking. Here that is an operator holding the admin token; a real app reads its session instead.
app.use(keyManagementRouter(keys, { basePath: '/admin/keys', authorize: (ctx) => (isAdmin(ctx.req) ? ADMIN_PRINCIPAL : null) }))

app.use(router.routes())

// The type first: Koa keeps it when the string body is assigned.
function sendProblem(ctx: Context, problem: Problem): void {
  ctx.status = problem.status
  ctx.set(PROBLEM_HEADERS)
  ctx.body = JSON.stringify(problem)
}

const demo = await seedDemoKeys()
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo
  printBanner('Koa', `http://${address}:${port}`, demo)
})
// On shutdown: stop accepting requests, then write the buffered lastUsedAt values.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => server.close(() => void keys.close().then(() => process.exit(0))))
}
