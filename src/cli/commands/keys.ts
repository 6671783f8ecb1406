/**
 * `keywarden keys …`: create, list, get, update, enable, disable, revoke, delete, rotate, expiring.
 * Each is a KeyManager call with its input read from options. A token goes to stdout once (create,
 * rotate) and nowhere else; notes for people go to stderr, so `token=$(keywarden keys create …)` holds
 * the token alone.
 */
import * as z from 'zod/mini'
import { KeyNotFoundError } from '../../errors.js'
import type { KeyManager } from '../../key-manager.js'
import type { Duration } from '../../policy/duration.js'
import type { JsonObject } from '../../store.js'
import type { ApiKey, CreateKeyInput, KeyPage, UpdateKeyInput } from '../../types.js'
import { CHANGE_OPTIONS, JSON_OPTION, STORE_OPTIONS, type CommandSpec, type Invocation, type OptionSpecs } from '../command.js'
import { EXIT, UsageError } from '../exit-codes.js'
import { formatDate, keyColumns, keyDocument, printJson, renderKey, renderTable, safeText } from '../output.js'
import { withSession } from '../session.js'
import { changeContext, instant, itemList, jsonObject, oneOf, readOptions, wholeNumber } from '../values.js'

const ID_ARGUMENT = { arguments: '<id>', arity: { min: 1, max: 1 } } as const

const FILTERS: OptionSpecs = {
  owner: { type: 'string', value: '<id>', description: 'only keys of this owner' },
  tenant: { type: 'string', value: '<id>', description: 'only keys of this tenant' },
  env: { type: 'string', value: '<environment>', description: 'only keys of this environment' },
  type: { type: 'string', value: '<type>', description: 'only keys of this type' },
}

const PAGING: OptionSpecs = {
  limit: { type: 'string', value: '<n>', description: 'keys per page, 1-1000 (default 50)' },
  cursor: { type: 'string', value: '<cursor>', description: 'the page after the one that printed this cursor' },
  all: { type: 'boolean', description: 'every page, not just the first' },
}

const EXPIRY: OptionSpecs = {
  'expires-in': { type: 'string', value: '<duration>', description: "lifetime from now, e.g. 90d, 12h (default: the config's expiry.default)" },
  'expires-at': { type: 'string', value: '<date>', description: 'exact expiry, e.g. 2026-12-31T00:00:00Z' },
  'never-expires': { type: 'boolean', description: 'no expiry (refused when the config sets expiry.max)' },
}

const GRANTS: OptionSpecs = {
  scope: { type: 'string', multiple: true, value: '<scope>', description: 'a scope it grants, e.g. data:read (or several: a,b)' },
  role: { type: 'string', multiple: true, value: '<role>', description: 'a role from the config file' },
  group: { type: 'string', multiple: true, value: '<group>', description: 'a group from the config file' },
}

const NO_PEPPER: OptionSpecs = {
  'no-pepper': { type: 'boolean', description: 'hash without a pepper, for an app that runs without one (without KEYWARDEN_PEPPER)' },
}

const EXPECTED_VERSION: OptionSpecs = {
  'expected-version': { type: 'string', value: '<n>', description: 'change it only if the key still has this version' },
}

const STORE_AND_OUTPUT = { ...STORE_OPTIONS, ...JSON_OPTION }

const expirySchema = {
  'expires-in': z.optional(z.string()),
  'expires-at': z.optional(instant),
  'never-expires': z.optional(z.boolean()),
}

function expiryInput(values: { 'expires-in'?: string | undefined; 'expires-at'?: Date | undefined; 'never-expires'?: boolean | undefined }): Pick<CreateKeyInput, 'expiresIn' | 'expiresAt'> {
  const given = [values['expires-in'] !== undefined, values['expires-at'] !== undefined, values['never-expires'] === true].filter(Boolean).length
  if (given > 1) throw new UsageError('give one of --expires-in, --expires-at and --never-expires')
  if (values['never-expires']) return { expiresIn: null }
  if (values['expires-in'] !== undefined) return { expiresIn: values['expires-in'] as Duration }
  if (values['expires-at'] !== undefined) return { expiresAt: values['expires-at'] }
  return {}
}

function idOf(invocation: Invocation): string {
  return invocation.positionals[0]!
}

function json(invocation: Invocation): boolean {
  return invocation.values['json'] === true
}

