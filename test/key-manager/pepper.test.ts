/**
 * The pepper: never printed by any public object, never silently missing, and never bypassed by an
 * unpeppered hash that someone wrote into the store (findings 2, 3 and 4 of the security review).
 */
import { createHash } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { ConfigError, KeyManager, type KeyEvent } from '../../src/index.js'
import { formatToken } from '../../src/token/format.js'
import { ALL_EVENTS, recordEvents, setup } from '../helpers.js'

const STRING_PEPPER = 'pepper-string-0123456789-abcdefghijklmnop'
const BYTES_PEPPER = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)

/** Every form in which pepper bytes could be printed: as given, hex, base64 and base64url. */
function forms(pepper: string | Uint8Array): string[] {
  const bytes = Buffer.from(typeof pepper === 'string' ? Buffer.from(pepper, 'utf8') : pepper)
  const hex = bytes.toString('hex')
  return [typeof pepper === 'string' ? pepper : '', hex, hex.match(/../g)!.join(' '), bytes.toString('base64'), bytes.toString('base64url'), [...bytes].join(',')].filter(
    (form) => form.length > 0,
  )
}

/** An unpeppered stored hash, computed from the documented scheme as a database writer would. */
function unpepperedHash(environment: string, keyId: string, secret: string): string {
  return `kw1$sha256$-$${createHash('sha256').update(`keywarden/v1\0${environment}\0${keyId}\0${secret}`).digest('hex')}`
}

describe('the pepper is never printed', () => {
  it.each([
    ['a string pepper', STRING_PEPPER],
    ['a byte pepper', BYTES_PEPPER],
  ])('with %s, console.log, util.inspect and JSON.stringify of the manager and its options show pepper IDs only', async (_, pepper) => {
    const { keys } = setup({ pepper: [{ id: 'current', secret: pepper }, { id: 'old', secret: STRING_PEPPER + '-old' }] })
    const events = recordEvents(keys, ALL_EVENTS)
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    await keys.verify(token)
    await keys.rotate(key.id)
    const printed = [
      inspect(keys, { depth: Infinity, showHidden: true }),
      inspect(keys.options, { depth: Infinity, showHidden: true }),
      JSON.stringify(keys),
      JSON.stringify(keys.options),
      JSON.stringify(events),
      inspect(events, { depth: Infinity }),
    ].join('\n')
    for (const form of [...forms(pepper), ...forms(STRING_PEPPER + '-old')]) expect(printed).not.toContain(form)
    expect(keys.options.pepperIds).toEqual(['current', 'old'])
    expect(JSON.parse(JSON.stringify(keys.options))).toMatchObject({ pepperIds: ['current', 'old'] })
  })

  it('changing the pepper buffer after construction changes nothing', async () => {
    const bytes = Uint8Array.from(BYTES_PEPPER)
    const { keys } = setup({ pepper: bytes })
    const { token } = await keys.create({ name: 'x', environment: 'live' })
    bytes.fill(0)
    expect((await keys.verify(token)).valid).toBe(true)
  })
})

describe('an unset pepper variable', () => {
  it('is a ConfigError naming pepper when the option is present but undefined', () => {
    const environment: Record<string, string | undefined> = {}
    let error: unknown
    try {
      new KeyManager({ store: new MemoryStore(), pepper: environment['KEY_PEPPER'] })
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).issues.map((issue) => issue.path.join('.'))).toEqual(['pepper'])
    expect((error as ConfigError).message).toContain('null')
  })

  it('runs without a pepper when asked to with null, hashing with plain SHA-256', async () => {
    const store = new MemoryStore()
    const keys = new KeyManager({ store, pepper: null })
    const { key, token } = await keys.create({ name: 'x', environment: 'live' })
    expect((await store.get(key.id))!.hash.startsWith('kw1$sha256$-$')).toBe(true)
    expect((await keys.verify(token)).valid).toBe(true)
    expect(keys.options.pepperIds).toEqual([])
  })
})

