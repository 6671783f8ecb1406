/**
 * The GitHub secret scanning handler, in its three forms: Fetch (on Node's own Request / Response),
 * Express and Koa (real listening servers). A locally generated ECDSA P-256 key pair stands in for
 * GitHub's; a local HTTP server stands in for GitHub's public key list.
 */
import express from 'express'
import Koa from 'koa'
import Router from '@koa/router'
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../../adapters/sql/index.js'
import {
  ConfigError,
  KeyManager,
  StoreError,
  createSecretScanningHandler,
  secretScanningHandler,
  type GitHubPublicKey,
  type KeyEvent,
  type SecretScanningOptions,
} from '../../src/index.js'
import { secretScanningHandler as expressHandler, type SecretScanningRequest } from '../../src/http/express.js'
import { secretScanningHandler as koaHandler } from '../../src/http/koa.js'
import { forgeToken, PEPPER, recordEvents, setup } from '../helpers.js'
import { Database } from '../support/sqlite.js'

// ---------------------------------------------------------------------------------------------------
// GitHub, played locally

interface Signer {
  readonly id: string
  readonly privateKey: KeyObject
  readonly pem: string
}

function signer(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  return { id: createHash('sha256').update(pem).digest('hex'), privateKey, pem }
}

const GITHUB = signer()
const ROTATED = signer()
const STRANGER = signer()

const asPublicKey = (s: Signer, current = true): GitHubPublicKey => ({ key_identifier: s.id, key: s.pem, is_current: current })

/** The headers GitHub sends: the key identifier and a base64 DER signature over the raw body. */
function signedHeaders(body: string | Buffer, by: Signer = GITHUB, identifier = by.id): Record<string, string> {
  return {
    'content-type': 'application/json',
    'github-public-key-identifier': identifier,
    'github-public-key-signature': sign('sha256', Buffer.from(body), by.privateKey).toString('base64'),
  }
}

const LEAK_URL = 'https://github.com/octo/app/blob/4e1f0c2/.env'

function alerts(tokens: readonly string[]): string {
  return JSON.stringify(tokens.map((token) => ({ token, type: 'acme_api_key', url: LEAK_URL, source: 'commit' })))
}

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex')

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

type Send = (body: string | Buffer, headers: Record<string, string>, method?: string) => Promise<Answer>

/** The Fetch form, called directly with Node's own Request. */
function fetchForm(keys: KeyManager, options: SecretScanningOptions = {}): Send {
  const handle = secretScanningHandler(keys, options)
  return async (body, headers, method = 'POST') => {
    const request = new Request('http://localhost/github/secret-scanning', { method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) })
    const response = await handle(request)
    return { status: response.status, headers: response.headers, text: await response.text() }
  }
}

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }),
    ),
  )
})

async function listen(server: Server): Promise<number> {
  servers.push(server)
  if (!server.listening) await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Sends over real HTTP with fetch. */
function over(port: number, path = '/github/secret-scanning'): Send {
  return async (body, headers, method = 'POST') => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) })
    return { status: response.status, headers: response.headers, text: await response.text() }
  }
}

/** Express with the handler mounted before express.json(), as the docs say; also on every method, for 405s. */
async function expressForm(keys: KeyManager, options: SecretScanningOptions = {}): Promise<Send & { port: number }> {
  const app = express()
  app.all('/github/secret-scanning', expressHandler(keys, options))
  app.post('/with-verify', express.json({ verify: (req, _res, buffer) => void ((req as SecretScanningRequest).rawBody = buffer) }), expressHandler(keys, options))
  app.post('/with-raw', express.raw({ type: 'application/json' }), expressHandler(keys, options))
  app.use(express.json())
  app.post('/after-json', expressHandler(keys, options))
  const port = await listen(app.listen(0, '127.0.0.1'))
  return Object.assign(over(port), { port })
}

async function koaForm(keys: KeyManager, options: SecretScanningOptions = {}): Promise<Send & { port: number }> {
  const app = new Koa()
  const router = new Router()
  const handler = koaHandler(keys, options)
  router.all('/github/secret-scanning', handler)
  // A "parser" that reads the body and keeps nothing: the handler must say it needs the raw body.
  router.post('/after-parser', async (ctx, next) => {
    for await (const _chunk of ctx.req) void _chunk
    await next()
  }, handler)
  router.post('/with-raw-body', async (ctx, next) => {
    const chunks: Buffer[] = []
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer)
    ;(ctx.request as { rawBody?: string }).rawBody = Buffer.concat(chunks).toString('utf8')
    await next()
  }, handler)
  app.use(router.routes())
  const port = await listen(app.listen(0, '127.0.0.1'))
  return Object.assign(over(port), { port })
}

