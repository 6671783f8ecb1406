/**
 * The same API on Koa and @koa/router: `npm run start:koa` (or `npx tsx examples/koa-server.ts`).
 * PORT (default 3000) and HOST (default 127.0.0.1) choose where it listens; PORT=0 picks a free port.
 */
import Koa from 'koa'
import Router from '@koa/router'
import type { AddressInfo } from 'node:net'
import { apiKeyAuth } from 'keywarden/koa'
import { createInput, errorResponse, isAdmin, keys, printBanner, readJson, seedDemoKeys } from './shared.js'

const app = new Koa()
const router = new Router()

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

const admin = new Router({ prefix: '/admin' })
admin.use(async (ctx, next) => {
  if (!isAdmin(ctx.req)) {
    ctx.status = 401
    ctx.body = { code: 'admin_required' }
    return
  }
  try {
    await next()
  } catch (error) {
    const { status, body } = errorResponse(error)
    ctx.status = status
    ctx.body = body
  }
})
admin.post('/keys', async (ctx) => {
  ctx.status = 201
  ctx.body = await keys.create(createInput(await readJson(ctx.req)))
})
admin.get('/keys', async (ctx) => {
  const { ownerId, status, cursor } = ctx.query as Record<string, string | undefined>
  ctx.body = await keys.list({ ownerId, status: status as never, cursor: cursor ?? null })
})
admin.post('/keys/:id/rotate', async (ctx) => {
  ctx.body = await keys.rotate(ctx.params.id!, (await readJson(ctx.req)) as object)
})
admin.post('/keys/:id/revoke', async (ctx) => {
  ctx.body = await keys.revoke(ctx.params.id!)
})
admin.post('/keys/:id/enable', async (ctx) => {
  ctx.body = await keys.enable(ctx.params.id!)
})
admin.post('/keys/:id/disable', async (ctx) => {
  ctx.body = await keys.disable(ctx.params.id!)
})
admin.delete('/keys/:id', async (ctx) => {
  await keys.delete(ctx.params.id!)
  ctx.status = 204
})

app.use(router.routes()).use(admin.routes())

const demo = await seedDemoKeys()
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo
  printBanner('Koa', `http://${address}:${port}`, demo)
})
// On shutdown: stop accepting requests, then write the buffered lastUsedAt values.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => server.close(() => void keys.close().then(() => process.exit(0))))
}
