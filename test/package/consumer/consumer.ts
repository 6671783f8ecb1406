// Type-checked against the built package (dist/) through its exports map, as a user's project sees it.
import express from 'express'
import Koa from 'koa'
import Router from '@koa/router'
import { KeyManager, createRequestVerifier, type ApiKey } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth as expressAuth } from 'keywarden/express'
import { apiKeyAuth as koaAuth } from 'keywarden/koa'

const keys = new KeyManager({ store: new MemoryStore(), prefix: 'acme' })

const app = express()
app.get('/reports', expressAuth(keys, { scopes: ['data:read'] }), (req, res) => {
  const key: ApiKey = req.apiKey
  res.json({ owner: key.ownerId, name: req.apiKey.name })
  // @ts-expect-error proves req.apiKey is an ApiKey, not any
  void req.apiKey.notAField
})

const koa = new Koa()
const router = new Router()
router.get('/reports', koaAuth(keys, { scopes: ['data:read'] }), (ctx) => {
  const key: ApiKey = ctx.state.apiKey
  ctx.body = { owner: key.ownerId, name: ctx.state.apiKey.name }
  // @ts-expect-error proves ctx.state.apiKey is an ApiKey, not any
  void ctx.state.apiKey.notAField
})
koa.use(router.routes())

export const check = createRequestVerifier(keys)