/** Prints a key after a change: its fields for people (and a note on stderr), or its JSON document. */
function printChanged(invocation: Invocation, keys: KeyManager, key: ApiKey, note: string): number {
  if (json(invocation)) printJson(invocation.io, keyDocument(key, keys.statusOf(key)))
  else {
    invocation.io.stderr(`${note}\n`)
    invocation.io.stdout(renderKey(key, keys.statusOf(key)))
  }
  return EXIT.ok
}

function expiryNote(key: ApiKey): string {
  return key.expiresAt === null ? 'never expires' : `expires ${formatDate(key.expiresAt)}`
}

/** Every page from the first (or `cursor`) on, when `all`; else the one page. */
async function pages(all: boolean, fetch: (cursor: string | null) => Promise<KeyPage>, cursor: string | null): Promise<KeyPage> {
  let page = await fetch(cursor)
  if (!all) return page
  const items = [...page.items]
  while (page.nextCursor !== null) {
    page = await fetch(page.nextCursor)
    items.push(...page.items)
  }
  return { items, nextCursor: null }
}

function printPage(invocation: Invocation, keys: KeyManager, page: KeyPage, empty: string, extra: Record<string, unknown> = {}): number {
  const { io } = invocation
  if (json(invocation)) {
    printJson(io, { ...extra, items: page.items.map((key) => keyDocument(key, keys.statusOf(key))), nextCursor: page.nextCursor })
    return EXIT.ok
  }
  io.stdout(renderTable(page.items, keyColumns((key) => keys.statusOf(key)), empty))
  if (page.nextCursor !== null) io.stderr(`More keys: add --cursor ${page.nextCursor} (or --all)\n`)
  return EXIT.ok
}

const create: CommandSpec = {
  path: ['keys', 'create'],
  summary: 'Create a key and print its token, once',
  description: [
    'The token goes to stdout and nowhere else, so `token=$(keywarden keys create …)` captures it alone;',
    'the key ID and expiry go to stderr. It is the only copy of the secret: store it now.',
    'Needs KEYWARDEN_PEPPER (the app\'s pepper), or --no-pepper for an app that runs without one.',
  ].join('\n'),
  arguments: '',
  arity: { min: 0, max: 0 },
  options: {
    name: { type: 'string', value: '<text>', description: 'what the key is for (required)' },
    description: { type: 'string', value: '<text>', description: 'longer notes' },
    owner: { type: 'string', value: '<id>', description: "the holder's ID in your app (counts against maxKeysPerOwner)" },
    tenant: { type: 'string', value: '<id>', description: 'the tenant the key belongs to' },
    env: { type: 'string', value: '<environment>', description: 'its environment, e.g. live (required with more than one configured)' },
    type: { type: 'string', value: '<type>', description: 'a label such as access or ingest' },
    ...GRANTS,
    ...EXPIRY,
    metadata: { type: 'string', value: '<json>', description: 'a JSON object kept with the key, e.g. {"plan":"pro"}' },
    ...NO_PEPPER,
    ...CHANGE_OPTIONS,
    ...STORE_AND_OUTPUT,
  },
  examples: [
    'keywarden keys create --name "CI deploy" --env live --scope deploy:write --expires-in 90d',
    'token=$(keywarden keys create --name Ingest --env live --role ingest --store "$DATABASE_URL")',
    'keywarden keys create --name Reporting --env test --json | jq -r .token',
  ],
  run: async (invocation) => {
    const values = readOptions(
      z.object({
        name: z.string({ error: 'is required' }),
        description: z.optional(z.string()),
        owner: z.optional(z.string()),
        tenant: z.optional(z.string()),
        env: z.optional(z.string()),
        type: z.optional(z.string()),
        scope: z.optional(itemList),
        role: z.optional(itemList),
        group: z.optional(itemList),
        metadata: z.optional(jsonObject),
        ...expirySchema,
      }),
      invocation.values,
    )
    const input: CreateKeyInput = {
      name: values.name,
      ...(values.description !== undefined ? { description: values.description } : {}),
      ...(values.owner !== undefined ? { ownerId: values.owner } : {}),
      ...(values.tenant !== undefined ? { tenantId: values.tenant } : {}),
      ...(values.env !== undefined ? { environment: values.env } : {}),
      ...(values.type !== undefined ? { type: values.type } : {}),
      ...(values.scope !== undefined ? { scopes: values.scope } : {}),
      ...(values.role !== undefined ? { roles: values.role } : {}),
      ...(values.group !== undefined ? { groups: values.group } : {}),
      ...(values.metadata !== undefined ? { metadata: values.metadata as JsonObject } : {}),
      ...expiryInput(values),
    }
    return withSession(invocation, { newSecret: true }, async ({ keys }) => {
      const { key, token } = await keys.create(input, changeContext(invocation))
      if (json(invocation)) printJson(invocation.io, { token, key: keyDocument(key, keys.statusOf(key)) })
      else {
        invocation.io.stderr(`Created key ${key.id} (${safeText(key.name)}, ${key.environment}, ${expiryNote(key)}). The token is shown this once: store it now.\n`)
        invocation.io.stdout(`${token}\n`)
      }
      return EXIT.ok
    })
  },
}