/** A KeyManager on a memory store with a few keys of every kind. */
async function world() {
  const context = setup()
  const { keys } = context
  const live = await keys.create({ name: 'leaky', ownerId: 'u1', environment: 'live' })
  const revoked = await keys.create({ name: 'already revoked', ownerId: 'u1', environment: 'live' })
  await keys.revoke(revoked.key.id)
  const untouched = await keys.create({ name: 'untouched', ownerId: 'u2', environment: 'live' })
  const foreign = (await setup({ prefix: 'other' }).keys.create({ name: 'x', environment: 'live' })).token
  const unknown = forgeToken('Qw3rTy7uIo9pAs2d', 'live', keys.splitToken(untouched.token)!.secret)
  const wrongSecret = forgeToken(untouched.key.id, 'live', keys.splitToken(live.token)!.secret)
  const events = recordEvents(keys, ['leaked', 'revoked', 'disabled', 'verified', 'rejected'])
  return { ...context, live, revoked, untouched, foreign, unknown, wrongSecret, events }
}

type Labels = { token_hash: string; token_type: string; label: string }[]

const problemOf = (answer: Answer) => JSON.parse(answer.text) as { status: number; code: string; detail: string }

// ---------------------------------------------------------------------------------------------------

const forms = {
  fetch: async (keys: KeyManager, options?: SecretScanningOptions) => fetchForm(keys, options),
  express: expressForm,
  koa: koaForm,
} as const

