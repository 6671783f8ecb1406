/**
 * The audit entry every write script (insert, update, delete, adjust-credits) may carry: the Lua that
 * checks it before the script's first write and writes it with the change, and the builder of its ten
 * arguments. The entry's JSON is built here, in TypeScript, and stored as sent (Lua's cjson would
 * round numbers to 14 digits and cannot tell `{}` from `[]`); only a credit entry's `changes` is
 * spliced in by the script, as text.
 */
import type { AuditRecord } from '../../../src/audit/audit-store.js'
import { auditMember, encodeOrderedId, type KeyLayout } from '../keys.js'
import type { DeclaredKeys } from './script.js'

/**
 * `read_audit(base)` checks the entry at ARGV[base .. base + 9]: its JSON ('' when there is none), its
 * entries-hash field, its order member, and the KEYS positions of the entries hash, the all index and
 * the key, tenant, owner, actor and action indexes (`'0'` for a dimension the entry has no value for).
 * It checks every key's type and that the ID is not taken, and writes nothing; nil when no entry.
 * `write_audit(audit, json)` writes it (`json` replaces the JSON sent, for credit entries).
 */
export const AUDIT_LUA = `
local function read_audit(base)
  if ARGV[base] == '' then return nil end
  local audit = { json = ARGV[base], field = required(base + 1, 'audit entry ID'), member = required(base + 2, 'audit order member'), indexes = {} }
  audit.entries = position(base + 3, 'hash', 'audit entries hash')
  if audit.entries == 0 then reject('ERR', 'the audit entries hash is missing') end
  for i = 4, 9 do
    local index = position(base + i, 'zset', 'audit index')
    if index == 0 and i == 4 then reject('ERR', 'the audit index of all entries is missing') end
    if index > 0 then audit.indexes[#audit.indexes + 1] = index end
  end
  -- Entries are never changed: a second entry under one ID would leave the first one's index members behind.
  if redis.call('HEXISTS', KEYS[audit.entries], audit.field) == 1 then reject('ERR', 'the audit entry ID is taken') end
  return audit
end

local function write_audit(audit, json)
  if audit == nil then return end
  redis.call('HSET', KEYS[audit.entries], audit.field, json or audit.json)
  for _, index in ipairs(audit.indexes) do redis.call('ZADD', KEYS[index], 0, audit.member) end
end
`

/** How many ARGV entries {@link AUDIT_LUA}'s `read_audit` takes. */
export const AUDIT_ARG_COUNT = 10

/** An entry encoded for the scripts: its JSON, its field and member, and the indexes it belongs to. */
export interface PreparedAudit {
  readonly json: string
  readonly field: string
  readonly member: string
  /** The key, tenant, owner, actor and action indexes, `null` where the entry has no value. */
  readonly indexes: readonly (string | null)[]
}

type AuditHead = Omit<AuditRecord, 'changes'>

function checkHead(entry: AuditHead): void {
  if (typeof entry.id !== 'string' || entry.id === '') throw new Error('The audit entry has no id')
  if (typeof entry.at !== 'number' || !Number.isFinite(entry.at)) throw new Error('The audit entry has no finite at')
  if (typeof entry.action !== 'string' || (entry.action as string) === '') throw new Error('The audit entry has no action')
}

function prepare(layout: KeyLayout, entry: AuditHead, json: string): PreparedAudit {
  return {
    json,
    field: encodeOrderedId(entry.id),
    member: auditMember(entry.at, entry.id),
    indexes: layout.auditIndexes({
      keyId: entry.keyId ?? null,
      tenantId: entry.tenantId ?? null,
      ownerId: entry.ownerId ?? null,
      actorId: entry.actor?.id ?? null,
      action: entry.action,
    }),
  }
}

/**
 * A full entry (insert, update, delete), encoded once, before the first await: later changes to the
 * caller's object cannot leak in.
 */
export function prepareAudit(layout: KeyLayout, entry: AuditRecord | undefined): PreparedAudit | null {
  if (entry === undefined) return null
  checkHead(entry)
  return prepare(layout, entry, JSON.stringify(entry))
}

/**
 * A credit entry: its JSON without `changes` (an object of at least one field, so the script can splice
 * `,"changes":{…}` in before its closing brace).
 */
export function prepareCreditAudit(layout: KeyLayout, entry: AuditHead | undefined): PreparedAudit | null {
  if (entry === undefined) return null
  checkHead(entry)
  const { changes: _ignored, ...head } = entry as AuditHead & { changes?: unknown }
  return prepare(layout, entry, JSON.stringify(head))
}

/** The {@link AUDIT_ARG_COUNT} arguments of `read_audit`, declaring the entry's keys in `declared`. */
export function auditArgs(layout: KeyLayout, declared: DeclaredKeys, audit: PreparedAudit | null): string[] {
  if (audit === null) return ['', '', '', '0', '0', '0', '0', '0', '0', '0']
  return [
    audit.json,
    audit.field,
    audit.member,
    declared.position(layout.auditEntries),
    declared.position(layout.auditAllIndex),
    ...audit.indexes.map((index) => declared.position(index)),
  ]
}
