/**
 * The delete script: removes a record and all its index and set entries in one atomic step; and the
 * builder of its KEYS and ARGV.
 */
import type { AuditRecord } from '../../../src/audit/audit-store.js'
import type { SendCommand } from '../client.js'
import { orderMember, type KeyLayout } from '../keys.js'
import { decodeFixed } from '../record-codec.js'
import { readOutcome, readText } from '../replies.js'
import { AUDIT_LUA, auditArgs, prepareAudit, type PreparedAudit } from './audit-lua.js'
import { runScript } from './run-script.js'
import { DeclaredKeys, defineScript, type ScriptCall } from './script.js'

/**
 * KEYS: 1 record, 2 all index, 3 expiry index, 4 verify snapshot; at the positions in ARGV[4..7]: owner index, tenant
 * index, the record's live set, and for a tenant's record its owner's 0.1.0 set.
 * ARGV: 1 fixed the keys were derived from, 2 id, 3 order member, 4..7 positions, 8..17 the audit entry
 * (audit-lua.ts), written only with 'deleted'.
 * Empty indexes and sets vanish on their own, so an owner leaves no key behind; the key's audit entries
 * and their indexes stay.
 */
export const DELETE = defineScript(`${AUDIT_LUA}
expect_counts(4, 17)
expect_type(1, 'hash', 'record')
expect_type(2, 'zset', 'all-records index')
expect_type(3, 'zset', 'expiry index')
expect_type(4, 'string', 'verify snapshot')
required(1, 'fixed fields')
local id, member = required(2, 'id'), required(3, 'order member')
local ownerIndex = position(4, 'zset', 'owner index')
local tenantIndex = position(5, 'zset', 'tenant index')
local live = position(6, 'set', 'live set')
local legacy = position(7, 'set', '0.1.0 owner live set')
local audit = read_audit(8)

local fixed = redis.call('HGET', KEYS[1], 'fixed')
if not fixed then return 'not_found' end
if fixed ~= ARGV[1] then return 'stale_keys' end

redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], member)
redis.call('ZREM', KEYS[3], id)
if ownerIndex > 0 then redis.call('ZREM', KEYS[ownerIndex], member) end
if tenantIndex > 0 then redis.call('ZREM', KEYS[tenantIndex], member) end
if live > 0 then redis.call('SREM', KEYS[live], id) end
if legacy > 0 then redis.call('SREM', KEYS[legacy], id) end
write_audit(audit)
return 'deleted'
`)

/** What {@link DELETE} answers. */
export const DELETE_OUTCOMES = ['deleted', 'not_found', 'stale_keys'] as const

/** KEYS and ARGV of {@link DELETE}, with the indexes named by `fixed` (the stored immutable fields). */
export function deleteCall(layout: KeyLayout, id: string, fixed: string, audit: PreparedAudit | null = null): ScriptCall {
  const { ownerId, tenantId, createdAt } = decodeFixed(fixed)
  const declared = new DeclaredKeys([layout.record(id), layout.allIndex, layout.expiryIndex, layout.snapshot(id)])
  const positions = [
    declared.position(ownerId === null ? null : layout.ownerIndex(ownerId)),
    declared.position(tenantId === null ? null : layout.tenantIndex(tenantId)),
    declared.position(ownerId === null ? null : layout.liveSet(ownerId, tenantId)),
    declared.position(ownerId === null || tenantId === null ? null : layout.ownerLive(ownerId)),
  ]
  return { keys: declared.keys, args: [fixed, id, orderMember(createdAt, id), ...positions, ...auditArgs(layout, declared, audit)] }
}

// A record replaced by one of other immutable fields between the read and the script each time.
const MAX_ATTEMPTS = 5

/**
 * Reads the immutable fields (they name the indexes), then runs {@link DELETE} with the audit entry if
 * given. Whether a record existed.
 */
export async function deleteRecord(send: SendCommand, layout: KeyLayout, id: string, audit?: AuditRecord): Promise<boolean> {
  const entry = prepareAudit(layout, audit)
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const fixed = readText(await send(['HGET', layout.record(id), 'fixed']))
    if (fixed === null) return false
    const outcome = readOutcome(await runScript(send, DELETE, deleteCall(layout, id, fixed, entry)), DELETE_OUTCOMES)
    if (outcome !== 'stale_keys') return outcome === 'deleted'
  }
  throw new Error('The record was replaced concurrently on every attempt')
}
