/**
 * keys.reportLeak: a reported token is confirmed against the store (current secret, or the previous
 * one in its grace period) without counting a use, and a genuine one takes its key out of service
 * through the ordinary revoke / disable paths, with the secret-scanning actor, a reason, an audit
 * entry and a `leaked` event; nothing about the token goes anywhere.
 */
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { SqliteStore } from '../../adapters/sql/index.js'
import { KeyManager, StoreError, ValidationError, type KeyEvent, type KeyEventName, type LeakReport } from '../../src/index.js'
import { ALL_EVENTS, countingStore, PEPPER, recordEvents, rejectionOf, setup } from '../helpers.js'
import { Database } from '../support/sqlite.js'

const EVENTS: KeyEventName[] = [...ALL_EVENTS, 'leaked', 'credits_changed']
const URL_OF_LEAK = 'https://github.com/octo/app/blob/4e1f0c2/config/.env'
const SYSTEM = { type: 'system', id: 'secret-scanning' }

const secretOf = (token: string) => token.split('_')[3]!.slice(0, 32)

function everything(...values: unknown[]): string {
  return values.map((value) => inspect(value, { depth: 10 }) + JSON.stringify(value)).join('\n')
}

describe('keys.reportLeak: a genuine token', () => {
  it('revokes the key with the secret-scanning actor and a reason, audited, and says so', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'CI', ownerId: 'u1', environment: 'live', scopes: ['data:read'] })
    const events = recordEvents(keys, EVENTS)
    time.advance(1_000)

    const report = await keys.reportLeak(token, { source: 'commit', url: URL_OF_LEAK })

    expect(report).toEqual({ label: 'true_positive', keyId: key.id, action: 'revoked' } satisfies LeakReport)
    const after = (await keys.get(key.id))!
    expect(after.revokedAt).toEqual(new Date(time.now))
    expect(after.updatedBy).toEqual(SYSTEM)
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'revoked' })

    const reason = `Leaked: found by secret scanning (source: commit) at ${URL_OF_LEAK}`
    const { items } = await keys.audit({ keyId: key.id })
    expect(items.map((entry) => entry.action)).toEqual(['revoked', 'created'])
    expect(items[0]).toMatchObject({ action: 'revoked', actor: SYSTEM, reason })

    expect(events.map((event) => event.type)).toEqual(['revoked', 'leaked', 'rejected'])
    expect(events[0]).toMatchObject({ type: 'revoked', actor: SYSTEM, reason })
    expect(events[1]).toEqual({ type: 'leaked', at: new Date(time.now), key: after, action: 'revoked', source: 'commit', url: URL_OF_LEAK })
  })

  it('names the reporter given, as the GitHub handler does', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    await keys.reportLeak(token, { source: 'commit', url: URL_OF_LEAK, reporter: 'GitHub secret scanning' })
    const { items } = await keys.audit({ keyId: key.id, action: 'revoked' })
    expect(items[0]!.reason).toBe(`Leaked: found by GitHub secret scanning (source: commit) at ${URL_OF_LEAK}`)
  })

  it("disables it with action: 'disable', keeping who and why on the key", async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    const events = recordEvents(keys, EVENTS)
    const report = await keys.reportLeak(token, { source: 'issue', action: 'disable' })
    expect(report).toEqual({ label: 'true_positive', keyId: key.id, action: 'disabled' })
    const after = (await keys.get(key.id))!
    expect(after).toMatchObject({ enabled: false, revokedAt: null, disabledBy: SYSTEM, disabledReason: 'Leaked: found by secret scanning (source: issue)' })
    expect(events.map((event) => event.type)).toEqual(['disabled', 'leaked'])
    expect(events[1]).toMatchObject({ action: 'disabled', source: 'issue', url: null, key: after })
    expect((await keys.audit({ keyId: key.id })).items[0]).toMatchObject({ action: 'disabled', actor: SYSTEM })
  })

  it('leaves a key that already is out of service as it is: still a true positive, no error, no second change', async () => {
    const { keys } = setup()
    const revoked = await keys.create({ name: 'gone', environment: 'live' })
    await keys.revoke(revoked.key.id)
    const disabled = await keys.create({ name: 'off', environment: 'live' })
    await keys.disable(disabled.key.id)
    const events = recordEvents(keys, EVENTS)

    expect(await keys.reportLeak(revoked.token)).toEqual({ label: 'true_positive', keyId: revoked.key.id, action: 'none' })
    expect(await keys.reportLeak(revoked.token, { action: 'disable' })).toEqual({ label: 'true_positive', keyId: revoked.key.id, action: 'none' })
    expect(await keys.reportLeak(disabled.token, { action: 'disable' })).toEqual({ label: 'true_positive', keyId: disabled.key.id, action: 'none' })
    // A disabled key is revoked all the same: disabling was reversible.
    expect(await keys.reportLeak(disabled.token)).toEqual({ label: 'true_positive', keyId: disabled.key.id, action: 'revoked' })

    expect(events.map((event) => `${event.type}:${'action' in event ? event.action : ''}`)).toEqual(['leaked:none', 'leaked:none', 'leaked:none', 'revoked:', 'leaked:revoked'])
    expect((await keys.audit({ keyId: revoked.key.id })).items.map((entry) => entry.action)).toEqual(['revoked', 'created'])
  })

  it('counts one revocation when the same token is reported twice at once', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    const events = recordEvents(keys, ['leaked', 'revoked'])
    const reports = await Promise.all([keys.reportLeak(token, { url: 'https://a.example' }), keys.reportLeak(token, { url: 'https://b.example' })])
    expect(reports.map((report) => report.action).sort()).toEqual(['none', 'revoked'])
    expect(reports.every((report) => report.label === 'true_positive')).toBe(true)
    expect(events.filter((event) => event.type === 'revoked')).toHaveLength(1)
    expect(events.filter((event) => event.type === 'leaked')).toHaveLength(2)
    expect((await keys.audit({ keyId: key.id, action: 'revoked' })).items).toHaveLength(1)
  })

  it('takes an expired key out of service too (an update could extend it)', async () => {
    const { keys, time } = setup()
    const { key, token } = await keys.create({ name: 'old', environment: 'live', expiresIn: '1d' })
    time.advance(2 * 86_400_000)
    expect(await keys.reportLeak(token)).toEqual({ label: 'true_positive', keyId: key.id, action: 'revoked' })
  })

  it('confirms the previous secret during a rotation grace period, and not after it', async () => {
    const { keys, time } = setup()
    const inGrace = await keys.create({ name: 'a', environment: 'live' })
    await keys.rotate(inGrace.key.id, { gracePeriod: '1h' })
    expect(await keys.reportLeak(inGrace.token)).toEqual({ label: 'true_positive', keyId: inGrace.key.id, action: 'revoked' })

    const pastGrace = await keys.create({ name: 'b', environment: 'live' })
    const rotated = await keys.rotate(pastGrace.key.id, { gracePeriod: '1h' })
    time.advance(60 * 60 * 1000)
    expect(await keys.reportLeak(pastGrace.token)).toEqual({ label: 'false_positive', keyId: pastGrace.key.id, action: 'none' })
    expect((await keys.get(pastGrace.key.id))!.revokedAt).toBeNull()
    expect(await keys.reportLeak(rotated.token)).toMatchObject({ label: 'true_positive', action: 'revoked' })
  })
})

