// TypeScript consumer, module node16, CommonJS side (.cts): the `require` condition and its .d.cts types.
import express = require('express')
import keywarden = require('keywarden')
import memory = require('keywarden/adapters/memory')
import expressAdapter = require('keywarden/express')

const keys = new keywarden.KeyManager({ store: new memory.MemoryStore(), prefix: 'acme' })

const app = express()
app.get('/whoami', expressAdapter.apiKeyAuth(keys), (req, res) => {
  const key: keywarden.ApiKey = req.apiKey
  res.json({ id: key.id })
  // @ts-expect-error req.apiKey must stay an ApiKey, not any: an unknown field is an error
  void req.apiKey.nonexistentField
})