describe.each(Object.keys(forms) as (keyof typeof forms)[])('secretScanningHandler, %s form', (form) => {
  const make = forms[form]
  const publicKeys = [asPublicKey(GITHUB)]

  it('labels every token in input order and revokes the genuine ones', async () => {
    const w = await world()
    const send = await make(w.keys, { publicKeys })
    const tokens = [w.live.token, w.unknown, w.revoked.token, w.foreign, 'not a token at all', w.wrongSecret]
    const body = alerts(tokens)
    const answer = await send(body, signedHeaders(body))
    expect(answer.status).toBe(200)
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/)
    const labels = JSON.parse(answer.text) as Labels
    expect(labels).toEqual(
      tokens.map((token, index) => ({ token_hash: sha256(token), token_type: 'acme_api_key', label: index === 0 || index === 2 ? 'true_positive' : 'false_positive' })),
    )
    expect(answer.text).not.toContain(w.live.token)
    const after = (await w.keys.get(w.live.key.id))!
    expect(after.revokedAt).not.toBeNull()
    expect((await w.keys.get(w.untouched.key.id))!.revokedAt).toBeNull()
    const entry = (await w.keys.audit({ keyId: w.live.key.id, action: 'revoked' })).items[0]!
    expect(entry).toMatchObject({ actor: { type: 'system', id: 'secret-scanning' }, reason: `Leaked: found by GitHub secret scanning (source: commit) at ${LEAK_URL}` })
    const leaked = w.events.filter((event): event is KeyEvent & { type: 'leaked' } => event.type === 'leaked')
    // Tokens are checked concurrently, so events come in any order.
    expect(leaked.map((event) => [event.key.id, event.action, event.source, event.url])).toEqual(
      expect.arrayContaining([
        [w.live.key.id, 'revoked', 'commit', LEAK_URL],
        [w.revoked.key.id, 'none', 'commit', LEAK_URL],
      ]),
    )
    expect(leaked).toHaveLength(2)
    // Checking a report is not a use of the key.
    expect(w.events.some((event) => event.type === 'verified' || event.type === 'rejected')).toBe(false)
  })

  it("disables instead with action: 'disable'", async () => {
    const w = await world()
    const send = await make(w.keys, { publicKeys, action: 'disable' })
    const body = alerts([w.live.token])
    expect((await send(body, signedHeaders(body))).status).toBe(200)
    expect(await w.keys.get(w.live.key.id)).toMatchObject({ enabled: false, revokedAt: null })
  })

  it('answers 401, changing nothing, for a tampered body, a wrong identifier, a stranger key, or a missing or malformed signature', async () => {
    const w = await world()
    const send = await make(w.keys, { publicKeys })
    const body = alerts([w.live.token])
    const tampered = alerts([w.live.token, w.untouched.token])
    const good = signedHeaders(body)
    const cases: Record<string, string>[] = [
      signedHeaders(body), // sent with the tampered body below
      { ...good, 'github-public-key-identifier': ROTATED.id },
      signedHeaders(body, STRANGER, GITHUB.id),
      signedHeaders(body, STRANGER),
      { 'content-type': 'application/json', 'github-public-key-identifier': GITHUB.id },
      { 'content-type': 'application/json', 'github-public-key-signature': good['github-public-key-signature']! },
      { ...good, 'github-public-key-signature': 'not base64!' },
      { ...good, 'github-public-key-signature': Buffer.from('not a DER signature').toString('base64') },
      { ...good, 'github-public-key-identifier': 'x'.repeat(300) },
    ]
    const answers = [await send(tampered, cases[0]!), ...(await Promise.all(cases.slice(1).map((headers) => send(body, headers))))]
    for (const answer of answers) {
      expect(answer.status).toBe(401)
      expect(answer.headers.get('content-type')).toBe('application/problem+json')
      expect(problemOf(answer)).toMatchObject({ status: 401, code: 'invalid_signature' })
    }
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1)
    expect((await w.keys.get(w.live.key.id))!.revokedAt).toBeNull()
    expect((await w.keys.get(w.untouched.key.id))!.revokedAt).toBeNull()
    expect(w.events).toEqual([])
  })

  it('answers 405 with Allow for other methods, 400 for a body that is not JSON, 422 for JSON of the wrong shape', async () => {
    const w = await world()
    const send = await make(w.keys, { publicKeys })
    const get = await send('', {}, 'GET')
    expect(get.status).toBe(405)
    expect(get.headers.get('allow')).toBe('POST')
    expect((await send('[]', signedHeaders('[]'), 'PUT')).status).toBe(405)

    for (const body of ['{"token": ', 'not json', Buffer.from([0x5b, 0xff, 0xfe, 0x5d])]) {
      const answer = await send(body, signedHeaders(body))
      expect(answer.status).toBe(400)
      expect(problemOf(answer).code).toBe('invalid_json')
    }
    for (const body of ['{"token": "x"}', '[{"type": "t"}]', '[{"token": 1, "type": "t"}]', '[{"token": "x", "type": "t", "url": 5}]', 'null']) {
      const answer = await send(body, signedHeaders(body))
      expect(answer.status, body).toBe(422)
      expect(problemOf(answer).code).toBe('invalid_payload')
      expect(answer.text).not.toContain('"x"')
    }
    const empty = await send('[]', signedHeaders('[]'))
    expect([empty.status, empty.text]).toEqual([200, '[]'])
    expect(w.events).toEqual([])
  })

  it('answers 413 for a body over maxBodyBytes, before checking anything', async () => {
    const w = await world()
    const send = await make(w.keys, { publicKeys, maxBodyBytes: 1024 })
    const body = alerts(Array.from({ length: 20 }, () => w.live.token))
    const answer = await send(body, signedHeaders(body))
    expect(answer.status).toBe(413)
    expect(problemOf(answer).code).toBe('payload_too_large')
    expect((await w.keys.get(w.live.key.id))!.revokedAt).toBeNull()
  })

  it('answers 503 with Retry-After when the store fails (a closed SQLite database), and tells onError', async () => {
    const database = new Database(':memory:')
    const store = new SqliteStore({ database, table: 'scan' })
    await store.migrate()
    const keys = new KeyManager({ store, prefix: 'acme', environments: ['live'], pepper: PEPPER })
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    const errors: unknown[] = []
    const send = await make(keys, { publicKeys, onError: (error) => void errors.push(error) })
    database.close()
    const body = alerts(['garbage', token])
    const answer = await send(body, signedHeaders(body))
    expect(answer.status).toBe(503)
    expect(answer.headers.get('retry-after')).toBe('5')
    expect(problemOf(answer).code).toBe('service_unavailable')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(StoreError)
  })

  it('answers a batch of 1,000 tokens (real, revoked, forged, foreign, garbage) correctly and quickly', async () => {
    const { keys } = setup()
    const real = await Promise.all(Array.from({ length: 100 }, (_, i) => keys.create({ name: `k${i}`, ownerId: `u${i % 7}`, environment: 'live' })))
    for (const issued of real.slice(0, 10)) await keys.revoke(issued.key.id)
    const secrets = real.map((issued) => keys.splitToken(issued.token)!.secret)
    const tokens: string[] = []
    const genuine: boolean[] = []
    for (let i = 0; i < 1000; i++) {
      const issued = real[Math.floor(i / 5) % real.length]!
      switch (i % 5) {
        case 0: // a real token (each one five times over the batch: GitHub reports every place)
        case 1:
          tokens.push(issued.token)
          genuine.push(true)
          break
        case 2: // a real key ID with another key's secret
          tokens.push(forgeToken(issued.key.id, 'live', secrets[(i + 1) % secrets.length]!))
          genuine.push(false)
          break
        case 3: // a key ID nobody issued
          tokens.push(forgeToken(`Zz${String(i).padStart(4, '0')}aBcDeFgHiJ`, 'live', secrets[i % secrets.length]!))
          genuine.push(false)
          break
        default: // another vendor's token, or noise
          tokens.push(i % 2 === 0 ? `ghp_${'x'.repeat(36)}` : `acme_live_${i}`)
          genuine.push(false)
      }
    }
    const send = await make(keys, { publicKeys })
    const body = alerts(tokens)
    const started = performance.now()
    const answer = await send(body, signedHeaders(body))
    const elapsed = performance.now() - started
    console.info(`[secret scanning] ${form} form: 1,000 tokens (${real.length} real keys) answered in ${elapsed.toFixed(1)} ms`)
    expect(answer.status).toBe(200)
    const labels = JSON.parse(answer.text) as Labels
    expect(labels).toHaveLength(1000)
    labels.forEach((entry, i) => expect(entry).toEqual({ token_hash: sha256(tokens[i]!), token_type: 'acme_api_key', label: genuine[i] ? 'true_positive' : 'false_positive' }))
    for (const issued of real) expect((await keys.get(issued.key.id))!.revokedAt).not.toBeNull()
    // Each key revoked once, however often its token was reported.
    const revocations = (await keys.audit({ action: 'revoked', limit: 1000 })).items
    expect(revocations).toHaveLength(real.length)
  })
})

