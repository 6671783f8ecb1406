// TypeScript consumer, moduleResolution bundler (as in Vite or esbuild projects).
import express from 'express'
import { KeyManager, KeywardenError, createRequestVerifier, type ApiKey, type KeyManagerOptions } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { SqliteStore, type SqliteDatabase } from 'keywarden/adapters/sql'
import { apiKeyAuth } from 'keywarden/express'

const options: KeyManagerOptions = { store: new MemoryStore(), prefix: 'acme', environments: ['live', 'test'] }
const keys = new KeyManager(options)

// The SQL stores type their driver as a structural interface: no driver types are needed to compile.
export function sqliteKeys(database: SqliteDatabase): KeyManager {
  return new KeyManager({ store: new SqliteStore({ database }) })
}

const app = express()
app.get('/whoami', apiKeyAuth(keys, { scopes: ['data:read'], environment: 'live' }), (req, res) => {
  const key: ApiKey = req.apiKey
  res.json({ id: key.id, scopes: req.apiKey.scopes })
  // @ts-expect-error req.apiKey must stay an ApiKey, not any: an unknown field is an error
  void req.apiKey.nonexistentField
})

// The framework-agnostic check takes Fetch API headers too.
const check = createRequestVerifier(keys)
export async function handle(request: Request): Promise<number> {
  const decision = await check(request.headers)
  return decision.ok ? 200 : decision.status
}

export function isKeywardenError(error: unknown): boolean {
  return error instanceof KeywardenError
}
