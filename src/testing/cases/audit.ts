/**
 * Conformance cases for the audit trail ({@link AuditStore}): each entry is written with its change and
 * only when the change happens, listed newest first by `(at, id)` with every filter and keyset paging,
 * pruned oldest first in bounded batches, exactly once under concurrency; and the actor fields of a
 * stored key round-trip.
 */
import { isAuditStore, type Actor, type AuditQuery, type AuditRecord, type AuditStore } from '../../audit/audit-store.js'
import { isUsageStore, type CreditPool } from '../../limits/usage-store.js'
import type { InsertResult, KeyStore, UpdateResult } from '../../store.js'
import { makeRecord, T0 } from '../records.js'
import { count, insertAll, nextVersion, query, type SuiteContext } from './case-helpers.js'

/** The store as an AuditStore; a store without an audit trail fails here, naming the way out. */
function auditOf(store: KeyStore): KeyStore & AuditStore {
  if (!isAuditStore(store)) throw new Error('the store does not implement AuditStore (listAudit, pruneAudit): implement it, or pass audit: false')
  return store
}

/** A complete entry about key `key0001`, at {@link T0}, with no actor; `overrides` replaces any field. */
function entry(id: string, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id,
    at: T0,
    action: 'updated',
    keyId: 'key0001',
    ownerId: null,
    tenantId: null,
    actor: null,
    reason: null,
    requestId: null,
    changes: { name: { from: 'before', to: 'after' } },
    ...structuredClone(overrides),
  }
}

/** An entry as a credit adjustment hands it over: the store adds `changes`. */
function creditEntry(id: string, overrides: Partial<Omit<AuditRecord, 'changes'>> = {}): Omit<AuditRecord, 'changes'> {
  return { id, at: T0, action: 'credits_changed', keyId: null, ownerId: null, tenantId: null, actor: null, reason: null, requestId: null, ...structuredClone(overrides) }
}

/** Everything the trail holds, newest first. */
function allEntries(store: AuditStore, filters: Omit<Partial<AuditQuery>, 'limit'> = {}): Promise<AuditRecord[]> {
  return store.listAudit({ ...filters, limit: 1000 })
}

async function entryIds(store: AuditStore, filters: Omit<Partial<AuditQuery>, 'limit'> = {}): Promise<string[]> {
  return (await allEntries(store, filters)).map((item) => item.id)
}

/**
 * Writes each entry with a change, in the given order: the first entry of a key inserts it, the next
 * ones update it; an entry with no key rides on the insert of a record of its own.
 */
async function writeEntries(store: KeyStore, entries: readonly AuditRecord[]): Promise<void> {
  for (const [index, item] of entries.entries()) {
    const id = item.keyId ?? `carrier${index}`
    const current = await store.get(id)
    const outcome: InsertResult | UpdateResult =
      current === null
        ? await store.insert(makeRecord({ id, ownerId: item.ownerId, tenantId: item.tenantId }), null, item)
        : await store.update(nextVersion(current), current.version, item)
    if (outcome !== 'inserted' && outcome !== 'updated') throw new Error(`setup: writing audit entry ${item.id} returned ${outcome}`)
  }
}

/** Walks the trail page by page with `before`, as a cursor does, and returns the IDs of every page. */
async function walkPages(store: AuditStore, limit: number, filters: Omit<Partial<AuditQuery>, 'limit' | 'before'> = {}): Promise<string[][]> {
  const pages: string[][] = []
  let before: AuditQuery['before']
  // More pages than entries would mean a cursor that does not advance.
  for (let turn = 0; turn <= 1000; turn++) {
    const page = await store.listAudit({ ...filters, limit, ...(before === undefined ? {} : { before }) })
    if (page.length === 0) return pages
    pages.push(page.map((item) => item.id))
    if (page.length < limit) return pages
    const last = page[page.length - 1]!
    before = { at: last.at, id: last.id }
  }
  throw new Error(`paging with limit ${limit} did not end`)
}