const list: CommandSpec = {
  path: ['keys', 'list'],
  summary: 'List keys, oldest first, with filters',
  arguments: '',
  arity: { min: 0, max: 0 },
  options: {
    ...FILTERS,
    status: { type: 'string', value: '<status>', description: 'only keys that are active, disabled, expired or revoked' },
    order: { type: 'string', value: '<asc|desc>', description: 'asc: oldest first (default); desc: newest first' },
    ...PAGING,
    ...STORE_AND_OUTPUT,
  },
  examples: ['keywarden keys list --owner u_42', 'keywarden keys list --status active --all --json'],
  run: async (invocation) => {
    const values = readOptions(
      z.object({
        owner: z.optional(z.string()),
        tenant: z.optional(z.string()),
        env: z.optional(z.string()),
        type: z.optional(z.string()),
        status: z.optional(oneOf(['active', 'disabled', 'expired', 'revoked'])),
        order: z.optional(oneOf(['asc', 'desc'])),
        limit: z.optional(wholeNumber),
        cursor: z.optional(z.string()),
        all: z.optional(z.boolean()),
      }),
      invocation.values,
    )
    return withSession(invocation, {}, async ({ keys }) => {
      const filters = {
        ...(values.owner !== undefined ? { ownerId: values.owner } : {}),
        ...(values.tenant !== undefined ? { tenantId: values.tenant } : {}),
        ...(values.env !== undefined ? { environment: values.env } : {}),
        ...(values.type !== undefined ? { type: values.type } : {}),
        ...(values.status !== undefined ? { status: values.status } : {}),
        ...(values.order !== undefined ? { order: values.order } : {}),
        ...(values.limit !== undefined ? { limit: values.limit } : {}),
      }
      const page = await pages(values.all === true, (cursor) => keys.list({ ...filters, cursor }), values.cursor ?? null)
      return printPage(invocation, keys, page, 'No keys.')
    })
  },
}

const get: CommandSpec = {
  path: ['keys', 'get'],
  summary: "Show one key's fields",
  ...ID_ARGUMENT,
  options: STORE_AND_OUTPUT,
  examples: ['keywarden keys get Ab3dEf6hIj9kLm2n', 'keywarden keys get Ab3dEf6hIj9kLm2n --json | jq .scopes'],
  run: (invocation) =>
    withSession(invocation, {}, async ({ keys }) => {
      const key = await keys.get(idOf(invocation))
      if (key === null) throw new KeyNotFoundError(idOf(invocation))
      if (json(invocation)) printJson(invocation.io, keyDocument(key, keys.statusOf(key)))
      else invocation.io.stdout(renderKey(key, keys.statusOf(key)))
      return EXIT.ok
    }),
}

const UPDATE_FIELDS = ['--name', '--description', '--type', '--scope', '--role', '--group', '--clear-*', '--metadata', '--expires-in', '--expires-at', '--never-expires']

