/**
 * `keywarden audit`: the audit trail, newest first: who changed which key, when, why, and which fields.
 */
import * as z from 'zod/mini'
import type { AuditAction } from '../../audit/audit-store.js'
import type { AuditEntry, AuditPage } from '../../manager/audit-trail.js'
import { JSON_OPTION, STORE_OPTIONS, type CommandSpec } from '../command.js'
import { EXIT } from '../exit-codes.js'
import { formatActor, formatDate, printJson, renderTable, type Column } from '../output.js'
import { withSession } from '../session.js'
import { instant, oneOf, readOptions, wholeNumber } from '../values.js'

const ACTIONS = ['created', 'updated', 'enabled', 'disabled', 'revoked', 'deleted', 'rotated', 'credits_changed'] as const satisfies readonly AuditAction[]

const COLUMNS: readonly Column<AuditEntry>[] = [
  { header: 'AT', cell: (entry) => formatDate(entry.at) },
  { header: 'ACTION', cell: (entry) => entry.action },
  { header: 'KEY', cell: (entry) => entry.keyId ?? '-' },
  { header: 'ACTOR', cell: (entry) => formatActor(entry.actor) },
  { header: 'CHANGES', cell: (entry) => Object.keys(entry.changes).join(', '), max: 40 },
  { header: 'REASON', cell: (entry) => entry.reason ?? '-', max: 48 },
]

/** `keywarden audit`. */
export const AUDIT_COMMAND: CommandSpec = {
  path: ['audit'],
  summary: 'Show the audit trail, newest first',
  description: 'Entries outlive their keys: a deleted key\'s history stays. Filters combine (all must match).',
  arguments: '',
  arity: { min: 0, max: 0 },
  options: {
    key: { type: 'string', value: '<id>', description: 'only entries about this key' },
    owner: { type: 'string', value: '<id>', description: "only entries of this owner's keys" },
    tenant: { type: 'string', value: '<id>', description: "only entries of this tenant's keys" },
    actor: { type: 'string', value: '<id>', description: 'only changes made by this actor' },
    action: { type: 'string', value: '<action>', description: `only this action: ${ACTIONS.join(', ')}` },
    from: { type: 'string', value: '<date>', description: 'only entries at or after this instant' },
    to: { type: 'string', value: '<date>', description: 'only entries before this instant' },
    limit: { type: 'string', value: '<n>', description: 'entries per page, 1-1000 (default 50)' },
    cursor: { type: 'string', value: '<cursor>', description: 'the page after the one that printed this cursor' },
    all: { type: 'boolean', description: 'every page, not just the first' },
    ...STORE_OPTIONS,
    ...JSON_OPTION,
  },
  examples: ['keywarden audit --key Ab3dEf6hIj9kLm2n', 'keywarden audit --action revoked --from 2026-01-01 --json'],
  run: async (invocation) => {
    const values = readOptions(
      z.object({
        key: z.optional(z.string()),
        owner: z.optional(z.string()),
        tenant: z.optional(z.string()),
        actor: z.optional(z.string()),
        action: z.optional(oneOf(ACTIONS)),
        from: z.optional(instant),
        to: z.optional(instant),
        limit: z.optional(wholeNumber),
        cursor: z.optional(z.string()),
        all: z.optional(z.boolean()),
      }),
      invocation.values,
    )
    const filters = {
      ...(values.key !== undefined ? { keyId: values.key } : {}),
      ...(values.owner !== undefined ? { ownerId: values.owner } : {}),
      ...(values.tenant !== undefined ? { tenantId: values.tenant } : {}),
      ...(values.actor !== undefined ? { actorId: values.actor } : {}),
      ...(values.action !== undefined ? { action: values.action } : {}),
      ...(values.from !== undefined ? { from: values.from } : {}),
      ...(values.to !== undefined ? { to: values.to } : {}),
      ...(values.limit !== undefined ? { limit: values.limit } : {}),
    }
    return withSession(invocation, {}, async ({ keys }) => {
      let page: AuditPage = await keys.audit({ ...filters, cursor: values.cursor ?? null })
      if (values.all) {
        const items = [...page.items]
        while (page.nextCursor !== null) {
          page = await keys.audit({ ...filters, cursor: page.nextCursor })
          items.push(...page.items)
        }
        page = { items, nextCursor: null }
      }
      const { io } = invocation
      if (invocation.values['json'] === true) printJson(io, page)
      else {
        io.stdout(renderTable(page.items, COLUMNS, 'No audit entries.'))
        if (page.nextCursor !== null) io.stderr(`More entries: add --cursor ${page.nextCursor} (or --all)\n`)
      }
      return EXIT.ok
    })
  },
}
