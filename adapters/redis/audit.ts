/**
 * `listAudit` and `pruneAudit` without scanning the keyspace. The audit indexes hold one member
 * `<at>:<id>` per entry at score 0 (keys.ts), so Redis keeps them in (at, id) order by bytes, and
 * `from`, `to` and `before` become lexicographic bounds. A query walks the index of its most selective
 * filter (fewest members within those bounds; the all index when it has none) newest first, in batches
 * of one round trip each, filters in code (`matchesAuditQuery`) and stops at the limit.
 */
import { matchesAuditQuery, type AuditQuery, type AuditRecord } from '../../src/audit/audit-store.js'
import type { SendCommand } from './client.js'
import { auditFieldOfMember, auditMember, encodeOrderedNumber, type KeyLayout } from './keys.js'
import { readInteger } from './replies.js'
import { readAuditPage } from './scripts/audit-page.js'
import { PRUNE_AUDIT, pruneAuditCall, type PruneCandidate } from './scripts/prune-audit.js'
import { runScript } from './scripts/run-script.js'

const MIN_BATCH = 32
const MAX_BATCH = 256
/** Entries per prune script: at most seven commands each, a few milliseconds of server time. */
const PRUNE_BATCH = 256

const DIMENSIONS = [
  ['keyId', 'key'],
  ['tenantId', 'tenant'],
  ['ownerId', 'owner'],
  ['actorId', 'actor'],
  ['action', 'action'],
] as const

function parseEntry(json: string): AuditRecord {
  return JSON.parse(json) as AuditRecord
}

/** The exclusive upper bound of a query: the lower of `to` and `before`, or `+`. */
function upperBound(query: AuditQuery): string {
  const bounds: string[] = []
  if (query.to !== undefined) bounds.push(encodeOrderedNumber(query.to))
  if (query.before !== undefined) bounds.push(auditMember(query.before.at, query.before.id))
  if (bounds.length === 0) return '+'
  // Members and bounds are ASCII, so string order is Redis's byte order.
  return `(${bounds.reduce((low, bound) => (bound < low ? bound : low))}`
}

/** The entries matching `query`, newest first, at most `query.limit`. */
export async function listAuditEntries(send: SendCommand, layout: KeyLayout, query: AuditQuery): Promise<AuditRecord[]> {
  const limit = Math.ceil(query.limit)
  if (!(limit >= 1)) return []
  const upper = upperBound(query)
  // An entry at `from` sorts after the bare `<from>` prefix: an inclusive bound on it keeps them.
  const lower = query.from === undefined ? '-' : `[${encodeOrderedNumber(query.from)}`

  const candidates: string[] = []
  for (const [field, dimension] of DIMENSIONS) {
    const value = query[field]
    if (value !== undefined) candidates.push(layout.auditIndex(dimension, value))
  }
  let index = candidates[0] ?? layout.auditAllIndex
  if (candidates.length > 1) {
    const sizes = await Promise.all(candidates.map(async (key) => readInteger(await send(['ZLEXCOUNT', key, lower, upper]))))
    const smallest = Math.min(...sizes)
    if (smallest === 0) return []
    index = candidates[sizes.indexOf(smallest)]!
  }

  // With one filter the index holds exactly the matches, so a batch of `limit` is enough; with more,
  // start wider and grow.
  let batch = candidates.length <= 1 ? Math.min(limit, MAX_BATCH) : Math.min(Math.max(limit * 2, MIN_BATCH), MAX_BATCH)
  let start = upper
  const found: AuditRecord[] = []
  for (;;) {
    const rows = await readAuditPage(send, index, layout.auditEntries, 'desc', start, lower, batch)
    for (const { json } of rows) {
      // null: pruned between the index read and now (the page script reads both at once, so only a
      // half-pruned entry from an older version would show this).
      if (json === null) continue
      const entry = parseEntry(json)
      if (!matchesAuditQuery(entry, query)) continue
      found.push(entry)
      if (found.length >= limit) return found
    }
    const last = rows.at(-1)
    if (rows.length < batch || last === undefined) return found
    start = `(${last.member}`
    batch = Math.min(batch * 2, MAX_BATCH)
  }
}

/** The indexes an entry's JSON names, or `null` when it is unreadable (then only its member in the all index goes). */
function indexesOf(layout: KeyLayout, json: string | null): PruneCandidate['indexes'] {
  if (json === null) return null
  let entry: AuditRecord
  try {
    entry = parseEntry(json)
  } catch {
    return null
  }
  if (typeof entry !== 'object' || entry === null || typeof entry.action !== 'string') return null
  const text = (value: unknown) => (typeof value === 'string' ? value : null)
  return layout.auditIndexes({
    keyId: text(entry.keyId),
    tenantId: text(entry.tenantId),
    ownerId: text(entry.ownerId),
    actorId: text(entry.actor?.id),
    action: entry.action,
  })
}

/**
 * Removes up to `limit` of the oldest entries with `at < before`, in scripts of at most
 * {@link PRUNE_BATCH} entries each, and answers how many it removed. Each batch reads the oldest members
 * and their JSON (which names the entry's other indexes) in one round trip, then removes them in one
 * atomic script.
 */
export async function pruneAuditEntries(send: SendCommand, layout: KeyLayout, before: number, limit: number): Promise<number> {
  const wanted = Math.floor(limit)
  if (!(wanted >= 1) || Number.isNaN(before)) return 0
  const upper = `(${encodeOrderedNumber(before)}`
  let removed = 0
  while (removed < wanted) {
    const count = Math.min(PRUNE_BATCH, wanted - removed)
    const rows = await readAuditPage(send, layout.auditAllIndex, layout.auditEntries, 'asc', '-', upper, count)
    if (rows.length === 0) break
    const candidates = rows.map(({ member, json }) => ({ field: auditFieldOfMember(member), member, indexes: indexesOf(layout, json) }))
    removed += readInteger(await runScript(send, PRUNE_AUDIT, pruneAuditCall(layout, candidates)))
    if (rows.length < count) break
  }
  return removed
}