describe('keys.reportLeak: anything else is a false positive', () => {
  it('an unknown key: one store read, a dummy comparison, nothing changed', async () => {
    const { store, calls } = countingStore(new MemoryStore())
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    const parsed = keys.splitToken(token)!
    const unknownId = 'Qw3rTy7uIo9pAs2d'
    const forged = keys.joinToken({ keyId: unknownId, secret: parsed.secret, environment: 'live' })
    const events = recordEvents(keys, EVENTS)
    const before = calls['get'] ?? 0
    expect(await keys.reportLeak(forged)).toEqual({ label: 'false_positive', keyId: unknownId, action: 'none' })
    expect((calls['get'] ?? 0) - before).toBe(1)
    expect(calls['update']).toBeUndefined()
    expect(events).toEqual([])
  })

  it('a wrong secret for a real key ID: the key stays as it is', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    const other = await keys.create({ name: 'other', environment: 'live' })
    const forged = keys.joinToken({ keyId: key.id, secret: keys.splitToken(other.token)!.secret, environment: 'live' })
    const events = recordEvents(keys, EVENTS)
    expect(await keys.reportLeak(forged)).toEqual({ label: 'false_positive', keyId: key.id, action: 'none' })
    // The right key ID and secret in the token of another environment: the hash binds the environment.
    const otherEnvironment = keys.joinToken({ ...keys.splitToken(token)!, environment: 'test' })
    expect(await keys.reportLeak(otherEnvironment)).toEqual({ label: 'false_positive', keyId: key.id, action: 'none' })
    expect(await keys.get(key.id)).toEqual(key)
    expect(events).toEqual([])
  })

  it('a token of another prefix, garbage, a typo and non-strings: no store access at all', async () => {
    const { store, calls } = countingStore(new MemoryStore())
    const { keys } = setup({ store })
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    const foreign = (await setup({ prefix: 'other' }).keys.create({ name: 'x', environment: 'live' })).token
    const typo = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')
    const before = calls['get'] ?? 0
    for (const candidate of [foreign, typo, 'hello', '', `${token} `, 'acme_live_' + 'a'.repeat(60)]) {
      expect(await keys.reportLeak(candidate)).toEqual({ label: 'false_positive', keyId: null, action: 'none' })
    }
    // Documented choice: a token that is not a string is a false positive like any other garbage.
    for (const candidate of [123, null, undefined, { token }, [token]]) {
      expect(await keys.reportLeak(candidate as unknown as string)).toEqual({ label: 'false_positive', keyId: null, action: 'none' })
    }
    expect((calls['get'] ?? 0) - before).toBe(0)
    expect((await keys.verify(token)).valid).toBe(true)
  })
})