const update: CommandSpec = {
  path: ['keys', 'update'],
  summary: "Change a key's name, description, type, grants, metadata or expiry",
  description: 'Lists given (--scope, --role, --group) replace the old ones; --clear-scopes and the like empty them.\nAn empty --description or --type removes it. A new expiry is measured from now.',
  ...ID_ARGUMENT,
  options: {
    name: { type: 'string', value: '<text>', description: 'the new name' },
    description: { type: 'string', value: '<text>', description: 'the new description ("" removes it)' },
    type: { type: 'string', value: '<type>', description: 'the new type ("" removes it)' },
    ...GRANTS,
    'clear-scopes': { type: 'boolean', description: 'remove every scope granted directly' },
    'clear-roles': { type: 'boolean', description: 'remove every role' },
    'clear-groups': { type: 'boolean', description: 'remove every group' },
    metadata: { type: 'string', value: '<json>', description: 'the new metadata, a JSON object (replaces the old)' },
    ...EXPIRY,
    ...EXPECTED_VERSION,
    ...CHANGE_OPTIONS,
    ...STORE_AND_OUTPUT,
  },
  examples: ['keywarden keys update Ab3dEf6hIj9kLm2n --name "CI (main)" --expires-in 90d', 'keywarden keys update Ab3dEf6hIj9kLm2n --scope data:read --scope data:write --reason "Ticket 812"'],
  run: async (invocation) => {
    const values = readOptions(
      z.object({
        name: z.optional(z.string()),
        description: z.optional(z.string()),
        type: z.optional(z.string()),
        scope: z.optional(itemList),
        role: z.optional(itemList),
        group: z.optional(itemList),
        'clear-scopes': z.optional(z.boolean()),
        'clear-roles': z.optional(z.boolean()),
        'clear-groups': z.optional(z.boolean()),
        metadata: z.optional(jsonObject),
        'expected-version': z.optional(wholeNumber),
        ...expirySchema,
      }),
      invocation.values,
    )
    const grants = (list: string[] | undefined, clear: boolean | undefined, name: string): readonly string[] | undefined => {
      if (list !== undefined && clear) throw new UsageError(`give --${name} or --clear-${name}s, not both`)
      return clear ? [] : list
    }
    const scopes = grants(values.scope, values['clear-scopes'], 'scope')
    const roles = grants(values.role, values['clear-roles'], 'role')
    const groups = grants(values.group, values['clear-groups'], 'group')
    const patch: UpdateKeyInput = {
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(values.description !== undefined ? { description: values.description === '' ? null : values.description } : {}),
      ...(values.type !== undefined ? { type: values.type === '' ? null : values.type } : {}),
      ...(scopes !== undefined ? { scopes } : {}),
      ...(roles !== undefined ? { roles } : {}),
      ...(groups !== undefined ? { groups } : {}),
      ...(values.metadata !== undefined ? { metadata: values.metadata as JsonObject } : {}),
      ...expiryInput(values),
    }
    if (Object.keys(patch).length === 0) throw new UsageError(`nothing to change: give one of ${UPDATE_FIELDS.join(', ')}`)
    const expectedVersion = values['expected-version']
    return withSession(invocation, {}, async ({ keys }) => {
      const key = await keys.update(idOf(invocation), patch, { ...changeContext(invocation), ...(expectedVersion !== undefined ? { expectedVersion } : {}) })
      return printChanged(invocation, keys, key, `Updated key ${key.id}.`)
    })
  },
}

function toggle(enabled: boolean): CommandSpec {
  const word = enabled ? 'enable' : 'disable'
  return {
    path: ['keys', word],
    summary: enabled ? 'Enable a disabled key: it verifies again' : 'Disable a key: it stops verifying until enabled (reversible)',
    ...ID_ARGUMENT,
    options: { ...EXPECTED_VERSION, ...CHANGE_OPTIONS, ...STORE_AND_OUTPUT },
    examples: [`keywarden keys ${word} Ab3dEf6hIj9kLm2n --reason "${enabled ? 'Owner confirmed' : 'Suspicious traffic'}"`],
    run: async (invocation) => {
      const values = readOptions(z.object({ 'expected-version': z.optional(wholeNumber) }), invocation.values)
      const expectedVersion = values['expected-version']
      return withSession(invocation, {}, async ({ keys }) => {
        const context = { ...changeContext(invocation), ...(expectedVersion !== undefined ? { expectedVersion } : {}) }
        const key = enabled ? await keys.enable(idOf(invocation), context) : await keys.disable(idOf(invocation), context)
        return printChanged(invocation, keys, key, `${enabled ? 'Enabled' : 'Disabled'} key ${key.id}.`)
      })
    },
  }
}

const revoke: CommandSpec = {
  path: ['keys', 'revoke'],
  summary: 'Revoke a key, for good: it never verifies again',
  description: 'The record stays, for the audit trail and lists. To stop a key reversibly, use keys disable.',
  ...ID_ARGUMENT,
  options: { ...CHANGE_OPTIONS, ...STORE_AND_OUTPUT },
  examples: ['keywarden keys revoke Ab3dEf6hIj9kLm2n --reason "Leaked in a public repository"'],
  run: (invocation) =>
    withSession(invocation, {}, async ({ keys }) => {
      const key = await keys.revoke(idOf(invocation), changeContext(invocation))
      return printChanged(invocation, keys, key, `Revoked key ${key.id}.`)
    }),
}