/** Entries for the filter cases: keys k1-k4, owners alice and bob, tenants t1 and t2, actors of every type. */
const FILTERED: readonly AuditRecord[] = [
  entry('f1', { at: T0 + 1, action: 'created', keyId: 'k1', ownerId: 'alice', tenantId: 't1', actor: { type: 'user', id: 'u1' } }),
  entry('f2', { at: T0 + 2, action: 'updated', keyId: 'k1', ownerId: 'alice', tenantId: 't1', actor: { type: 'user', id: 'u2', tenantId: 't1' } }),
  entry('f3', { at: T0 + 3, action: 'disabled', keyId: 'k2', ownerId: 'alice', tenantId: 't2', actor: { type: 'service', id: 'u1' } }),
  entry('f4', { at: T0 + 4, action: 'updated', keyId: 'k3', ownerId: 'bob', tenantId: 't1', actor: null }),
  entry('f5', { at: T0 + 5, action: 'credits_changed', keyId: null, ownerId: 'bob', tenantId: 't1', actor: { type: 'system', id: 'cron' } }),
  entry('f6', { at: T0 + 6, action: 'revoked', keyId: 'k1', ownerId: 'alice', tenantId: 't1', actor: { type: 'key', id: 'u1' } }),
  // The actor's tenant is not the entry's: the tenantId filter looks at the entry only.
  entry('f7', { at: T0 + 7, action: 'updated', keyId: 'k4', ownerId: null, tenantId: null, actor: { type: 'user', id: 'u2', tenantId: 't1' } }),
  entry('f8', { at: T0 + 8, action: 'deleted', keyId: 'k1', ownerId: 'alice', tenantId: 't1', actor: null }),
]

/** Entries for the paging cases, ties on `at` among IDs that differ in case (digits < upper < '_' < lower). */
const PAGED: readonly AuditRecord[] = [
  entry('x', { at: T0 + 2, keyId: 'k2' }),
  entry('a1', { at: T0 + 1, keyId: 'k1' }),
  entry('M', { at: T0 + 3, keyId: 'k1' }),
  entry('z', { at: T0 + 5, keyId: 'k2' }),
  entry('A1', { at: T0 + 1, keyId: 'k2' }),
  entry('_m', { at: T0 + 3, keyId: 'k1' }),
  entry('01', { at: T0 + 4, keyId: 'k1' }),
  entry('B1', { at: T0 + 1, keyId: 'k1' }),
  entry('m', { at: T0 + 3, keyId: 'k2' }),
  entry('Z', { at: T0 + 5, keyId: 'k1' }),
]
const PAGED_ORDER = ['z', 'Z', '01', 'm', '_m', 'M', 'x', 'a1', 'B1', 'A1']