describe('secretScanningHandler, Fetch form on a real database', () => {
  it('answers 1,000 tokens on SQLite correctly and quickly', async () => {
    const database = new Database(':memory:')
    const store = new SqliteStore({ database, table: 'batch' })
    await store.migrate()
    const keys = new KeyManager({ store, prefix: 'acme', environments: ['live'], pepper: PEPPER })
    try {
      const real = await Promise.all(Array.from({ length: 200 }, (_, i) => keys.create({ name: `k${i}`, environment: 'live' })))
      const tokens = Array.from({ length: 1000 }, (_, i) =>
        i % 2 === 0 ? real[(i / 2) % real.length]!.token : forgeToken(real[i % real.length]!.key.id, 'live', keys.splitToken(real[(i + 3) % real.length]!.token)!.secret),
      )
      const send = fetchForm(keys, { publicKeys: [asPublicKey(GITHUB)] })
      const body = alerts(tokens)
      const started = performance.now()
      const answer = await send(body, signedHeaders(body))
      const elapsed = performance.now() - started
      console.info(`[secret scanning] fetch form on SQLite: 1,000 tokens (${real.length} real keys, each reported 2-3 times) answered in ${elapsed.toFixed(1)} ms`)
      expect(answer.status).toBe(200)
      const labels = JSON.parse(answer.text) as Labels
      expect(labels.map((entry) => entry.label)).toEqual(tokens.map((_, i) => (i % 2 === 0 ? 'true_positive' : 'false_positive')))
      expect((await keys.list({ status: 'revoked', limit: 1000 })).items).toHaveLength(real.length)
    } finally {
      database.close()
    }
  })

  it('answers 400 when the Request body was already read', async () => {
    const { keys } = setup()
    const handle = secretScanningHandler(keys, { publicKeys: [asPublicKey(GITHUB)] })
    const request = new Request('http://localhost/', { method: 'POST', body: '[]', headers: signedHeaders('[]') })
    await request.text()
    const response = await handle(request)
    expect(response.status).toBe(400)
    expect(((await response.json()) as { code: string }).code).toBe('raw_body_required')
  })
})

