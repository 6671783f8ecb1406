/**
 * `keywarden migrate`: creates the SQL schema (tables, indexes, functions; idempotent), or converts a
 * Redis namespace written by 0.1.0, through the store's own `migrate()`. `--sql <dialect>` prints the
 * same statements for your own migration tool instead, without connecting.
 */
import * as z from 'zod/mini'
import { mysqlDialect } from '../../../adapters/sql/mysql/dialect.js'
import { postgresDialect } from '../../../adapters/sql/postgres/dialect.js'
import { resolveTable } from '../../../adapters/sql/shared/options.js'
import type { SqlDialect } from '../../../adapters/sql/shared/seams.js'
import { sqliteDialect } from '../../../adapters/sql/sqlite/dialect.js'
import { ConfigError } from '../../errors.js'
import { JSON_OPTION, STORE_OPTIONS, type CommandSpec, type Invocation } from '../command.js'
import { EXIT, UsageError } from '../exit-codes.js'
import { printJson } from '../output.js'
import { configOf, openConfiguredStore } from '../session.js'
import { oneOf, readOptions } from '../values.js'
import { VERSION } from '../version.js'

const DIALECTS: Readonly<Record<'postgres' | 'mysql' | 'sqlite', (table: string) => SqlDialect>> = {
  postgres: postgresDialect,
  mysql: mysqlDialect,
  sqlite: sqliteDialect,
}

function printSql(invocation: Invocation, dialect: 'postgres' | 'mysql' | 'sqlite'): number {
  const configured = typeof invocation.values['table'] === 'string' ? invocation.values['table'] : configOf(invocation).settings.table
  let table: string
  try {
    table = resolveTable(configured)
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`--table: ${error.issues[0]!.message}`)
    throw error
  }
  const lines = [`-- keywarden ${VERSION}: ${dialect} schema of the table ${table}, as keywarden migrate applies it.`]
  for (const { sql, addsColumn } of DIALECTS[dialect](table).migration) {
    // SQLite has no ADD COLUMN IF NOT EXISTS; migrate() ignores exactly this error.
    if (addsColumn) lines.push('-- Fails with "duplicate column name" where the column exists: ignore that error.')
    lines.push(`${sql.trim()};`, '')
  }
  invocation.io.stdout(lines.join('\n'))
  return EXIT.ok
}

/** `keywarden migrate`. */
export const MIGRATE_COMMAND: CommandSpec = {
  path: ['migrate'],
  summary: "Create the store's schema (SQL), or print it with --sql",
  description: [
    'Idempotent: safe to run at every deploy. On SQL stores it creates the keys table, its usage and audit',
    'tables and indexes (and adds columns an older version lacks); on Redis it converts a namespace written',
    'by keywarden 0.1.0. For sqlite:<file> it creates the file. With --sql it prints the statements instead,',
    'for your own migration tool, and connects to nothing.',
  ].join('\n'),
  arguments: '',
  arity: { min: 0, max: 0 },
  options: {
    sql: { type: 'string', value: '<postgres|mysql|sqlite>', description: 'print the schema for this database instead of applying it' },
    ...STORE_OPTIONS,
    ...JSON_OPTION,
  },
  examples: [
    'keywarden migrate --store "$DATABASE_URL"',
    'keywarden migrate --store sqlite:keys.db --table api_keys',
    'keywarden migrate --sql postgres --table api_keys > migrations/001_api_keys.sql',
  ],
  run: async (invocation) => {
    const values = readOptions(z.object({ sql: z.optional(oneOf(['postgres', 'mysql', 'sqlite'])) }), invocation.values)
    if (values.sql !== undefined) return printSql(invocation, values.sql)
    const opened = await openConfiguredStore(invocation, configOf(invocation), { create: true })
    try {
      await opened.migrate()
    } finally {
      await opened.close()
    }
    if (invocation.values['json'] === true) printJson(invocation.io, { migrated: true, store: opened.label })
    else invocation.io.stderr(`Migrated: ${opened.label} is ready.\n`)
    return EXIT.ok
  },
}
