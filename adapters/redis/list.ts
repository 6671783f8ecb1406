/**
 * `list` without scanning the keyspace. The order indexes hold one member `<createdAt>:<id>` per record
 * at score 0, so Redis keeps them in (createdAt, id) order by bytes, and the keyset `after` is an
 * exclusive lexicographic bound. A query walks the smallest index that holds every candidate (owner,
 * tenant, or all records) in batches, fetches each batch in one script, filters in code and stops at
 * the limit. With `expiresWithin`, when the expiry window holds fewer records than that index, the
 * window is read from the expiry index instead and sorted here.
 */
import { matchesKeyQuery, type KeyQuery, type StoredKey } from '../../src/store.js'
import type { SendCommand } from './client.js'
import { idOfMember, orderMember, type KeyLayout } from './keys.js'
import { readInteger, readArray, readTexts } from './replies.js'
import { scoreArgument } from './scores.js'
import { fetchRecords } from './scripts/fetch.js'

const MIN_BATCH = 32
const MAX_BATCH = 256

/** Whether an index walk returns exactly the query's records, so a batch never needs to over-fetch. */
function indexIsExact(query: KeyQuery): boolean {
  const { ownerId, tenantId, environment, type, status, expiresWithin } = query
  const codeFilters = [environment, type, status, expiresWithin]
  return (ownerId === undefined || tenantId === undefined) && codeFilters.every((filter) => filter === undefined)
}

/** Compares order members as Redis does: by UTF-8 bytes. */
function compareMembers(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** The records matching `query`, in its order, at most `query.limit`. */
export async function listRecords(send: SendCommand, layout: KeyLayout, query: KeyQuery): Promise<StoredKey[]> {
  const within = query.expiresWithin
  if (query.limit < 1 || (within !== undefined && !(within.from < within.to))) return []

  // Every candidate index holds all records the query can return; the smallest is cheapest to walk.
  const candidates: string[] = []
  if (query.ownerId !== undefined) candidates.push(layout.ownerIndex(query.ownerId))
  if (query.tenantId !== undefined) candidates.push(layout.tenantIndex(query.tenantId))
  if (candidates.length === 0) candidates.push(layout.allIndex)
  if (candidates.length === 1 && within === undefined) return walkIndex(send, layout, candidates[0]!, query)

  const [sizes, windowSize] = await Promise.all([
    Promise.all(candidates.map(async (key) => readInteger(await send(['ZCARD', key])))),
    within === undefined
      ? Infinity
      : readInteger(await send(['ZCOUNT', layout.expiryIndex, `(${scoreArgument(within.from)}`, scoreArgument(within.to)])),
  ])
  const smallest = Math.min(...sizes)
  if (smallest === 0 || windowSize === 0) return []
  if (within !== undefined && windowSize <= smallest) return listWindow(send, layout, query, within)
  return walkIndex(send, layout, candidates[sizes.indexOf(smallest)]!, query)
}

async function walkIndex(send: SendCommand, layout: KeyLayout, index: string, query: KeyQuery): Promise<StoredKey[]> {
  const asc = query.order === 'asc'
  const command = asc ? 'ZRANGEBYLEX' : 'ZREVRANGEBYLEX'
  const end = asc ? '+' : '-'
  let bound = query.after === undefined ? (asc ? '-' : '+') : `(${orderMember(query.after.createdAt, query.after.id)}`
  // Without filters beyond the index a batch of `limit` is enough; with them, start wider and grow.
  const limit = Math.ceil(query.limit)
  let batch = indexIsExact(query) ? Math.min(limit, MAX_BATCH) : Math.min(Math.max(limit * 2, MIN_BATCH), MAX_BATCH)
  const found: StoredKey[] = []

  for (;;) {
    const members = readTexts(await send([command, index, bound, end, 'LIMIT', '0', String(batch)])).filter((m) => m !== null)
    const records = await fetchRecords(send, members.map((member) => layout.record(idOfMember(member))))
    for (const record of records) {
      // null: deleted between the range read and the fetch.
      if (record === null || !matchesKeyQuery(record, query)) continue
      found.push(record)
      if (found.length >= query.limit) return found
    }
    const last = members.at(-1)
    if (members.length < batch || last === undefined) return found
    bound = `(${last}`
    batch = Math.min(batch * 2, MAX_BATCH)
  }
}

async function listWindow(
  send: SendCommand,
  layout: KeyLayout,
  query: KeyQuery,
  within: { readonly from: number; readonly to: number },
): Promise<StoredKey[]> {
  const ids = readArray(await send(['ZRANGEBYSCORE', layout.expiryIndex, `(${scoreArgument(within.from)}`, scoreArgument(within.to)]))
  const rows: { record: StoredKey; member: string }[] = []
  for (let start = 0; start < ids.length; start += MAX_BATCH) {
    const chunk = readTexts(ids.slice(start, start + MAX_BATCH)).filter((id) => id !== null)
    for (const record of await fetchRecords(send, chunk.map((id) => layout.record(id)))) {
      if (record !== null && matchesKeyQuery(record, query)) rows.push({ record, member: orderMember(record.createdAt, record.id) })
    }
  }
  const sign = query.order === 'asc' ? 1 : -1
  const after = query.after === undefined ? null : orderMember(query.after.createdAt, query.after.id)
  return rows
    .filter((row) => after === null || sign * compareMembers(row.member, after) > 0)
    .sort((a, b) => sign * compareMembers(a.member, b.member))
    .slice(0, query.limit)
    .map((row) => row.record)
}
