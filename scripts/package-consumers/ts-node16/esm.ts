// TypeScript consumer, module node16, ESM side: the `import` condition and its .d.ts types.
import express from 'express'
import Koa from 'koa'
import { KeyManager, type ApiKey } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { apiKeyAuth as expressAuth } from 'keywarden/express'
import { apiKeyAuth as koaAuth } from 'keywarden/koa'

const keys = new KeyManager({ store: new MemoryStore(), prefix: 'acme' })

const app = express()
app.get('/whoami', expressAuth(keys, { scopes: ['data:read'] }), (req, res) => {
  const key: ApiKey = req.apiKey
  res.json({ id: key.id, owner: req.apiKey.ownerId })
  // @ts-expect-error req.apiKey must stay an ApiKey, not any: an unknown field is an error
  void req.apiKey.nonexistentField
})

const koa = new Koa()
koa.use(koaAuth(keys, { scopes: ['data:read'] }))
koa.use((ctx) => {
  const key: ApiKey = ctx.state.apiKey
  ctx.body = { id: key.id, owner: ctx.state.apiKey.ownerId }
  // @ts-expect-error ctx.state.apiKey must stay an ApiKey, not any: an unknown field is an error
  void ctx.state.apiKey.nonexistentField
})
