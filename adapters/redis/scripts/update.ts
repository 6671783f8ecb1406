/**
 * The update script: compare-and-set on `version`, then the new fields, the quota set and the expiry
 * index, in one atomic step; and the builder of its KEYS and ARGV.
 */
import type { AuditRecord } from '../../../src/audit/audit-store.js'
import type { StoredKey, UpdateResult } from '../../../src/store.js'
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { decodeFixed, encodeDoc, encodeFixed, encodeNumber, encodeSnapshotTail } from '../record-codec.js'
import { readOutcome, readText } from '../replies.js'
import { expiryScore } from '../scores.js'
import { AUDIT_LUA, auditArgs, prepareAudit, type PreparedAudit } from './audit-lua.js'
import { runScript } from './run-script.js'
import { SNAPSHOT_LUA } from './snapshot-lua.js'
import { DeclaredKeys, defineScript, type ScriptCall } from './script.js'

/**
 * KEYS: 1 record, 2 expiry index, 3 verify snapshot; at the positions in ARGV[7..8]: the record's live set, and for a
 * tenant's record its owner's 0.1.0 set.
 * ARGV: 1 fixed the keys were derived from, 2 expected version, 3 new version, 4 doc, 5 id,
 * 6 expiry score or '', 7..8 positions, 9 '1' when not revoked, 10..19 the audit entry (audit-lua.ts),
 * written only with 'updated', 20 the snapshot's tail (record-codec.ts).
 *
 * Answers 'stale_keys' when the stored immutable fields differ from ARGV[1]: the declared keys may then
 * be the wrong ones, and the caller retries with the stored value. `fixed` and `lastUsedAt` are never
 * written, so immutable fields and the last use stay as stored. A tenant's record leaves its owner's
 * 0.1.0 set on every update: it is counted in its tenant's set from then on.
 */
export const UPDATE = defineScript(`${AUDIT_LUA}${SNAPSHOT_LUA}
expect_counts(3, 20)
expect_type(1, 'hash', 'record')
expect_type(2, 'zset', 'expiry index')
expect_type(3, 'string', 'verify snapshot')
required(1, 'fixed fields')
integer(2, 'expected version')
integer(3, 'new version')
required(4, 'document')
local id = required(5, 'id')
local expiry = optional_score(6, 'expiry score')
local live = position(7, 'set', 'live set')
local legacy = position(8, 'set', '0.1.0 owner live set')
local notRevoked = flag(9, 'not revoked')
local audit = read_audit(10)
local tail = required(20, 'snapshot')

local stored = redis.call('HMGET', KEYS[1], 'fixed', 'version')
if not stored[1] then return 'not_found' end
if stored[1] ~= ARGV[1] then return 'stale_keys' end
if stored[2] ~= ARGV[2] then return 'conflict' end

redis.call('HSET', KEYS[1], 'doc', ARGV[4], 'version', ARGV[3])
write_snapshot(KEYS[3], KEYS[1], tail)
if live > 0 then
  if notRevoked then redis.call('SADD', KEYS[live], id) else redis.call('SREM', KEYS[live], id) end
end
if legacy > 0 then redis.call('SREM', KEYS[legacy], id) end
if expiry then redis.call('ZADD', KEYS[2], expiry, id) else redis.call('ZREM', KEYS[2], id) end
write_audit(audit)
return 'updated'
`)

/** What {@link UPDATE} answers. */
export const UPDATE_OUTCOMES = ['updated', 'not_found', 'conflict', 'stale_keys'] as const

/** KEYS and ARGV of {@link UPDATE}, with the sets named by `fixed` (the stored immutable fields). */
export function updateCall(
  layout: KeyLayout,
  record: StoredKey,
  doc: string,
  tail: string,
  fixed: string,
  expectedVersion: number,
  audit: PreparedAudit | null = null,
): ScriptCall {
  const { ownerId, tenantId } = decodeFixed(fixed)
  const declared = new DeclaredKeys([layout.record(record.id), layout.expiryIndex, layout.snapshot(record.id)])
  const live = declared.position(ownerId === null ? null : layout.liveSet(ownerId, tenantId))
  const legacy = declared.position(ownerId === null || tenantId === null ? null : layout.ownerLive(ownerId))
  const args = [
    fixed,
    encodeNumber(expectedVersion),
    encodeNumber(record.version),
    doc,
    record.id,
    expiryScore(record),
    live,
    legacy,
    record.revokedAt === null ? '1' : '0',
    ...auditArgs(layout, declared, audit),
    tail,
  ]
  return { keys: declared.keys, args }
}

// Replacing a record concurrently with one of other immutable fields between our read and our script
// takes a delete and an insert each time; a few attempts are plenty.
const MAX_ATTEMPTS = 5

/** Runs {@link UPDATE} (with the audit entry if given), again with the stored immutable fields when they differ from `record`'s. */
export async function updateRecord(
  send: SendCommand,
  layout: KeyLayout,
  record: StoredKey,
  expectedVersion: number,
  audit?: AuditRecord,
): Promise<UpdateResult> {
  // Copied and encoded before the first await: later changes to `record` by the caller cannot leak in.
  const copy = { ...record }
  const doc = encodeDoc(record)
  const tail = encodeSnapshotTail(record)
  const entry = prepareAudit(layout, audit)
  let fixed = encodeFixed(record)
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const reply = await runScript(send, UPDATE, updateCall(layout, copy, doc, tail, fixed, expectedVersion, entry))
    const outcome = readOutcome(reply, UPDATE_OUTCOMES)
    if (outcome !== 'stale_keys') return outcome
    const stored = readText(await send(['HGET', layout.record(record.id), 'fixed']))
    if (stored === null) return 'not_found'
    fixed = stored
  }
  throw new Error('The record was replaced concurrently on every attempt')
}
