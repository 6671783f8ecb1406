import { describe, expectTypeOf, it } from 'vitest'
import express from 'express'
import Koa from 'koa'
import Router from '@koa/router'
import { KeyManager, type ApiKey, type RequestDecision } from '../../src/index.js'
import { createRequestVerifier } from '../../src/index.js'
import { apiKeyAuth as expressAuth } from '../../src/http/express.js'
import { apiKeyAuth as koaAuth } from '../../src/http/koa.js'
import { MemoryStore } from '../../adapters/memory/index.js'

const keys = new KeyManager({ store: new MemoryStore() })

describe('HTTP typings', () => {
  it('types req.apiKey in Express handlers without extra setup', () => {
    const app = express()
    app.get('/reports', expressAuth(keys, { scopes: ['data:read'], environment: 'live' }), (req, res) => {
      expectTypeOf(req.apiKey).toEqualTypeOf<ApiKey>()
      res.json({ owner: req.apiKey.ownerId })
    })
    app.use(expressAuth(keys))
  })

  it('types ctx.state.apiKey in Koa and @koa/router handlers without extra setup', () => {
    const app = new Koa()
    const router = new Router()
    router.get('/reports', koaAuth(keys, { scopes: ['data:read'] }), (ctx) => {
      expectTypeOf(ctx.state.apiKey).toEqualTypeOf<ApiKey>()
      ctx.body = { owner: ctx.state.apiKey.ownerId }
    })
    app.use(koaAuth(keys))
    app.use((ctx) => {
      expectTypeOf(ctx.state.apiKey).toEqualTypeOf<ApiKey>()
    })
  })

  it('narrows the request decision', async () => {
    const decision = await createRequestVerifier(keys)({})
    expectTypeOf(decision).toEqualTypeOf<RequestDecision>()
    if (decision.ok) expectTypeOf(decision.key).toEqualTypeOf<ApiKey>()
    else {
      expectTypeOf(decision.status).toEqualTypeOf<400 | 401 | 403 | 429 | 503>()
      expectTypeOf(decision.body).toEqualTypeOf<string>()
    }
  })
})
