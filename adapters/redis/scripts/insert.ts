/**
 * The insert script: the ID check, the quota count and every write of a new record, in one atomic step,
 * and the builder of its KEYS and ARGV.
 */
import type { AuditRecord } from '../../../src/audit/audit-store.js'
import type { InsertResult, QuotaCheck, StoredKey } from '../../../src/store.js'
import type { SendCommand } from '../client.js'
import { orderMember, type KeyLayout } from '../keys.js'
import { encodeDoc, encodeFixed, encodeNumber, encodeSnapshotTail } from '../record-codec.js'
import { readOutcome } from '../replies.js'
import { expiryScore } from '../scores.js'
import { AUDIT_LUA, auditArgs, prepareAudit, type PreparedAudit } from './audit-lua.js'
import { runScript } from './run-script.js'
import { SNAPSHOT_LUA } from './snapshot-lua.js'
import { DeclaredKeys, defineScript, type ScriptCall } from './script.js'

/**
 * KEYS: 1 record, 2 all index, 3 expiry index, 4 meta, 5 verify snapshot; at the positions in ARGV[8..12]: owner index,
 * tenant index, the record's live set, the quota's live set, and the quota owner's 0.1.0 set (tenant
 * quotas only).
 * ARGV: 1 id, 2 order member, 3 fixed, 4 doc, 5 version, 6 lastUsedAt or '', 7 expiry score or ''
 * (also '' when revoked), 8..12 positions, 13 quota limit or '', 14 '1' when not revoked, 15..24 the
 * audit entry (audit-lua.ts), written only with 'inserted', 25 the snapshot's tail (record-codec.ts).
 *
 * The ID check comes before the quota check, as the contract requires. Until migrate() has run on a
 * namespace holding 0.1.0 data, the owner's 0.1.0 set may hold keys of the quota's tenant that are in
 * no tenant set yet, so a tenant quota counts that set too: never fewer keys than the owner holds.
 */
export const INSERT = defineScript(`${AUDIT_LUA}${SNAPSHOT_LUA}
expect_counts(5, 25)
expect_type(1, 'hash', 'record')
expect_type(2, 'zset', 'all-records index')
expect_type(3, 'zset', 'expiry index')
expect_type(4, 'hash', 'namespace meta hash')
expect_type(5, 'string', 'verify snapshot')
local id, member = required(1, 'id'), required(2, 'order member')
required(3, 'fixed fields')
required(4, 'document')
integer(5, 'version')
optional_number(6, 'lastUsedAt')
local expiry = optional_score(7, 'expiry score')
local ownerIndex = position(8, 'zset', 'owner index')
local tenantIndex = position(9, 'zset', 'tenant index')
local live = position(10, 'set', 'live set')
local quotaLive = position(11, 'set', 'quota live set')
local quotaLegacy = position(12, 'set', '0.1.0 owner live set')
local limit
if quotaLive > 0 then limit = number(13, 'quota limit') end
local notRevoked = flag(14, 'not revoked')
local audit = read_audit(15)
local tail = required(25, 'snapshot')
local layout = read_layout(4)

if redis.call('EXISTS', KEYS[1]) == 1 then return 'id_taken' end
-- No record yet: no 0.1.0 set can hold a tenant's key, so the namespace starts in layout 2, and every
-- record it will hold has a snapshot.
local fresh = layout == nil and redis.call('EXISTS', KEYS[2]) == 0
if quotaLive > 0 then
  local count = redis.call('SCARD', KEYS[quotaLive])
  if quotaLegacy > 0 and layout == nil and not fresh then count = count + redis.call('SCARD', KEYS[quotaLegacy]) end
  if count >= limit then return 'quota_exceeded' end
end

if fresh then redis.call('HSET', KEYS[4], 'layout', '2', 'snapshots', 'complete') end
redis.call('HSET', KEYS[1], 'fixed', ARGV[3], 'doc', ARGV[4], 'version', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[6]) end
write_snapshot(KEYS[5], KEYS[1], tail)
redis.call('ZADD', KEYS[2], 0, member)
if ownerIndex > 0 then redis.call('ZADD', KEYS[ownerIndex], 0, member) end
if tenantIndex > 0 then redis.call('ZADD', KEYS[tenantIndex], 0, member) end
if live > 0 and notRevoked then redis.call('SADD', KEYS[live], id) end
if expiry then redis.call('ZADD', KEYS[3], expiry, id) end
write_audit(audit)
return 'inserted'
`)

/** What {@link INSERT} answers. */
export const INSERT_OUTCOMES = ['inserted', 'id_taken', 'quota_exceeded'] as const

/** KEYS and ARGV of {@link INSERT}. A quota of `Infinity` counts nothing. */
export function insertCall(layout: KeyLayout, record: StoredKey, quota: QuotaCheck | null, audit: PreparedAudit | null = null): ScriptCall {
  const { ownerId, tenantId } = record
  const declared = new DeclaredKeys([layout.record(record.id), layout.allIndex, layout.expiryIndex, layout.meta, layout.snapshot(record.id)])
  // A caller written against 0.1.0's contract may leave tenantId out: that is the null tenant.
  const counted = quota !== null && quota.limit !== Infinity ? { ...quota, tenantId: quota.tenantId ?? null } : null
  const positions = [
    declared.position(ownerId === null ? null : layout.ownerIndex(ownerId)),
    declared.position(tenantId === null ? null : layout.tenantIndex(tenantId)),
    declared.position(ownerId === null ? null : layout.liveSet(ownerId, tenantId)),
    // The contract has quota.ownerId and quota.tenantId equal to the record's; others are still counted right.
    declared.position(counted === null ? null : layout.liveSet(counted.ownerId, counted.tenantId)),
    declared.position(counted === null || counted.tenantId === null ? null : layout.ownerLive(counted.ownerId)),
  ]
  const args = [
    record.id,
    orderMember(record.createdAt, record.id),
    encodeFixed(record),
    encodeDoc(record),
    encodeNumber(record.version),
    record.lastUsedAt === null ? '' : encodeNumber(record.lastUsedAt),
    expiryScore(record),
    ...positions,
    counted === null ? '' : encodeNumber(counted.limit),
    record.revokedAt === null ? '1' : '0',
    ...auditArgs(layout, declared, audit),
    encodeSnapshotTail(record),
  ]
  return { keys: declared.keys, args }
}

/** Runs {@link INSERT} for `record`, with its audit entry if given. */
export async function insertRecord(
  send: SendCommand,
  layout: KeyLayout,
  record: StoredKey,
  quota: QuotaCheck | null,
  audit?: AuditRecord,
): Promise<InsertResult> {
  return readOutcome(await runScript(send, INSERT, insertCall(layout, record, quota, prepareAudit(layout, audit))), INSERT_OUTCOMES)
}
