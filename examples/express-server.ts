/**
 * A small Express API guarded by keywarden: `npm start` (or `npx tsx examples/express-server.ts`).
 * PORT (default 3000) and HOST (default 127.0.0.1) choose where it listens; PORT=0 picks a free port.
 * ADMIN_TOKEN (16+ characters) sets the admin token; unset, one is made up per run; too short, no start.
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import type { AddressInfo } from 'node:net'
import { apiKeyAuth, keyManagementRouter } from 'keywarden/express'
import { ADMIN_PRINCIPAL, isAdmin } from './admin-token.js'
import { PROBLEM_HEADERS, problemFor, RequestRejection, type Problem } from './problems.js'
import { assertWellFormedUrl } from './request-input.js'
import { keys, printBanner, seedDemoKeys } from './shared.js'

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

// The settings page's back end in one line: the management API, for whoever the host's own login says
// is asking. Here that is an operator holding the admin token; a real app reads its session instead.
app.use('/admin/keys', keyManagementRouter(keys, { authorize: (req) => (isAdmin(req) ? ADMIN_PRINCIPAL : null) }))

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