describe('secretScanningHandler on node servers: the raw body', () => {
  it('Express: mounted after express.json() it says it needs the raw body; a kept raw body works', async () => {
    const w = await world()
    const send = await expressForm(w.keys, { publicKeys: [asPublicKey(GITHUB)] })
    const body = alerts([w.live.token])
    const after = await over(send.port, '/after-json')(body, signedHeaders(body))
    expect(after.status).toBe(400)
    expect(problemOf(after)).toMatchObject({ code: 'raw_body_required' })
    expect(problemOf(after).detail).toMatch(/before express\.json\(\)/)
    expect((await w.keys.get(w.live.key.id))!.revokedAt).toBeNull()

    expect((await over(send.port, '/with-verify')(body, signedHeaders(body))).status).toBe(200)
    const second = alerts([w.untouched.token])
    expect((await over(send.port, '/with-raw')(second, signedHeaders(second))).status).toBe(200)
    expect((await w.keys.get(w.live.key.id))!.revokedAt).not.toBeNull()
    expect((await w.keys.get(w.untouched.key.id))!.revokedAt).not.toBeNull()
  })

  it('Koa: a body read and not kept is a 400; a kept rawBody string works', async () => {
    const w = await world()
    const send = await koaForm(w.keys, { publicKeys: [asPublicKey(GITHUB)] })
    const body = alerts([w.live.token])
    const after = await over(send.port, '/after-parser')(body, signedHeaders(body))
    expect([after.status, problemOf(after).code]).toEqual([400, 'raw_body_required'])
    expect((await over(send.port, '/with-raw-body')(body, signedHeaders(body))).status).toBe(200)
    expect((await w.keys.get(w.live.key.id))!.revokedAt).not.toBeNull()
  })

  it.each(['express', 'koa'] as const)('%s: a chunked body without Content-Length is cut off at the limit with a 413', async (framework) => {
    const w = await world()
    const send = framework === 'express' ? await expressForm(w.keys, { publicKeys: [asPublicKey(GITHUB)], maxBodyBytes: 1024 }) : await koaForm(w.keys, { publicKeys: [asPublicKey(GITHUB)], maxBodyBytes: 1024 })
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: send.port, path: '/github/secret-scanning', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      for (let i = 0; i < 8; i++) req.write('x'.repeat(512))
      req.end()
    })
    expect(status).toBe(413)
  })
})