describe('a hash of a weaker scheme planted in the store', () => {
  /** A key under a pepper, then its row overwritten with an unpeppered hash of a secret the writer chose. */
  async function planted(options: { acceptUnpepperedHashes?: boolean } = {}) {
    const { keys, store } = setup(options)
    const { key } = await keys.create({ name: 'victim', environment: 'live', scopes: ['data:read'] })
    const stored = (await store.get(key.id))!
    const chosen = 'Chosen0Secret0By0The0Writer00001'
    expect(await store.update({ ...stored, hash: unpepperedHash('live', key.id, chosen), version: stored.version + 1 }, stored.version)).toBe('updated')
    const token = formatToken({ prefix: 'acme', environment: 'live', keyId: key.id, secret: chosen })
    return { keys, store, key, token, events: recordEvents(keys, ALL_EVENTS) }
  }

  it('does not verify when a pepper is configured, and the planted row stays as it is (the trace is kept)', async () => {
    const { keys, store, key, token, events } = await planted()
    const before = await store.get(key.id)
    expect(await keys.verify(token, { scopes: ['data:read'] })).toEqual({ valid: false, reason: 'wrong_secret', keyId: key.id })
    expect(await store.get(key.id)).toEqual(before)
    expect(events.map((event) => event.type)).toEqual(['rejected'])
  })

  it('verifies during an opted-in migration window, re-hashes with the pepper and says so in a rehashed event', async () => {
    const { keys, store, key, token, events } = await planted({ acceptUnpepperedHashes: true })
    expect((await keys.verify(token)).valid).toBe(true)
    expect((await store.get(key.id))!.hash.startsWith('kw1$hmac-sha256$default$')).toBe(true)
    const rehashed = events.find((event): event is Extract<KeyEvent, { type: 'rehashed' }> => event.type === 'rehashed')
    expect(rehashed).toMatchObject({ key: { id: key.id }, fromPepperId: null, toPepperId: 'default', previousSecret: false })
    expect(JSON.stringify(rehashed)).not.toContain('kw1$')
  })

  it('is what keys made before a pepper was introduced look like: refused by default, accepted in the window', async () => {
    const store = new MemoryStore()
    const { token } = await setup({ store, pepper: null }).keys.create({ name: 'old', environment: 'live' })
    expect(await setup({ store }).keys.verify(token)).toMatchObject({ valid: false, reason: 'wrong_secret' })
    expect((await setup({ store, acceptUnpepperedHashes: true }).keys.verify(token)).valid).toBe(true)
    // Re-hashed in the window: valid from now on without it.
    expect((await setup({ store }).keys.verify(token)).valid).toBe(true)
  })

  it('emits rehashed for a pepper rotation too, naming both pepper IDs', async () => {
    const store = new MemoryStore()
    const { token } = await setup({ store, pepper: [{ id: 'v1', secret: STRING_PEPPER }] }).keys.create({ name: 'x', environment: 'live' })
    const { keys } = setup({ store, pepper: [{ id: 'v2', secret: STRING_PEPPER + '-2' }, { id: 'v1', secret: STRING_PEPPER }] })
    const events = recordEvents(keys, ['rehashed'])
    expect((await keys.verify(token)).valid).toBe(true)
    expect(events).toMatchObject([{ type: 'rehashed', fromPepperId: 'v1', toPepperId: 'v2' }])
    expect((await keys.verify(token)).valid).toBe(true)
    expect(events).toHaveLength(1)
  })
})

describe('printing a manager', () => {
  it('shows no stored hash either, even on the memory store', async () => {
    const { keys, store } = setup()
    const { key } = await keys.create({ name: 'x', environment: 'live' })
    const hash = (await store.get(key.id))!.hash
    const digest = hash.slice(hash.lastIndexOf('$') + 1)
    for (const text of [inspect(keys, { depth: Infinity, showHidden: true }), inspect(store, { depth: Infinity, showHidden: true }), JSON.stringify(keys)]) {
      expect(text).not.toContain(digest)
    }
  })
})
