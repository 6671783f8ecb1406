/**
 * A small Express API guarded by keywarden: `npm start` (or `npx tsx examples/express-server.ts`).
 * PORT (default 3000) and HOST (default 127.0.0.1) choose where it listens; PORT=0 picks a free port.
 * ADMIN_TOKEN (16+ characters) sets the admin token; unset, one is made up per run; too short, no start.
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import type { AddressInfo } from 'node:net'
import { apiKeyAuth } from 'keywarden/express'
import { isAdmin } from './admin-token.js'
import { PROBLEM_HEADERS, problemFor, RequestRejection, type Problem } from './problems.js'
import { assertWellFormedUrl, BODY_LIMIT_BYTES } from './request-input.js'
import { createInput, keys, printBanner, seedDemoKeys } from './shared.js'

const app = express()
// Before any route: a path or query that does not decode is the client's mistake (400), not ours.
app.use((req, _res, next) => {
  assertWellFormedUrl(req.url)
  next()
})

// Public.
app.get('/health', (_req, res) => void res.json({ ok: true }))

// Guarded by API keys, one scope per route.
app.get('/reports', apiKeyAuth(keys, { scopes: ['data:read'], environment: 'live' }), (req, res) => {
  res.json({ reports: ['2026-q3', '2026-q4'], owner: req.apiKey.ownerId, key: req.apiKey.name })
})
app.post('/reports', apiKeyAuth(keys, { scopes: ['data:write'], environment: 'live' }), (req, res) => {
  res.status(201).json({ created: true, owner: req.apiKey.ownerId })
})

// The settings page's management routes, behind the host application's own admin check. Their answers
// carry tokens and key details, so none may be cached; bodies are read only once the caller is an admin.
const admin = express.Router()
admin.use((req, res, next) => {
  res.set('Cache-Control', 'no-store')
  next(isAdmin(req) ? undefined : new RequestRejection('admin_required'))
})
admin.use(express.json({ limit: BODY_LIMIT_BYTES }))
admin.post('/keys', async (req, res) => void res.status(201).json(await keys.create(createInput(req.body))))
admin.get('/keys', async (req, res) => {
  const { ownerId, status, cursor } = req.query as Record<string, string | undefined>
  res.json(await keys.list({ ownerId, status: status as never, cursor: cursor ?? null }))
})
admin.post('/keys/:id/rotate', async (req, res) => void res.json(await keys.rotate(String(req.params.id), req.body ?? {})))
admin.post('/keys/:id/revoke', async (req, res) => void res.json(await keys.revoke(String(req.params.id))))
admin.post('/keys/:id/enable', async (req, res) => void res.json(await keys.enable(String(req.params.id))))
admin.post('/keys/:id/disable', async (req, res) => void res.json(await keys.disable(String(req.params.id))))
admin.delete('/keys/:id', async (req, res) => {
  await keys.delete(String(req.params.id))
  res.status(204).end()
})
app.use('/admin', admin)

app.use((_req, _res, next) => next(new RequestRejection('not_found')))
app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
  if (res.headersSent) return next(error)
  sendProblem(res, problemFor(error))
})

function sendProblem(res: Response, problem: Problem): void {
  res.status(problem.status).set(PROBLEM_HEADERS).send(JSON.stringify(problem))
}

const demo = await seedDemoKeys()
const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo
  printBanner('Express', `http://${address}:${port}`, demo)
})
// On shutdown: stop accepting requests, then write the buffered lastUsedAt values.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => server.close(() => void keys.close().then(() => process.exit(0))))
}