describe('keys.reportLeak: no use is counted', () => {
  it('leaves lastUsedAt, rate limits and credits alone, and never goes through verify', async () => {
    const { keys } = setup({ limits: { policies: { tiny: { rate: [{ name: 'one', limit: 1, window: '1h' }] } } } })
    const { key, token } = await keys.create({ name: 'metered', environment: 'live', policy: 'tiny', credits: 1 })
    const events = recordEvents(keys, EVENTS)
    expect(await keys.reportLeak(token, { action: 'disable' })).toMatchObject({ label: 'true_positive', action: 'disabled' })
    await keys.flush()
    expect((await keys.get(key.id))!.lastUsedAt).toBeNull()
    expect(events.map((event) => event.type)).toEqual(['disabled', 'leaked'])
    // The one request an hour and the one credit are still there: the report spent neither.
    expect(await keys.getCredits({ keyId: key.id })).toMatchObject({ remaining: 1 })
    await keys.enable(key.id)
    expect(await keys.verify(token)).toMatchObject({ valid: true, credits: { remaining: 0 } })
  })

  it('reads the store, not the verify cache, and the revoke reaches the cache at once', async () => {
    const { store, calls } = countingStore(new MemoryStore())
    const { keys } = setup({ store, cache: { ttl: '1m' } })
    const { key, token } = await keys.create({ name: 'cached', environment: 'live' })
    expect((await keys.verify(token)).valid).toBe(true)
    expect((await keys.verify(token)).valid).toBe(true)
    const before = calls['get'] ?? 0
    // A rotation the cache has not seen would not fool it either; this one it has seen, so just count reads.
    await keys.reportLeak(token)
    expect((calls['get'] ?? 0) - before).toBeGreaterThanOrEqual(2) // the report's own read, then the revoke's
    expect(await keys.verify(token)).toMatchObject({ valid: false, reason: 'revoked', keyId: key.id })
  })
})

