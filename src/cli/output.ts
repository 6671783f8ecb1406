/**
 * Text for people and JSON for scripts: tables, a key's fields, dates, and the sanitising of anything
 * that came from the store or the command line before it reaches a terminal.
 */
import type { ApiKey } from '../types.js'
import type { Actor } from '../audit/audit-store.js'
import type { KeyStatus } from '../store.js'
import type { CliIo } from './command.js'

// Control characters (terminal escapes among them) and bidirectional overrides: a key name or a
// reason is anyone's text, and must not move the cursor or reorder what an operator reads.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

// Anything shaped like a token, whatever its prefix: never repeated, even when a person typed it.
const TOKEN_SHAPE = /[a-z][a-z0-9]{0,15}_[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{16}_[0-9A-Za-z]{38}/g

/** `text` with control characters replaced by `?`, safe to print to a terminal. */
export function safeText(text: string): string {
  return text.replace(UNSAFE, '?')
}

/**
 * Input repeated in an error message: sanitised, shortened to 40 characters, anything shaped like a
 * token replaced, and quoted unless `quoted` is false.
 */
export function quoteInput(text: string, quoted = true): string {
  const masked = safeText(text.replace(TOKEN_SHAPE, '<token>'))
  const short = masked.length > 40 ? `${masked.slice(0, 39)}…` : masked
  return quoted ? `'${short}'` : short
}

/**
 * A one-line, printable form of `text`: line breaks folded, control characters replaced, anything
 * shaped like a token or a URL's credentials masked, at most `max` characters.
 */
export function oneLine(text: string, max = 300): string {
  const folded = safeText(text.replace(/\s*[\r\n]+\s*/g, ' ').replace(TOKEN_SHAPE, '<token>').replace(/\/\/[^\s/@]+@/g, '//…@'))
  return folded.length > max ? `${folded.slice(0, max - 1)}…` : folded
}

/**
 * What an underlying error says, in one line: `code: message` (the first of an `AggregateError`,
 * which is what a connection refused on every address of a host is).
 */
export function describeCause(error: unknown): string {
  let current = error
  while (current instanceof AggregateError && current.errors.length > 0 && !current.message) current = current.errors[0]
  const { code, message } = (current ?? {}) as { code?: unknown; message?: unknown }
  const text = typeof message === 'string' && message !== '' ? message : String(current)
  const prefix = (typeof code === 'string' || typeof code === 'number') && !text.includes(String(code)) ? `${code}: ` : ''
  return oneLine(prefix + text, 200)
}

/** Writes one JSON document (and a newline) to stdout. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`)
}

/** An instant for people: ISO 8601 to the second, in UTC. */
export function formatDate(date: Date | null, none = '-'): string {
  return date === null ? none : date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** An actor for people: `alice`, or `service:deploy-bot` for other types than user. */
export function formatActor(actor: Actor | null | undefined): string {
  if (!actor) return '-'
  return safeText(actor.type === 'user' ? actor.id : `${actor.type}:${actor.id}`)
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '-' : safeText(items.join(', '))
}

/** A column of a {@link renderTable} table. */
export interface Column<T> {
  /** The heading, in capitals by convention. */
  readonly header: string
  /** The cell text of a row (sanitised by the table). */
  readonly cell: (row: T) => string
  /** Longest cell, in characters; longer ones end in `…`. Default: no limit. */
  readonly max?: number
}

/** Rows as a table with aligned columns, headings first; `empty` when there are no rows. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[], empty: string): string {
  if (rows.length === 0) return `${empty}\n`
  const cells = rows.map((row) =>
    columns.map((column) => {
      const text = safeText(column.cell(row)) || '-'
      return column.max !== undefined && text.length > column.max ? `${text.slice(0, column.max - 1)}…` : text
    }),
  )
  const widths = columns.map((column, index) => Math.max(column.header.length, ...cells.map((row) => row[index]!.length)))
  const line = (texts: readonly string[]) => texts.map((text, index) => (index === texts.length - 1 ? text : text.padEnd(widths[index]!))).join('  ')
  return [line(columns.map((column) => column.header)), ...cells.map(line)].join('\n') + '\n'
}

/** A key and its status, as `--json` prints it: the public record, dates in ISO 8601. */
export function keyDocument(key: ApiKey, status: KeyStatus): Record<string, unknown> {
  return { ...key, status }
}

/** A key's fields, one per line, for people (`keys get` and the commands that change a key). */
export function renderKey(key: ApiKey, status: KeyStatus): string {
  const disabled = key.enabled ? 'no' : `yes, by ${formatActor(key.disabledBy)}${key.disabledReason ? `: ${key.disabledReason}` : ''}`
  const fields: [string, string][] = [
    ['id', key.id],
    ['name', key.name],
    ['status', status],
    ['environment', key.environment],
    ['owner', key.ownerId ?? '-'],
    ['tenant', key.tenantId ?? '-'],
    ['type', key.type ?? '-'],
    ['scopes', list(key.scopes)],
    ['roles', list(key.roles)],
    ['groups', list(key.groups)],
    ['description', key.description ?? '-'],
    ['metadata', Object.keys(key.metadata).length === 0 ? '-' : JSON.stringify(key.metadata)],
    ['secret starts', key.start === '' ? '-' : `${key.start}…`],
    ['created', `${formatDate(key.createdAt)} by ${formatActor(key.createdBy)}`],
    ['updated', `${formatDate(key.updatedAt)} by ${formatActor(key.updatedBy)}`],
    ['expires', formatDate(key.expiresAt, 'never')],
    ['last used', formatDate(key.lastUsedAt, 'never')],
    ['disabled', disabled],
    ['revoked', formatDate(key.revokedAt)],
    ['version', String(key.version)],
  ]
  const width = Math.max(...fields.map(([label]) => label.length))
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${safeText(value)}`).join('\n') + '\n'
}

/** The columns of `keys list` and `keys expiring`. */
export function keyColumns(statusOf: (key: ApiKey) => KeyStatus): Column<ApiKey>[] {
  return [
    { header: 'ID', cell: (key) => key.id },
    { header: 'NAME', cell: (key) => key.name, max: 32 },
    { header: 'ENV', cell: (key) => key.environment },
    { header: 'STATUS', cell: (key) => statusOf(key) },
    { header: 'OWNER', cell: (key) => key.ownerId ?? '-', max: 24 },
    { header: 'TENANT', cell: (key) => key.tenantId ?? '-', max: 24 },
    { header: 'EXPIRES', cell: (key) => formatDate(key.expiresAt, 'never') },
    { header: 'LAST USED', cell: (key) => formatDate(key.lastUsedAt, 'never') },
  ]
}
