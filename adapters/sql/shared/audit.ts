/**
 * The audit trail's SQL, shared by the dialects: one row per entry in `<table>_audit`, the entry
 * whole as JSON text plus the columns the filters and the newest-first keyset order need.
 */
import type { AuditQuery, AuditRecord } from '../../../src/audit/audit-store.js'
import { readText } from './row-mapping.js'
import type { SqlRow, SqlStatement, SqlValue } from './seams.js'

/** The audit statements of a dialect. */
export interface AuditStatements {
  /** Writes one entry. */
  insert(entry: AuditRecord): SqlStatement
  /** The entries matching `query`, newest first: `(at, id)` descending, IDs in binary order. */
  list(query: AuditQuery): SqlStatement
  /** Deletes up to `limit` of the oldest entries with `at < before`. */
  prune(before: number, limit: number): SqlStatement
}

/** How a dialect writes what differs: placeholders, LIMIT's parameter, and a bounded DELETE. */
export interface AuditSyntax {
  readonly placeholder: (index: number) => string
  readonly limit: (value: number) => SqlValue
  /** `'subselect'`: DELETE … WHERE id IN (SELECT … LIMIT n); `'order-limit'`: DELETE … ORDER BY … LIMIT n (MySQL). */
  readonly boundedDelete: 'subselect' | 'order-limit'
}

const FILTERS = [
  ['keyId', 'key_id'],
  ['tenantId', 'tenant_id'],
  ['ownerId', 'owner_id'],
  ['actorId', 'actor_id'],
  ['action', 'action'],
] as const

export function auditStatements(table: string, syntax: AuditSyntax): AuditStatements {
  const { placeholder, limit } = syntax
  return {
    insert: (entry) => ({
      sql: `INSERT INTO ${table} (id, at, action, key_id, owner_id, tenant_id, actor_id, entry_json) VALUES (${[1, 2, 3, 4, 5, 6, 7, 8].map(placeholder).join(', ')})`,
      params: [entry.id, entry.at, entry.action, entry.keyId, entry.ownerId, entry.tenantId, entry.actor?.id ?? null, JSON.stringify(entry)],
    }),
    list: (query) => {
      const where: string[] = []
      const params: SqlValue[] = []
      const next = (value: SqlValue) => {
        params.push(value)
        return placeholder(params.length)
      }
      for (const [field, column] of FILTERS) {
        const value = query[field]
        if (value !== undefined) where.push(`${column} = ${next(value)}`)
      }
      if (query.from !== undefined) where.push(`at >= ${next(query.from)}`)
      if (query.to !== undefined) where.push(`at < ${next(query.to)}`)
      if (query.before !== undefined) {
        const { at, id } = query.before
        where.push(`(at < ${next(at)} OR (at = ${next(at)} AND id < ${next(id)}))`)
      }
      const filter = where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`
      return { sql: `SELECT entry_json FROM ${table}${filter} ORDER BY at DESC, id DESC LIMIT ${next(limit(query.limit))}`, params }
    },
    prune: (before, count) =>
      syntax.boundedDelete === 'order-limit'
        ? { sql: `DELETE FROM ${table} WHERE at < ${placeholder(1)} ORDER BY at, id LIMIT ${placeholder(2)}`, params: [before, limit(count)] }
        : {
            sql: `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE at < ${placeholder(1)} ORDER BY at, id LIMIT ${placeholder(2)})`,
            params: [before, limit(count)],
          },
  }
}

/** An entry from its row. */
export function rowToEntry(row: SqlRow): AuditRecord {
  return JSON.parse(readText(row['entry_json'])) as AuditRecord
}