const remove: CommandSpec = {
  path: ['keys', 'delete'],
  summary: 'Delete a key record; its audit entries stay',
  ...ID_ARGUMENT,
  options: { ...CHANGE_OPTIONS, ...STORE_AND_OUTPUT },
  examples: ['keywarden keys delete Ab3dEf6hIj9kLm2n --reason "Cleanup of test keys"'],
  run: (invocation) =>
    withSession(invocation, {}, async ({ keys }) => {
      const id = idOf(invocation)
      await keys.delete(id, changeContext(invocation))
      if (json(invocation)) printJson(invocation.io, { id, deleted: true })
      else invocation.io.stderr(`Deleted key ${id}.\n`)
      return EXIT.ok
    }),
}

const rotate: CommandSpec = {
  path: ['keys', 'rotate'],
  summary: "Replace a key's secret and print the new token, once",
  description: [
    'The key ID and every setting stay. The old secret stops working at once, or after --grace-period.',
    'As with create, the token goes to stdout only, and KEYWARDEN_PEPPER (or --no-pepper) is needed.',
  ].join('\n'),
  ...ID_ARGUMENT,
  options: {
    'grace-period': { type: 'string', value: '<duration>', description: "how long the old secret keeps working, e.g. 24h (at most the config's rotation.maxGracePeriod)" },
    ...EXPECTED_VERSION,
    ...NO_PEPPER,
    ...CHANGE_OPTIONS,
    ...STORE_AND_OUTPUT,
  },
  examples: ['keywarden keys rotate Ab3dEf6hIj9kLm2n --grace-period 24h > new-token.txt'],
  run: async (invocation) => {
    const values = readOptions(z.object({ 'grace-period': z.optional(z.string()), 'expected-version': z.optional(wholeNumber) }), invocation.values)
    return withSession(invocation, { newSecret: true }, async ({ keys }) => {
      const { key, token, previousSecretValidUntil } = await keys.rotate(idOf(invocation), {
        ...changeContext(invocation),
        ...(values['grace-period'] !== undefined ? { gracePeriod: values['grace-period'] as Duration } : {}),
        ...(values['expected-version'] !== undefined ? { expectedVersion: values['expected-version'] } : {}),
      })
      if (json(invocation)) printJson(invocation.io, { token, key: keyDocument(key, keys.statusOf(key)), previousSecretValidUntil })
      else {
        const old = previousSecretValidUntil === null ? 'the old secret stopped working' : `the old secret works until ${formatDate(previousSecretValidUntil)}`
        invocation.io.stderr(`Rotated key ${key.id}; ${old}. The new token is shown this once: store it now.\n`)
        invocation.io.stdout(`${token}\n`)
      }
      return EXIT.ok
    })
  },
}

const expiring: CommandSpec = {
  path: ['keys', 'expiring'],
  summary: 'List keys that expire soon, soonest first',
  arguments: '',
  arity: { min: 0, max: 0 },
  options: {
    within: { type: 'string', value: '<duration>', description: 'how far ahead to look, e.g. 2d (default 7d)' },
    ...FILTERS,
    ...PAGING,
    ...STORE_AND_OUTPUT,
  },
  examples: ['keywarden keys expiring --within 14d', 'keywarden keys expiring --within 2d --json | jq -r ".items[].ownerId"'],
  run: async (invocation) => {
    const values = readOptions(
      z.object({
        within: z.optional(z.string()),
        owner: z.optional(z.string()),
        tenant: z.optional(z.string()),
        env: z.optional(z.string()),
        type: z.optional(z.string()),
        limit: z.optional(wholeNumber),
        cursor: z.optional(z.string()),
        all: z.optional(z.boolean()),
      }),
      invocation.values,
    )
    const within = (values.within ?? '7d') as Duration
    return withSession(invocation, {}, async ({ keys }) => {
      const filters = {
        within,
        ...(values.owner !== undefined ? { ownerId: values.owner } : {}),
        ...(values.tenant !== undefined ? { tenantId: values.tenant } : {}),
        ...(values.env !== undefined ? { environment: values.env } : {}),
        ...(values.type !== undefined ? { type: values.type } : {}),
        ...(values.limit !== undefined ? { limit: values.limit } : {}),
      }
      const page = await pages(values.all === true, async (cursor) => {
        const { items, nextCursor } = await keys.expiring({ ...filters, cursor })
        return { items, nextCursor }
      }, values.cursor ?? null)
      return printPage(invocation, keys, page, `No key expires within ${safeText(String(within))}.`, { within })
    })
  },
}

/** The `keys` group, in the order the help lists them. */
export const KEY_COMMANDS: readonly CommandSpec[] = [create, list, get, update, toggle(true), toggle(false), revoke, remove, rotate, expiring]