export function auditTests({ test, expect }: SuiteContext): void {
  test('audit: an insert writes its entry', async (store) => {
    const audit = auditOf(store)
    const record = makeRecord({ id: 'k1', ownerId: 'alice', tenantId: 't1' })
    const created = entry('e1', { action: 'created', keyId: 'k1', ownerId: 'alice', tenantId: 't1', actor: { type: 'user', id: 'u_42' }, changes: {} })
    expect(await audit.insert(record, null, created)).toBe('inserted')
    expect(await audit.listAudit({ limit: 10 })).toEqual([created])
    expect(await audit.get('k1')).toEqual(record)
  })

  test('audit: an insert that returns id_taken or quota_exceeded writes no entry', async (store) => {
    const audit = auditOf(store)
    const first = entry('e1', { action: 'created', keyId: 'k1', ownerId: 'alice' })
    expect(await audit.insert(makeRecord({ id: 'k1', ownerId: 'alice' }), null, first)).toBe('inserted')
    const taken = entry('e2', { action: 'created', keyId: 'k1', ownerId: 'bob', at: T0 + 1 })
    expect(await audit.insert(makeRecord({ id: 'k1', ownerId: 'bob', name: 'second' }), null, taken)).toBe('id_taken')
    const overQuota = entry('e3', { action: 'created', keyId: 'k2', ownerId: 'alice', at: T0 + 2 })
    expect(await audit.insert(makeRecord({ id: 'k2', ownerId: 'alice' }), { ownerId: 'alice', tenantId: null, limit: 1 }, overQuota)).toBe('quota_exceeded')
    expect(await audit.listAudit({ limit: 10 })).toEqual([first])
  })

  test('audit: an update writes its entry only when it returns updated', async (store) => {
    const audit = auditOf(store)
    const original = makeRecord({ id: 'k1', version: 3 })
    await insertAll(audit, [original])
    const conflicting = entry('e1', { keyId: 'k1', at: T0 + 1 })
    expect(await audit.update(nextVersion(original, { version: 3 }), 2, conflicting)).toBe('conflict')
    const missing = entry('e2', { keyId: 'ghost', at: T0 + 2 })
    expect(await audit.update(makeRecord({ id: 'ghost', version: 2 }), 1, missing)).toBe('not_found')
    expect(await audit.listAudit({ limit: 10 })).toEqual([])
    const applied = entry('e3', { keyId: 'k1', at: T0 + 3, actor: { type: 'service', id: 'deployer' } })
    expect(await audit.update(nextVersion(original, { name: 'renamed' }), 3, applied)).toBe('updated')
    expect(await audit.listAudit({ limit: 10 })).toEqual([applied])
  })

  test('audit: a delete writes its entry only when the record existed', async (store) => {
    const audit = auditOf(store)
    await insertAll(audit, [makeRecord({ id: 'k1' })])
    expect(await audit.delete('ghost', entry('e1', { action: 'deleted', keyId: 'ghost' }))).toBe(false)
    expect(await audit.listAudit({ limit: 10 })).toEqual([])
    const deleted = entry('e2', { action: 'deleted', keyId: 'k1', at: T0 + 1, changes: {} })
    expect(await audit.delete('k1', deleted)).toBe(true)
    expect(await audit.delete('k1', entry('e3', { action: 'deleted', keyId: 'k1', at: T0 + 2 }))).toBe(false)
    expect(await audit.listAudit({ limit: 10 })).toEqual([deleted])
  })

  test('audit: a delete keeps the earlier entries of the key', async (store) => {
    const audit = auditOf(store)
    const record = makeRecord({ id: 'k1', ownerId: 'alice', tenantId: 't1' })
    const about = { keyId: 'k1', ownerId: 'alice', tenantId: 't1' }
    const created = entry('e1', { ...about, action: 'created', at: T0 })
    const updated = entry('e2', { ...about, action: 'updated', at: T0 + 1000 })
    const deleted = entry('e3', { ...about, action: 'deleted', at: T0 + 2000, changes: {} })
    expect(await audit.insert(record, null, created)).toBe('inserted')
    expect(await audit.update(nextVersion(record), 1, updated)).toBe('updated')
    expect(await audit.delete('k1', deleted)).toBe(true)
    expect(await audit.get('k1')).toBeNull()
    expect(await allEntries(audit, { keyId: 'k1' })).toEqual([deleted, updated, created])
  })

  test('audit: a credit adjustment writes its entry with changes from the previous to the remaining balance', async (store) => {
    const audit = auditOf(store)
    // Only a store that also keeps credit balances adjusts them; for the others this case proves nothing more.
    if (!isUsageStore(audit)) return
    const shared: CreditPool = { id: 'credits:owner:t1:alice', initial: 100, refill: null }
    const about = { keyId: null, ownerId: 'alice', tenantId: 't1', actor: { type: 'user', id: 'u_42', tenantId: 't1' } } as const
    const topUp = creditEntry('c1', { ...about, at: T0, reason: 'Top up', requestId: 'req-1' })
    const debit = creditEntry('c2', { ...about, at: T0 + 1 })
    expect(await audit.adjustCredits({ pool: shared, now: T0, mode: 'set', amount: 500, audit: topUp })).toEqual({ previous: 100, remaining: 500 })
    expect(await audit.adjustCredits({ pool: shared, now: T0 + 1, mode: 'add', amount: -600, audit: debit })).toEqual({ previous: 500, remaining: 0 })
    // An adjustment that leaves the balance as it was is still a credit change: its entry is written.
    const own: CreditPool = { id: 'credits:key:k1', initial: 0, refill: null }
    const nothing = creditEntry('c3', { at: T0 + 2, keyId: 'k1' })
    expect(await audit.adjustCredits({ pool: own, now: T0 + 2, mode: 'add', amount: 0, audit: nothing })).toEqual({ previous: 0, remaining: 0 })
    expect(await audit.listAudit({ limit: 10 })).toEqual([
      { ...nothing, changes: { credits: { from: 0, to: 0 } } },
      { ...debit, changes: { credits: { from: 500, to: 0 } } },
      { ...topUp, changes: { credits: { from: 100, to: 500 } } },
    ])
  })

  test('audit: calls without an audit argument write no entry', async (store) => {
    const audit = auditOf(store)
    const record = makeRecord({ id: 'k1', ownerId: 'alice' })
    expect(await audit.insert(record, { ownerId: 'alice', tenantId: null, limit: 5 })).toBe('inserted')
    expect(await audit.insert(makeRecord({ id: 'k2' }), null, undefined)).toBe('inserted')
    expect(await audit.update(nextVersion(record), 1)).toBe('updated')
    expect(await audit.delete('k1')).toBe(true)
    await audit.touch('k2', T0 + 5)
    if (isUsageStore(audit)) {
      await audit.adjustCredits({ pool: { id: 'credits:key:k2', initial: 10, refill: null }, now: T0, mode: 'add', amount: 5 })
      await audit.consumeUsage({ now: T0, cost: 1, commit: true, rate: [], credits: { id: 'credits:key:k2', initial: 10, refill: null } })
    }
    expect(await audit.listAudit({ limit: 10 })).toEqual([])
  })

  test('audit: listAudit returns entries newest first by at, then by id in binary order', async (store) => {
    const audit = auditOf(store)
    // Written out of order; at T0 + 5 the IDs differ in case: binary order is '01' < 'A1' < 'B1' < '_1' < 'a1' < 'b1'.
    const written = [
      entry('a1', { at: T0 + 5, keyId: 'k1' }),
      entry('AA', { at: T0 + 9, keyId: 'k2' }),
      entry('01', { at: T0 + 5, keyId: 'k3' }),
      entry('zz', { at: T0 + 1, keyId: 'k1' }),
      entry('B1', { at: T0 + 5, keyId: 'k2' }),
      entry('b1', { at: T0 + 5, keyId: 'k3' }),
      entry('mid', { at: T0 + 3, keyId: 'k1' }),
      entry('_1', { at: T0 + 5, keyId: 'k2' }),
      entry('A1', { at: T0 + 5, keyId: 'k3' }),
    ]
    await writeEntries(audit, written)
    const expected = ['AA', 'b1', 'a1', '_1', 'B1', 'A1', '01', 'mid', 'zz']
    expect(await entryIds(audit)).toEqual(expected)
    const byId = new Map(written.map((item) => [item.id, item]))
    expect(await allEntries(audit)).toEqual(expected.map((id) => byId.get(id)))
  })

  test('audit: listAudit filters by keyId, tenantId, ownerId, actorId and action, alone and combined', async (store) => {
    const audit = auditOf(store)
    await writeEntries(audit, FILTERED)
    const cases: [Omit<Partial<AuditQuery>, 'limit'>, string[]][] = [
      [{}, ['f8', 'f7', 'f6', 'f5', 'f4', 'f3', 'f2', 'f1']],
      [{ keyId: 'k1' }, ['f8', 'f6', 'f2', 'f1']],
      [{ tenantId: 't1' }, ['f8', 'f6', 'f5', 'f4', 'f2', 'f1']],
      [{ ownerId: 'bob' }, ['f5', 'f4']],
      [{ actorId: 'u1' }, ['f6', 'f3', 'f1']],
      [{ action: 'updated' }, ['f7', 'f4', 'f2']],
      [{ keyId: 'k1', actorId: 'u1' }, ['f6', 'f1']],
      [{ tenantId: 't1', ownerId: 'alice', action: 'updated' }, ['f2']],
      [{ tenantId: 't1', actorId: 'u2' }, ['f2']],
      [{ ownerId: 'alice', tenantId: 't2' }, ['f3']],
      [{ ownerId: 'bob', actorId: 'cron', action: 'credits_changed' }, ['f5']],
      [{ keyId: 'k1', ownerId: 'alice', tenantId: 't1', actorId: 'u1', action: 'revoked', from: T0 + 6, to: T0 + 7 }, ['f6']],
      [{ tenantId: 't1', from: T0 + 2, to: T0 + 6 }, ['f5', 'f4', 'f2']],
      [{ keyId: 'k9' }, []],
      [{ actorId: 'nobody' }, []],
      [{ keyId: 'k2', action: 'updated' }, []],
    ]
    const found: [Omit<Partial<AuditQuery>, 'limit'>, string[]][] = []
    for (const [filters] of cases) found.push([filters, await entryIds(audit, filters)])
    expect(found).toEqual(cases)
  })

  test('audit: listAudit from is inclusive and to is exclusive', async (store) => {
    const audit = auditOf(store)
    await writeEntries(audit, [
      entry('t0', { at: T0, keyId: 'k1' }),
      entry('t1a', { at: T0 + 1, keyId: 'k1' }),
      entry('t1b', { at: T0 + 1, keyId: 'k2' }),
      entry('t2', { at: T0 + 2, keyId: 'k2' }),
      entry('t3', { at: T0 + 3, keyId: 'k1' }),
    ])
    const cases: [Omit<Partial<AuditQuery>, 'limit'>, string[]][] = [
      [{ from: T0 + 1 }, ['t3', 't2', 't1b', 't1a']],
      [{ to: T0 + 2 }, ['t1b', 't1a', 't0']],
      [{ from: T0 + 1, to: T0 + 2 }, ['t1b', 't1a']],
      [{ from: T0 + 2, to: T0 + 2 }, []],
      [{ from: T0 + 3 }, ['t3']],
      [{ from: T0 + 4 }, []],
      [{ to: T0 }, []],
      [{ to: T0 + 1 }, ['t0']],
      [{ from: T0, to: T0 + 4 }, ['t3', 't2', 't1b', 't1a', 't0']],
      [{ keyId: 'k1', from: T0 + 1, to: T0 + 4 }, ['t3', 't1a']],
    ]
    const found: [Omit<Partial<AuditQuery>, 'limit'>, string[]][] = []
    for (const [filters] of cases) found.push([filters, await entryIds(audit, filters)])
    expect(found).toEqual(cases)
  })

  test('audit: listAudit returns at most limit entries, the newest ones', async (store) => {
    const audit = auditOf(store)
    await writeEntries(audit, PAGED)
    const found: [number, string[]][] = []
    for (const limit of [1, 2, 5, 10, 11]) found.push([limit, (await audit.listAudit({ limit })).map((item) => item.id)])
    expect(found).toEqual([1, 2, 5, 10, 11].map((limit) => [limit, PAGED_ORDER.slice(0, limit)]))
    expect((await audit.listAudit({ keyId: 'k1', limit: 3 })).map((item) => item.id)).toEqual(['Z', '01', '_m'])
  })

  test('audit: before pages through every entry exactly once, ties on at included', async (store) => {
    const audit = auditOf(store)
    await writeEntries(audit, PAGED)
    const walked: [number, string[][]][] = []
    for (const limit of [1, 2, 3, 4, 10, 11]) walked.push([limit, await walkPages(audit, limit)])
    for (const [limit, pages] of walked) {
      expect([limit, pages.flat()]).toEqual([limit, PAGED_ORDER])
      for (const page of pages) expect(page.length).toBeLessThanOrEqual(limit)
    }
    // Paging with a filter walks the filtered entries only, each once.
    expect((await walkPages(audit, 2, { keyId: 'k1' })).flat()).toEqual(['Z', '01', '_m', 'M', 'a1', 'B1'])
    expect((await walkPages(audit, 1, { keyId: 'k2', to: T0 + 5 })).flat()).toEqual(['m', 'x', 'A1'])
  })

  test('audit: before excludes its own position and breaks ties on at by id in binary order', async (store) => {
    const audit = auditOf(store)
    await writeEntries(audit, PAGED)
    // At T0 + 3 the IDs are 'M' < '_m' < 'm'; a position between entries works as well as one of theirs.
    expect(await entryIds(audit, { before: { at: T0 + 3, id: 'm' } })).toEqual(['_m', 'M', 'x', 'a1', 'B1', 'A1'])
    expect(await entryIds(audit, { before: { at: T0 + 3, id: 'c' } })).toEqual(['_m', 'M', 'x', 'a1', 'B1', 'A1'])
    expect(await entryIds(audit, { before: { at: T0 + 3, id: 'N' } })).toEqual(['M', 'x', 'a1', 'B1', 'A1'])
    expect(await entryIds(audit, { before: { at: T0 + 1, id: 'B1' } })).toEqual(['A1'])
    expect(await entryIds(audit, { before: { at: T0 + 1, id: 'A1' } })).toEqual([])
    expect(await entryIds(audit, { before: { at: T0 + 6, id: '' } })).toEqual(PAGED_ORDER)
  })

  test('audit: an entry with null keyId, ownerId, tenantId, actor, reason and requestId round-trips', async (store) => {
    const audit = auditOf(store)
    const empty = entry('n1', { action: 'credits_changed', keyId: null, ownerId: null, tenantId: null, actor: null, reason: null, requestId: null })
    await writeEntries(audit, [empty])
    expect(await audit.listAudit({ limit: 10 })).toEqual([empty])
    expect(await entryIds(audit, { keyId: 'carrier0' })).toEqual([])
    expect(await entryIds(audit, { action: 'credits_changed' })).toEqual(['n1'])
  })

  test('audit: actors of every type, with and without a tenant, round-trip', async (store) => {
    const audit = auditOf(store)
    const actors: Actor[] = [
      { type: 'user', id: 'u_42', tenantId: 'acme' },
      { type: 'service', id: 'deployer' },
      { type: 'key', id: 'Ab3dEf6hIj9kLm2n', tenantId: 'tenant-ü' },
      { type: 'system', id: 'expiry-sweep' },
      { type: 'user', id: `ü-Ω-🔑-${'x'.repeat(246)}` },
    ]
    const written = actors.map((actor, index) => entry(`a${index}`, { at: T0 + index, keyId: `k${index}`, actor }))
    await writeEntries(audit, written)
    const listed = await audit.listAudit({ limit: 10 })
    expect(listed).toEqual([...written].reverse())
    // An actor without a tenant has none, not a null one.
    expect(listed.map((item) => item.actor?.tenantId)).toEqual([undefined, undefined, 'tenant-ü', undefined, 'acme'])
  })

  test('audit: reason and requestId round-trip, null and set', async (store) => {
    const audit = auditOf(store)
    const written = [
      entry('r1', { at: T0 + 1, keyId: 'k1', reason: null, requestId: 'req_9f2c' }),
      entry('r2', { at: T0 + 2, keyId: 'k2', reason: 'Leaked in a public repository — "quoted" \\ back\nslash 日本語 🔑', requestId: null }),
      entry('r3', { at: T0 + 3, keyId: 'k3', reason: 'r'.repeat(999) + 'é', requestId: 'q'.repeat(255) + 'ü' }),
      entry('E'.repeat(64), { at: T0 + 4, keyId: 'k4', reason: 'Quarterly rotation', requestId: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }),
    ]
    await writeEntries(audit, written)
    expect(await audit.listAudit({ limit: 10 })).toEqual([...written].reverse())
  })

  test('audit: changes with nested JSON round-trip exactly', async (store) => {
    const audit = auditOf(store)
    const rich = entry('j1', {
      at: T0 + 1,
      keyId: 'k1',
      changes: {
        name: { from: 'CI', to: 'Déploiement CI ✓ "quoted" \\ back\nslash 🔑' },
        description: { from: null, to: '日本語 — 👋' },
        scopes: { from: ['data:read'], to: ['data:read', 'data:write', 'admin:*'] },
        roles: { from: [], to: ['billing'] },
        enabled: { from: true, to: false },
        expiresAt: { from: null, to: '2026-12-01T00:00:00.000Z' },
        version: { from: 0, to: -1.5 },
        metadata: {
          from: { plan: 'free', seats: 1, nothing: null },
          to: {
            plan: 'pro',
            seats: Number.MAX_SAFE_INTEGER,
            'clé ü': 'wörld',
            list: [1, 'two', null, false, { deep: ['x', { deeper: [] }] }],
            emptyObject: {},
            emptyList: [],
            nested: { level2: { level3: { emoji: '🚀', n: 123_456_789_012 } } },
          },
        },
        policy: { from: 'free', to: null },
      },
    })
    const none = entry('j2', { at: T0 + 2, keyId: 'k2', action: 'deleted', changes: {} })
    await writeEntries(audit, [rich, none])
    expect(await audit.listAudit({ limit: 10 })).toEqual([none, rich])
  })

  test('audit: pruneAudit removes only entries older than before, oldest first, at most limit per call', async (store) => {
    const audit = auditOf(store)
    const at = (id: string, offset: number, keyId: string) => entry(id, { at: T0 + offset, keyId })
    // Written out of order; pC and pD share an instant; pF is exactly at `before`.
    await writeEntries(audit, [at('pE', 40, 'k1'), at('pA', 10, 'k2'), at('pG', 60, 'k1'), at('pC', 30, 'k2'), at('pB', 20, 'k3'), at('pF', 50, 'k3'), at('pD', 30, 'k1')])
    const before = T0 + 50
    const steps: [number, string[]][] = []
    for (let call = 0; call < 4; call++) {
      const removed = await audit.pruneAudit(before, 2)
      steps.push([removed, await entryIds(audit)])
    }
    expect(steps).toEqual([
      [2, ['pG', 'pF', 'pE', 'pD', 'pC']],
      [2, ['pG', 'pF', 'pE']],
      [1, ['pG', 'pF']],
      [0, ['pG', 'pF']],
    ])
    // Pruning the trail leaves the keys alone.
    expect((await audit.list(query())).map((record) => record.id)).toEqual(['k1', 'k2', 'k3'])
  })

  test('audit: pruneAudit keeps entries at exactly before and drains everything older in one call when limit allows', async (store) => {
    const audit = auditOf(store)
    await writeEntries(audit, [entry('early', { at: T0 - 1, keyId: 'k1' }), entry('exact', { at: T0, keyId: 'k2' }), entry('late', { at: T0 + 1, keyId: 'k3' })])
    expect(await audit.pruneAudit(T0, 1000)).toBe(1)
    expect(await entryIds(audit)).toEqual(['late', 'exact'])
    expect(await audit.pruneAudit(T0, 1000)).toBe(0)
    expect(await audit.pruneAudit(T0 - 10, 1000)).toBe(0)
    expect(await entryIds(audit)).toEqual(['late', 'exact'])
    expect(await audit.pruneAudit(T0 + 2, 1000)).toBe(2)
    expect(await entryIds(audit)).toEqual([])
    expect(await audit.pruneAudit(T0 + 2, 1000)).toBe(0)
  })

  test('audit: of 20 parallel updates with the same expected version, exactly one writes its entry', async (store) => {
    const audit = auditOf(store)
    const original = makeRecord({ id: 'race' })
    await insertAll(audit, [original])
    const writers = Array.from({ length: 20 }, (_, i) => ({
      next: nextVersion(original, { name: `writer ${i}` }),
      audit: entry(`u${String(i).padStart(2, '0')}`, { keyId: 'race', at: T0 + 1000, changes: { name: { from: 'test key', to: `writer ${i}` } } }),
    }))
    const results: UpdateResult[] = await Promise.all(writers.map((writer) => audit.update(writer.next, 1, writer.audit)))
    expect(count(results, 'updated')).toBe(1)
    const winner = writers[results.indexOf('updated')]!
    expect(await audit.listAudit({ limit: 100 })).toEqual([winner.audit])
    expect(await audit.get('race')).toEqual(winner.next)
  })

  test('audit: of 20 parallel deletes of one record, exactly one writes its entry', async (store) => {
    const audit = auditOf(store)
    await insertAll(audit, [makeRecord({ id: 'race' })])
    const entries = Array.from({ length: 20 }, (_, i) => entry(`d${String(i).padStart(2, '0')}`, { action: 'deleted', keyId: 'race', at: T0 + 1000, changes: {} }))
    const results = await Promise.all(entries.map((item) => audit.delete('race', item)))
    expect(count(results, true)).toBe(1)
    expect(await audit.listAudit({ limit: 100 })).toEqual([entries[results.indexOf(true)]])
    expect(await audit.get('race')).toBeNull()
  })

  test('audit: of 20 parallel inserts against a quota of 2, exactly the 2 inserted write their entries', async (store) => {
    const audit = auditOf(store)
    const attempts = Array.from({ length: 20 }, (_, i) => {
      const id = `q${String(i).padStart(2, '0')}`
      return { record: makeRecord({ id, ownerId: 'alice', tenantId: 't1' }), audit: entry(`e${id}`, { action: 'created', keyId: id, ownerId: 'alice', tenantId: 't1' }) }
    })
    const results = await Promise.all(attempts.map((attempt) => audit.insert(attempt.record, { ownerId: 'alice', tenantId: 't1', limit: 2 }, attempt.audit)))
    expect(count(results, 'inserted')).toBe(2)
    const won = attempts.filter((_, i) => results[i] === 'inserted').map((attempt) => attempt.audit)
    // Equal instants: newest first is by id, descending.
    expect(await audit.listAudit({ limit: 100 })).toEqual([...won].sort((a, b) => (a.id < b.id ? 1 : -1)))
  })

  test('audit: of 20 parallel credit adjustments, each writes its entry with the balance it saw', async (store) => {
    const audit = auditOf(store)
    if (!isUsageStore(audit)) return
    const pool: CreditPool = { id: 'credits:key:k1', initial: 100, refill: null }
    const adjustments = Array.from({ length: 20 }, (_, i) => {
      const item = creditEntry(`c${String(i).padStart(2, '0')}`, { keyId: 'k1', at: T0 + i })
      return audit.adjustCredits({ pool, now: T0 + i, mode: 'add', amount: 1, audit: item })
    })
    const outcomes = await Promise.all(adjustments)
    const listed = await audit.listAudit({ limit: 100 })
    expect(listed).toHaveLength(20)
    // Each entry records the balance its own adjustment saw: one step from 100 to 120, every step once.
    const steps = listed.map((item) => item.changes['credits']).sort((a, b) => Number(a?.from) - Number(b?.from))
    expect(steps).toEqual(Array.from({ length: 20 }, (_, i) => ({ from: 100 + i, to: 101 + i })))
    expect(outcomes.map((outcome) => outcome.previous).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 100 + i))
  })

  test('actors: createdBy, updatedBy, disabledReason and disabledBy round-trip through insert, get, update and list', async (store) => {
    const creator: Actor = { type: 'user', id: 'u_42', tenantId: 'acme' }
    const service: Actor = { type: 'service', id: 'svc-ü' }
    const record = makeRecord({ id: 'actors', createdBy: creator, updatedBy: creator, disabledReason: null, disabledBy: null })
    await insertAll(store, [record])
    expect(await store.get('actors')).toEqual(record)
    expect(await store.list(query())).toEqual([record])

    const disabled = nextVersion(record, { enabled: false, updatedBy: service, disabledReason: 'Leaked in a public repository — 🔑 "quoted"', disabledBy: service })
    expect(await store.update(disabled, 1)).toBe('updated')
    expect(await store.get('actors')).toEqual(disabled)
    expect(await store.list(query())).toEqual([disabled])

    const enabled = nextVersion(disabled, { enabled: true, updatedBy: { type: 'key', id: 'Ab3dEf6hIj9kLm2n', tenantId: 'acme' }, disabledReason: null, disabledBy: null })
    expect(await store.update(enabled, 2)).toBe('updated')
    expect(await store.get('actors')).toEqual(enabled)
    expect(await store.list(query({ status: 'active' }))).toEqual([enabled])
  })

  test('actors: null createdBy, updatedBy, disabledReason and disabledBy round-trip, and can be set later', async (store) => {
    const record = makeRecord({ id: 'nobody', createdBy: null, updatedBy: null, disabledReason: null, disabledBy: null })
    await insertAll(store, [record])
    expect(await store.get('nobody')).toEqual(record)
    expect(await store.list(query())).toEqual([record])

    const system: Actor = { type: 'system', id: 'expiry-sweep' }
    const disabled = nextVersion(record, { enabled: false, updatedBy: system, disabledReason: 'd'.repeat(999) + 'é', disabledBy: system })
    expect(await store.update(disabled, 1)).toBe('updated')
    expect(await store.get('nobody')).toEqual(disabled)
    expect(await store.list(query({ status: 'disabled' }))).toEqual([disabled])
  })
}
