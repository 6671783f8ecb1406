// The example servers' management router over real HTTP, with an operator-set ADMIN_TOKEN: the admin
// check (the router's authorize), no caching of admin answers, and problem bodies (never a 500) for malformed requests.
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exampleServers, runCurl, sendRequest, startExample, type RawRequest, type RawResponse, type RunningExample } from './example-process.js'

// Exactly the minimum length, so accepting it is part of the test.
const adminToken = randomBytes(12).toString('base64url')
const asAdmin = { 'X-Admin-Token': adminToken }
const json = { ...asAdmin, 'Content-Type': 'application/json' }

function expectProblem(response: RawResponse, status: number, code: string): void {
  expect(response.status).toBe(status)
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json\b/)
  expect(response.headers['cache-control']).toBe('no-store')
  expect(response.body).toMatchObject({ type: 'about:blank', title: expect.any(String), status, detail: expect.any(String), code })
}

describe.each(exampleServers)('the %s example server with ADMIN_TOKEN set', (_, file) => {
  let server: RunningExample
  const agent = new Agent({ keepAlive: true })
  const send = (request: RawRequest) => sendRequest(agent, server.baseUrl, request)
  const createKey = (ownerId: string) =>
    send({ method: 'POST', path: '/admin/keys', headers: json, body: JSON.stringify({ name: 'script', ownerId, environment: 'live', roles: ['readonly'] }) })

  beforeAll(async () => {
    server = await startExample(file, { ADMIN_TOKEN: adminToken })
  }, 60_000)
  afterAll(async () => {
    agent.destroy()
    await server?.stop()
  })

  it('keeps the token out of its banner; the curl lines read it from the shell', () => {
    expect(server.output).not.toContain(adminToken)
    const create = server.curlLines.find((line) => line.includes('/admin/keys -X POST'))!
    expect(create).toContain('"X-Admin-Token: $ADMIN_TOKEN"')
    expect(runCurl(create, { ADMIN_TOKEN: adminToken })).toMatchObject({ status: 201, body: { token: expect.stringMatching(/^acme_live_/) } })
  })

  it('answers 401 unauthorized without the header, with an empty one or a wrong one, and mints nothing', async () => {
    const wrongHeaders: Record<string, string>[] = [
      {},
      { 'X-Admin-Token': '' },
      { 'X-Admin-Token': randomBytes(12).toString('base64url') },
      { 'X-Admin-Token': adminToken.slice(0, -1) },
      { 'X-Admin-Token': `${adminToken}x` },
    ]
    const intruder = JSON.stringify({ name: 'intruder', ownerId: 'intruder', roles: ['admin'] })
    for (const headers of wrongHeaders) {
      const request = { method: 'POST', path: '/admin/keys', headers: { ...headers, 'Content-Type': 'application/json' }, body: intruder }
      expectProblem(await send(request), 401, 'unauthorized')
      expectProblem(await send({ path: '/admin/keys', headers }), 401, 'unauthorized')
    }
    const listed = await send({ path: '/admin/keys?ownerId=intruder', headers: asAdmin })
    expect(listed).toMatchObject({ status: 200, body: { items: [] } })
  })

  // Express mounts paths case-insensitively (the router's own check answers), Koa's basePath is exact
  // (the path is not the router's: 404). Either way nothing is minted or listed.
  it('guards the admin routes whatever the case of the path', async () => {
    const intruder = JSON.stringify({ name: 'intruder', ownerId: 'case-intruder', roles: ['admin'] })
    const created = await send({ method: 'POST', path: '/ADMIN/keys', headers: { 'Content-Type': 'application/json' }, body: intruder })
    expect([401, 404]).toContain(created.status)
    expectProblem(created, created.status, created.status === 401 ? 'unauthorized' : 'not_found')
    const listed0 = await send({ path: '/Admin/Keys?ownerId=demo-user' })
    expectProblem(listed0, listed0.status, listed0.status === 401 ? 'unauthorized' : 'not_found')
    expect(listed0.text).not.toContain('demo reader')
    const listed = await send({ path: '/admin/keys?ownerId=case-intruder', headers: asAdmin })
    expect(listed).toMatchObject({ status: 200, body: { items: [] } })
  })

  it('sends Cache-Control: no-store with the token-bearing answers of create and rotate, and every other admin answer', async () => {
    const created = await createKey('cache-owner')
    expect(created).toMatchObject({ status: 201, body: { token: expect.stringMatching(/^acme_live_/) } })
    expect(created.headers['cache-control']).toBe('no-store')
    const id = (created.body.key as { id: string }).id
    const rotated = await send({ method: 'POST', path: `/admin/keys/${id}/rotate`, headers: json, body: '{"gracePeriod":"1h"}' })
    expect(rotated).toMatchObject({ status: 200, body: { token: expect.stringMatching(/^acme_live_/) } })
    expect(rotated.headers['cache-control']).toBe('no-store')
    const listed = await send({ path: '/admin/keys?ownerId=cache-owner', headers: asAdmin })
    expect(listed.status).toBe(200)
    expect(listed.headers['cache-control']).toBe('no-store')
    expectProblem(await send({ method: 'POST', path: '/admin/keys/no-such-key/revoke', headers: json, body: '{}' }), 404, 'not_found')
    expectProblem(await send({ path: '/admin/nothing-here', headers: asAdmin }), 404, 'not_found')
  })

  it('answers bad JSON with a 400 problem that does not repeat it', async () => {
    const marker = 'not-json-marker'
    const created = await send({ method: 'POST', path: '/admin/keys', headers: json, body: `{"name": "${marker}",` })
    expectProblem(created, 400, 'invalid_request')
    expect(created.text).not.toContain(marker)
    const id = ((await createKey('json-owner')).body.key as { id: string }).id
    const rotated = await send({ method: 'POST', path: `/admin/keys/${id}/rotate`, headers: json, body: `{${marker}}` })
    expectProblem(rotated, 400, 'invalid_request')
    expect(rotated.text).not.toContain(marker)
  })

  it('answers a 70 kB body with a 413 problem, sent whole or in chunks, and keeps serving the connection', async () => {
    const name = 'x'.repeat(70 * 1024)
    const body = JSON.stringify({ name, ownerId: 'big-owner' })
    expectProblem(await send({ method: 'POST', path: '/admin/keys', headers: json, body }), 413, 'payload_too_large')
    const chunks = Array.from({ length: 70 }, (_unused, index) => (index === 0 ? `{"name":"${'x'.repeat(1000)}` : 'x'.repeat(1024)))
    expectProblem(await send({ method: 'POST', path: '/admin/keys', headers: json, body: { chunks } }), 413, 'payload_too_large')
    expect(await send({ path: '/admin/keys?ownerId=big-owner', headers: asAdmin })).toMatchObject({ status: 200, body: { items: [] } })
  })

  it('answers bad percent-encoding in a path parameter or the query with a 400 problem that does not repeat it', async () => {
    const requests: RawRequest[] = [
      { method: 'POST', path: '/admin/keys/%E0%A4%A/revoke', headers: asAdmin },
      { method: 'DELETE', path: '/admin/keys/%C0', headers: asAdmin },
      { path: '/admin/keys?ownerId=%E0%A4%A', headers: asAdmin },
      { path: '/admin/keys?ownerId=100%', headers: asAdmin },
      { path: '/reports?x=%FF' },
    ]
    for (const request of requests) {
      const response = await send(request)
      expectProblem(response, 400, 'invalid_url_encoding')
      expect(response.text).not.toMatch(/%E0|%C0|%FF|100%/)
    }
  })

  it('answers an unknown route outside /admin with a 404 problem', async () => {
    expectProblem(await send({ path: '/nothing-here' }), 404, 'not_found')
  })
})