describe('keys.reportLeak: the token goes nowhere', () => {
  it('keeps the token and its secret out of the report, events, audit, reason and errors, even when the url quotes it', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    const secret = secretOf(token)
    const events: KeyEvent[] = recordEvents(keys, EVENTS)
    const url = `https://example.com/paste?key=${token}&again=${secret}`
    const report = await keys.reportLeak(token, { source: `found ${secret}`, url })
    const audit = await keys.audit({ keyId: key.id })
    expect(audit.items[0]!.reason).toBe('Leaked: found by secret scanning (source: found [redacted]) at https://example.com/paste?key=[redacted]&again=[redacted]')
    expect(events.find((event) => event.type === 'leaked')).toMatchObject({ url: 'https://example.com/paste?key=[redacted]&again=[redacted]', source: 'found [redacted]' })

    const errors = [
      await rejectionOf(keys.reportLeak(token, { source: `${token}\n` })),
      await rejectionOf(keys.reportLeak(token, { [token]: 1 } as never)),
      await rejectionOf(keys.reportLeak(token, { url: token.repeat(40) })),
    ]
    for (const error of errors) expect(error).toBeInstanceOf(ValidationError)
    const seen = everything(report, events, audit, errors, errors.map((error) => (error as Error).stack))
    expect(seen).not.toContain(token)
    expect(seen).not.toContain(secret)
    expect(seen).not.toContain(secret.slice(0, 16))
  })

  it('keeps the reason within 1,000 characters, cut without splitting a character', async () => {
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    const url = `https://github.com/octo/app/blob/main/${'😀'.repeat(1000)}`
    await keys.reportLeak(token, { source: 'commit', url })
    const reason = (await keys.audit({ keyId: key.id })).items[0]!.reason!
    expect(reason.length).toBeLessThanOrEqual(1000)
    expect(reason.endsWith('…')).toBe(true)
    expect(reason).toMatch(/^[^\p{Cs}]*$/u)
  })
})

describe('keys.reportLeak: validation and failures', () => {
  it('refuses bad options with a ValidationError naming the field, before any store access', async () => {
    const { store, calls } = countingStore(new MemoryStore())
    const { keys } = setup({ store })
    const { key, token } = await keys.create({ name: 'CI', environment: 'live' })
    const before = calls['get'] ?? 0
    const cases: [unknown, string][] = [
      [{ source: 'x'.repeat(257) }, 'source'],
      [{ source: 42 }, 'source'],
      [{ url: 'x'.repeat(2049) }, 'url'],
      [{ url: 'https://example.com/\u0000' }, 'url'],
      [{ url: 'line\nbreak' }, 'url'],
      [{ action: 'delete' }, 'action'],
      [{ reporter: '' }, 'reporter'],
      [{ reporter: 'r'.repeat(101) }, 'reporter'],
      [{ sauce: 'commit' }, '(unknown field)'],
      [null, ''],
      ['commit', ''],
    ]
    for (const [options, field] of cases) {
      const error = await rejectionOf(keys.reportLeak(token, options as never))
      expect(error, JSON.stringify(options)).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).field, JSON.stringify(options)).toBe(field)
    }
    expect((calls['get'] ?? 0) - before).toBe(0)
    expect((await keys.get(key.id))!.revokedAt).toBeNull()
    // The limits themselves are accepted, and null means "not known".
    expect(await keys.reportLeak(token, { source: 'x'.repeat(256), url: null, action: 'disable' })).toMatchObject({ label: 'true_positive' })
  })

  it('lets a StoreError through when the store fails (a SQLite database that was closed)', async () => {
    const database = new Database(':memory:')
    const store = new SqliteStore({ database, table: 'leaks' })
    await store.migrate()
    const keys = new KeyManager({ store, prefix: 'acme', environments: ['live'], pepper: PEPPER })
    const { token } = await keys.create({ name: 'CI', environment: 'live' })
    database.close()
    const error = await rejectionOf(keys.reportLeak(token, { source: 'commit' }))
    expect(error).toBeInstanceOf(StoreError)
    expect(everything(error)).not.toContain(secretOf(token))
    // Garbage needs no store, so it is still answered.
    expect(await keys.reportLeak('garbage')).toMatchObject({ label: 'false_positive' })
  })
})