describe('secretScanningHandler: public keys fetched from keysUrl', () => {
  /** A local stand-in for https://api.github.com/meta/public_keys/secret_scanning. */
  async function keyServer(initial: GitHubPublicKey[]) {
    const state = { keys: initial, failing: false, fetches: 0, userAgents: [] as (string | undefined)[] }
    const server = createServer((req, res) => {
      state.fetches++
      state.userAgents.push(req.headers['user-agent'])
      if (state.failing) {
        res.writeHead(502).end('bad gateway')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ public_keys: state.keys }))
    })
    const port = await listen(server.listen(0, '127.0.0.1'))
    return { state, url: `http://127.0.0.1:${port}/meta/public_keys/secret_scanning` }
  }

  it('fetches once and caches for cacheTtl, keeps the last good keys when a refetch fails, refetches once for an unknown identifier', async () => {
    const w = await world()
    const github = await keyServer([asPublicKey(GITHUB)])
    const errors: unknown[] = []
    const send = fetchForm(w.keys, { keysUrl: github.url, cacheTtl: '1h', onError: (error) => void errors.push(error) })
    const body = alerts(['garbage'])
    const ok = async (by: Signer = GITHUB) => (await send(body, signedHeaders(body, by))).status

    expect(await ok()).toBe(200)
    expect(await ok()).toBe(200)
    expect(github.state.fetches).toBe(1)
    expect(github.state.userAgents[0]).toBe('keywarden-secret-scanning')

    // Past the ttl, GitHub is down: the request is still answered with the keys fetched before.
    w.time.advance(60 * 60 * 1000)
    github.state.failing = true
    expect(await ok()).toBe(200)
    expect(github.state.fetches).toBe(2)
    expect(errors).toHaveLength(1)
    expect(String(errors[0])).toMatch(/HTTP 502/)
    // Failed a moment ago: not tried again within the refetch interval.
    expect(await ok()).toBe(200)
    expect(github.state.fetches).toBe(2)

    // GitHub is back and has rotated: a signature by the new key triggers one refetch, which finds it.
    w.time.advance(60_000)
    github.state.failing = false
    github.state.keys = [asPublicKey(GITHUB, false), asPublicKey(ROTATED)]
    expect(await ok(ROTATED)).toBe(200)
    expect(github.state.fetches).toBe(3)
    // An identifier nobody lists: at most one refetch a minute, then 401.
    expect(await ok(STRANGER)).toBe(401)
    expect(await ok(STRANGER)).toBe(401)
    expect(github.state.fetches).toBe(3)
    w.time.advance(60_000)
    expect(await ok(STRANGER)).toBe(401)
    expect(github.state.fetches).toBe(4)
    // A key GitHub no longer lists stops working once the list is fetched again.
    github.state.keys = [asPublicKey(ROTATED)]
    w.time.advance(60 * 60 * 1000)
    expect(await ok(ROTATED)).toBe(200)
    expect(await ok(GITHUB)).toBe(401)
    expect(github.state.fetches).toBe(5)
  })

  it('answers 503 while no key set could ever be fetched, and fetches concurrently asked keys once', async () => {
    const w = await world()
    const github = await keyServer([asPublicKey(GITHUB)])
    github.state.failing = true
    const errors: unknown[] = []
    const send = fetchForm(w.keys, { keysUrl: github.url, onError: (error) => void errors.push(error) })
    const body = alerts([w.live.token])
    const answer = await send(body, signedHeaders(body))
    expect([answer.status, answer.headers.get('retry-after')]).toEqual([503, '5'])
    expect((await w.keys.get(w.live.key.id))!.revokedAt).toBeNull()
    expect(errors.length).toBeGreaterThanOrEqual(1)

    github.state.failing = false
    w.time.advance(60_000)
    const answers = await Promise.all(Array.from({ length: 5 }, () => send(body, signedHeaders(body))))
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200])
    expect(github.state.fetches).toBe(2)
  })

  it('uses an injected fetch, and ignores listed keys that are not ECDSA P-256', async () => {
    const w = await world()
    const { publicKey: rsa } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const seen: string[] = []
    const send = fetchForm(w.keys, {
      keysUrl: 'https://github.example.com/api/v3/meta/public_keys/secret_scanning',
      fetch: async (url) => {
        seen.push(url)
        return Response.json({ public_keys: [{ key_identifier: 'rsa', key: rsa.export({ type: 'spki', format: 'pem' }).toString() }, { bogus: true }, asPublicKey(GITHUB)] })
      },
    })
    const body = alerts(['garbage'])
    expect((await send(body, signedHeaders(body))).status).toBe(200)
    expect(seen).toEqual(['https://github.example.com/api/v3/meta/public_keys/secret_scanning'])
  })
})

describe('secretScanningHandler: options', () => {
  it('is also exported as createSecretScanningHandler', () => {
    expect(createSecretScanningHandler).toBe(secretScanningHandler)
  })

  it('refuses invalid options when built, naming them', () => {
    const { keys } = setup()
    const refuses = (options: unknown, path: string) => {
      let error: unknown
      try {
        secretScanningHandler(keys, options as SecretScanningOptions)
      } catch (caught) {
        error = caught
      }
      expect(error, path).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).issues.map((issue) => issue.path.join('.')), path).toContain(path)
    }
    refuses({ publicKeys: [] }, 'publicKeys')
    refuses({ publicKeys: [{ key_identifier: 'x', key: 'not a pem' }] }, 'publicKeys.0.key')
    refuses({ publicKeys: [asPublicKey(GITHUB)], keysUrl: 'https://example.com' }, 'keysUrl')
    refuses({ keysUrl: 'ftp://example.com' }, 'keysUrl')
    refuses({ action: 'delete' }, 'action')
    refuses({ cacheTtl: 'forever' }, 'cacheTtl')
    refuses({ maxBodyBytes: 0 }, 'maxBodyBytes')
    refuses({ concurrency: 1000 }, 'concurrency')
    refuses({ fetch: 'fetch' }, 'fetch')
  })
})
