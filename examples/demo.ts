/**
 * The main job in one script: create a key, verify it, rotate it with a grace period, revoke it.
 * Run with `npm run demo`. Uses the in-memory store, so nothing needs to be running.
 */
import { KeyManager } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'

const keys = new KeyManager({
  store: new MemoryStore(),
  prefix: 'acme',
  environments: ['live', 'test'],
  roles: { admin: ['*'], readonly: ['data:read'] },
  // In production, read the pepper from your secret manager (e.g. process.env.KEY_PEPPER).
  pepper: process.env.KEY_PEPPER ?? 'demo-pepper-do-not-use-in-production',
  expiry: { default: '90d', max: '365d' },
  maxKeysPerOwner: (owner) => (owner.role === 'admin' ? Infinity : 2),
})

keys.on('rejected', (event) => console.log(`  [event] rejected: ${event.reason} (key ${event.keyId ?? 'unknown'})`))

function show(label: string, result: Awaited<ReturnType<typeof keys.verify>>): void {
  console.log(`${label.padEnd(44)} -> ${result.valid ? `valid, scopes ${result.scopes.join(', ')}` : `invalid: ${result.reason}`}`)
}

const { key, token } = await keys.create({
  name: 'CI pipeline',
  ownerId: 'user_1',
  environment: 'live',
  roles: ['readonly'],
  expiresIn: '30d',
})
console.log('Created key', key.id, `(${key.name}, shown as ${key.start}…, expires ${key.expiresAt?.toISOString()})`)
console.log('Token, shown once:', token, '\n')

show('verify with data:read', await keys.verify(token, { scopes: ['data:read'], environment: 'live' }))
show('verify with data:write', await keys.verify(token, { scopes: ['data:write'] }))
show('verify in the test environment', await keys.verify(token, { environment: 'test' }))
show('verify a mistyped token (no store access)', await keys.verify(token.slice(0, -1) + (token.endsWith('x') ? 'y' : 'x')))

const rotated = await keys.rotate(key.id, { gracePeriod: '1h' })
console.log('\nRotated: new token', rotated.token)
show('old token during the grace period', await keys.verify(token))
show('new token', await keys.verify(rotated.token))

await keys.disable(key.id)
show('\nnew token while disabled', await keys.verify(rotated.token))
await keys.enable(key.id)

await keys.create({ name: 'second', ownerId: 'user_1', environment: 'test' })
const third = await keys.create({ name: 'third', ownerId: 'user_1', environment: 'test' }).catch((error: Error) => error)
console.log(`\nA third key for user_1: ${third instanceof Error ? `${third.name} (${(third as { code?: string }).code})` : 'created'}`)

await keys.revoke(key.id)
show('new token after revoke', await keys.verify(rotated.token))
const { items } = await keys.list({ ownerId: 'user_1' })
console.log('\nKeys of user_1:', items.map((item) => `${item.name} [${keys.statusOf(item)}]`).join(', '))

// Writes the buffered lastUsedAt values before the process ends.
await keys.close()
