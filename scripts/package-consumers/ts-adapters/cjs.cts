// TypeScript consumer, CommonJS side (.cts): the `require` condition and the .d.cts types of the adapters.
import Fastify = require('fastify')
import keywarden = require('keywarden')
import memory = require('keywarden/adapters/memory')
import fastifyAdapter = require('keywarden/fastify')
import honoAdapter = require('keywarden/hono')
import fetchAdapter = require('keywarden/fetch')

const keys = new keywarden.KeyManager({ store: new memory.MemoryStore(), prefix: 'acme' })
const app = Fastify.fastify()
app.get('/whoami', { preHandler: fastifyAdapter.apiKeyAuth(keys) }, async (request) => {
  const key: keywarden.ApiKey = request.apiKey
  return { id: key.id }
})
const guards = [honoAdapter.apiKeyAuth(keys), fetchAdapter.withApiKey(keys, {}, (_request, { key }) => new Response(key.id))]
void guards
