/**
 * The one SELECT behind `list`: every filter of a KeyQuery AND-ed, in (created_at, id) order, with the
 * keyset cursor and the limit, all bound as parameters.
 */
import type { KeyQuery, KeyStatus } from '../../../src/store.js'
import type { SqlDialect, SqlStatement, SqlValue } from './seams.js'

/** The statement for `query` in `dialect`. Throws a RangeError for a limit that is not a positive integer. */
export function listStatement(query: KeyQuery, dialect: Pick<SqlDialect, 'select' | 'placeholder' | 'limit'>): SqlStatement {
  if (!Number.isSafeInteger(query.limit) || query.limit < 1) throw new RangeError('query.limit must be a positive integer')
  const params: SqlValue[] = []
  const bind = (value: SqlValue): string => {
    params.push(value)
    return dialect.placeholder(params.length)
  }
  const where: string[] = []
  if (query.ownerId !== undefined) where.push(`owner_id = ${bind(query.ownerId)}`)
  if (query.tenantId !== undefined) where.push(`tenant_id = ${bind(query.tenantId)}`)
  if (query.environment !== undefined) where.push(`environment = ${bind(query.environment)}`)
  if (query.type !== undefined) where.push(`key_type = ${bind(query.type)}`)
  if (query.status !== undefined) where.push(statusCondition(query.status, () => bind(query.now)))
  if (query.expiresWithin !== undefined) {
    const { from, to } = query.expiresWithin
    where.push(`revoked_at IS NULL AND expires_at > ${bind(from)} AND expires_at <= ${bind(to)}`)
  }
  const direction = query.order === 'desc' ? 'DESC' : 'ASC'
  if (query.after !== undefined) {
    // (created_at, id) > (?, ?), expanded: the leading `created_at >=` lets every planner use the
    // (created_at, id) index for a range scan, which not all of them do for row-value comparisons.
    const op = direction === 'ASC' ? '>' : '<'
    const { createdAt, id } = query.after
    where.push(`created_at ${op}= ${bind(createdAt)} AND (created_at ${op} ${bind(createdAt)} OR id ${op} ${bind(id)})`)
  }
  // The limit is bound too, so each filter combination is one statement text: drivers and servers
  // cache prepared statements by text (MySQL caps them server-wide).
  const sql =
    dialect.select +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY created_at ${direction}, id ${direction} LIMIT ${bind(dialect.limit(query.limit))}`
  return { sql, params }
}

/** The SQL form of `keyStatus` (src/store.ts): revoked, then expired (`expires_at <= now`), then disabled, then active. */
function statusCondition(status: KeyStatus, now: () => string): string {
  switch (status) {
    case 'revoked':
      return 'revoked_at IS NOT NULL'
    case 'expired':
      return `revoked_at IS NULL AND expires_at <= ${now()}`
    case 'disabled':
      return `revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${now()}) AND enabled = FALSE`
    case 'active':
      return `revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ${now()}) AND enabled = TRUE`
  }
}
