/**
 * Property-based tests of the management API's floor: random principals (an admin and two members in
 * each of two or three tenants) make random route calls through the Fetch handler, on the memory
 * store and on PostgreSQL (a fresh table per run), and a small model of who owns what predicts every
 * answer from the default policy. After every call:
 *
 * - no response (body or headers, list items and cursors included) names a key the principal may not
 *   see (same tenant, and admin or owner), nor another tenant;
 * - a call on a key it may not see (another tenant's, another owner's, a deleted one, an ID that never
 *   existed or is malformed) answers exactly the bytes of the 404 for an ID that never existed
 *   (status, every header, body), and the key's version stays;
 * - nothing outside what it may see changes: no other key's version, no credit balance of a key it
 *   may not see, no key appears or disappears except the one it created or deleted;
 * - what the policy forbids on a key it sees (a member re-enabling a key someone else disabled,
 *   changing credits, naming another owner) is a 403 `forbidden` with no change; anything else the
 *   policy allows succeeds, or is refused for one of the reasons that apply (409 revoked, quota or
 *   idempotency, 412 stale If-Match, 422 invalid, 403 above the grant ceiling), with no change;
 * - lists and the expiring banner, walked page by page, hold exactly the keys it may see that match
 *   the filters (a member: its own), once each;
 * - the model still agrees with the store (owner, tenant, enabled, disabledBy, revoked, deleted).
 *
 * Two principal sets: three named tenants; and a named tenant, principals without a tenant
 * (`tenantId: null`, which the Principal type allows for keys without a tenant) and, in some runs, a
 * second named tenant. The principal IDs `root` and `ana` recur in every tenant, so an owner check that
 * forgets the tenant shows. Generation leans on purpose (see `who`, `target`, the opening creates):
 * KEYWARDEN_MGMT_STATS=1 prints how often each outcome was reached.
 *
 * A failure prints fast-check's seed and path; replay with
 *   KEYWARDEN_MGMT_SEED=<seed> KEYWARDEN_MGMT_PATH=<path> npx vitest run test/http/management-properties.test.ts -t '<test name>'
 * KEYWARDEN_MGMT_RUNS=<n> sets the runs per test (e.g. 1000 for a soak; the time budget is lifted then).
 */
import fc from 'fast-check'
import { afterAll, describe, it } from 'vitest'
import { createManagementHandler, KeyManager, type ApiKey, type LimitsOptions, type ManagementHandler, type Principal } from '../../src/index.js'
import { ROUTES } from '../../src/http/management/route-table.js'
import { manualClock, PEPPER } from '../helpers.js'
import { BACKENDS, type Backend } from '../support/backends.js'
import { optionalInteger } from '../support/env.js'

// ---------------------------------------------------------------------------------------------------
// The configuration under test

const BASE = 'https://app.example.com/api/keys'
const ROLES = { admin: ['*'], member: ['data:read', 'data:write'] }
/** Keys a member may hold in its tenant; admins are unlimited (the quota's owner context is the principal). */
const MEMBER_QUOTA = 3
/** Credits of every kind of pool: a key's own, its owner's (within the tenant), its tenant's; and none. */
const LIMITS = {
  policies: {
    plain: { rate: [{ name: 'burst', limit: 1000, window: '1s' }] },
    metered: { credits: { initial: 50 } },
    pooled: { credits: { per: 'owner', initial: 20 } },
    team: { credits: { per: 'tenant', initial: 30 } },
  },
  defaultPolicy: 'plain',
} as const satisfies LimitsOptions

/** Tenant names hold a `-`, which no key ID, secret, MAC or cursor (base62) can: a hit in a body is a real mention. */
const PRINCIPAL_SETS = {
  'three tenants': ['tenant-acme', 'tenant-globex', 'tenant-initech'],
  'a tenant, principals without one, and another tenant': ['tenant-acme', null, 'tenant-globex'],
} as const satisfies Record<string, readonly (string | null)[]>

/** Calls per run, at most; the first few (up to OPENING_CREATES) are creates. */
const MAX_CALLS = 30
const OPENING_CREATES = 8
const RUNS: Record<'memory' | 'postgres', number> = { memory: 60, postgres: 15 }
const LIST_PAGE_LIMIT = 40

const replay = {
  seed: optionalInteger('KEYWARDEN_MGMT_SEED'),
  path: process.env.KEYWARDEN_MGMT_PATH || undefined,
  runs: optionalInteger('KEYWARDEN_MGMT_RUNS'),
}

// ---------------------------------------------------------------------------------------------------
// Principals

interface Actor {
  readonly index: number
  readonly principal: Principal
  readonly id: string
  readonly tenantId: string | null
  readonly admin: boolean
}

function tag(tenantId: string | null): string {
  return tenantId === null ? 'none' : tenantId.replace(/^tenant-/, '')
}

/** Per tenant: `root` (admin) and `ana` (member), whose IDs recur in every tenant, and `ben-<tenant>` (member). */
function actorsOf(tenants: readonly (string | null)[]): Actor[] {
  return tenants
    .flatMap((tenantId) => [
      { id: 'root', tenantId, role: 'admin' },
      { id: 'ana', tenantId, role: 'member' },
      { id: `ben-${tag(tenantId)}`, tenantId, role: 'member' },
    ])
    .map((principal, index) => ({ index, principal, id: principal.id, tenantId: principal.tenantId, admin: principal.role === 'admin' }))
}

// ---------------------------------------------------------------------------------------------------
// Generated calls

const OWNER_PICKS = ['omit', 'self', 'peer', 'admin', 'ghost', 'foreign'] as const
type OwnerPick = (typeof OWNER_PICKS)[number]
const GRANTS = ['none', 'readScope', 'billingScope', 'memberRole', 'adminRole'] as const
type Grant = (typeof GRANTS)[number]
const PATCHES = ['rename', 'describe', 'readScope', 'billingScope', 'adminRole', 'empty'] as const
type PatchKind = (typeof PATCHES)[number]
const NAMES = ['CI', 'deploy', 'backup'] as const
const POLICIES = [null, 'plain', 'metered', 'pooled', 'team'] as const
const IF_MATCH = ['none', 'none', 'current', 'stale'] as const
type IfMatch = (typeof IF_MATCH)[number]
const READS = ['get', 'permissions', 'audit', 'credits'] as const
const STATE_CHANGES = ['enable', 'disable', 'revoke', 'rotate', 'delete'] as const
const LIST_STATUSES = ['active', 'disabled', 'revoked'] as const
type ListStatus = (typeof LIST_STATUSES)[number]
const IDEMPOTENCY_KEYS = ['props-idempotency-key-0001', 'props-idempotency-key-0002'] as const

/**
 * A key named by a call: the n-th of the disabled keys the principal may see (to meet "re-enabling a key
 * someone else disabled" often), of the keys it may see, of its tenant's keys, of every key
 * this run made (other tenants' and deleted ones included); an ID that never existed; or no key ID at all.
 * An empty choice falls back to the next wider one.
 */
type Target = { readonly kind: 'disabled' | 'visible' | 'tenant' | 'any' | 'never'; readonly pick: number } | { readonly kind: 'malformed' }

type Call =
  | {
      readonly op: 'create'
      readonly who: number
      readonly owner: OwnerPick
      readonly grant: Grant
      readonly name: number
      readonly policy: number
      readonly credits: number | null
      readonly idempotency: number | null
    }
  /** The last create again, by the same principal (a client retrying after a lost answer). */
  | { readonly op: 'retry' }
  | { readonly op: 'list'; readonly who: number; readonly owner: OwnerPick; readonly limit: number | null; readonly status: ListStatus | null }
  | { readonly op: 'expiring'; readonly who: number; readonly owner: OwnerPick; readonly limit: number | null; readonly within: '100d' | '1d' }
  | { readonly op: 'meta'; readonly who: number }
  | { readonly op: 'read'; readonly who: number; readonly target: Target; readonly route: (typeof READS)[number] }
  | { readonly op: 'patch'; readonly who: number; readonly target: Target; readonly patch: PatchKind; readonly name: number; readonly ifMatch: IfMatch }
  | { readonly op: (typeof STATE_CHANGES)[number]; readonly who: number; readonly target: Target; readonly ifMatch: IfMatch }
  | { readonly op: 'credits'; readonly who: number; readonly target: Target; readonly mode: 'add' | 'set'; readonly amount: number }

/** Half the calls come from the first tenant's principals, so its keys pile up and its admin and members meet on them. */
const who = fc.oneof({ weight: 1, arbitrary: fc.nat({ max: 2 }) }, { weight: 1, arbitrary: fc.nat({ max: 8 }) })
const pick = <T>(values: readonly T[]) => fc.constantFrom(...values)
const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('disabled' as const), pick: fc.nat({ max: 63 }) }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('visible' as const), pick: fc.nat({ max: 63 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tenant' as const), pick: fc.nat({ max: 63 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('any' as const), pick: fc.nat({ max: 63 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('never' as const), pick: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'malformed' as const }) },
)
const enableTarget: fc.Arbitrary<Target> = fc.oneof({ weight: 2, arbitrary: fc.record({ kind: fc.constant('disabled' as const), pick: fc.nat({ max: 63 }) }) }, { weight: 1, arbitrary: target })
/** Mostly absent, sometimes a value. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary })
/** Mostly small pages, so lists page often (and cursors show up). */
const limit = fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: fc.constantFrom(1, 2, 3, 7) })
/** Lists come from anyone alike: the keys pile up in the first tenant, and everybody else's lists page past them. */
const lister = fc.nat({ max: 8 })

const listOwner = fc.oneof({ weight: 3, arbitrary: fc.constant('omit' as const) }, { weight: 2, arbitrary: fc.constant('self' as const) }, { weight: 2, arbitrary: pick(OWNER_PICKS) })

const createCall = fc.record({
  op: fc.constant('create' as const),
  who,
  owner: fc.oneof(
    { weight: 4, arbitrary: pick(['omit', 'self'] as const) },
    { weight: 2, arbitrary: fc.constant('peer' as const) },
    { weight: 1, arbitrary: pick(['admin', 'ghost', 'foreign'] as const) },
  ),
  grant: fc.oneof({ weight: 3, arbitrary: fc.constant('none' as const) }, { weight: 2, arbitrary: pick(GRANTS) }),
  name: fc.nat({ max: NAMES.length - 1 }),
  policy: fc.nat({ max: POLICIES.length - 1 }),
  credits: rarely(fc.nat({ max: 500 })),
  idempotency: rarely(fc.nat({ max: IDEMPOTENCY_KEYS.length - 1 })),
})

const callArbitrary: fc.Arbitrary<Call> = fc.oneof(
  { weight: 8, arbitrary: createCall },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('retry' as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('list' as const), who: lister, owner: listOwner, limit, status: rarely(pick(LIST_STATUSES)) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('expiring' as const), who: lister, owner: listOwner, limit, within: pick(['100d', '100d', '1d'] as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('meta' as const), who }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), who, target, route: pick(READS) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('patch' as const), who, target, patch: pick(PATCHES), name: fc.nat({ max: NAMES.length - 1 }), ifMatch: pick(IF_MATCH) }) },
  // Disables come often from the first tenant's admin, enables from its members: so members meet keys an admin disabled.
  { weight: 3, arbitrary: fc.record({ op: fc.constant('disable' as const), who: fc.oneof(fc.constant(0), who), target, ifMatch: pick(IF_MATCH) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('enable' as const), who: fc.oneof(fc.integer({ min: 1, max: 2 }), who), target: enableTarget, ifMatch: pick(IF_MATCH) }) },
  { weight: 3, arbitrary: fc.record({ op: pick(STATE_CHANGES), who, target, ifMatch: pick(IF_MATCH) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('credits' as const), who, target, mode: pick(['add', 'set'] as const), amount: fc.integer({ min: 1, max: 1000 }) }) },
)

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
/** Well-formed key IDs (16 base62 characters) that are never issued. */
const neverIds = fc.uniqueArray(fc.string({ unit: fc.constantFrom(...BASE62), minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 4 })
/** The shape of a secret (32 base62 characters): the KeyManager refuses it as an ID without a store access. */
const MALFORMED_ID = 'Zx8cVb7nMq6wEr5tYu4iOp3aSd2fGh1jZx8c'

/** A few creates first, so that later calls find keys of several owners and tenants to aim at; then anything. */
const scenario = fc.record({
  tenantCount: fc.constantFrom(2, 3),
  neverIds,
  calls: fc
    .tuple(fc.array(createCall, { minLength: 2, maxLength: OPENING_CREATES, size: 'max' }), fc.array(callArbitrary, { minLength: 8, maxLength: MAX_CALLS - OPENING_CREATES, size: 'max' }))
    .map(([opening, rest]): Call[] => [...opening, ...rest]),
})
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never

// ---------------------------------------------------------------------------------------------------
// The model

interface ModelKey {
  readonly id: string
  readonly tenantId: string | null
  readonly ownerId: string
  enabled: boolean
  /** The ID of the principal that disabled it, `null` while enabled. */
  disabledBy: string | null
  revoked: boolean
  deleted: boolean
  rotated: boolean
}

interface Slot {
  readonly keyId: string
}

class Model {
  readonly keys = new Map<string, ModelKey>()
  /** Key IDs in creation order, deleted ones included, for targets. */
  readonly order: string[] = []
  /** Idempotent creates by principal, idempotency key and owner. */
  readonly slots = new Map<string, Slot>()

  add(key: ModelKey): void {
    this.keys.set(key.id, key)
    this.order.push(key.id)
  }

  /** Keys that exist now. */
  live(): ModelKey[] {
    return [...this.keys.values()].filter((key) => !key.deleted)
  }

  /** The default policy's `read`: the tenant floor, then admin or owner. Deleted keys are seen by nobody. */
  visible(actor: Actor, key: ModelKey | undefined): boolean {
    return key !== undefined && !key.deleted && key.tenantId === actor.tenantId && (actor.admin || key.ownerId === actor.id)
  }

  /** Keys a member counts against its quota: not revoked, its own, in its tenant. */
  held(ownerId: string, tenantId: string | null): number {
    return this.live().filter((key) => !key.revoked && key.ownerId === ownerId && key.tenantId === tenantId).length
  }
}

// ---------------------------------------------------------------------------------------------------
// Running a scenario

interface Context {
  readonly keys: KeyManager
  readonly handler: ManagementHandler
  readonly actors: readonly Actor[]
  readonly tenants: readonly (string | null)[]
  readonly neverIds: readonly string[]
  readonly model: Model
  /** The 404 of `GET /{id}` for an ID that never existed: what every hidden key must answer. */
  notFound: Answer
  lastCreate: { readonly actor: Actor; readonly call: Extract<Call, { op: 'create' }> } | null
}

interface Answer {
  readonly status: number
  readonly headers: readonly [string, string][]
  readonly text: string
  readonly json: unknown
}

interface Sent {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  readonly path: string
  readonly body?: unknown
  readonly headers?: Record<string, string>
}

/** How often each outcome was reached (KEYWARDEN_MGMT_STATS=1 prints them), to see what the generated calls cover. */
const outcomes = new Map<string, number>()

function note(outcome: string): void {
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
}

async function send(ctx: Context, actor: Actor, request: Sent): Promise<Answer> {
  const headers: Record<string, string> = { 'x-principal': String(actor.index), ...request.headers }
  if (request.body !== undefined) headers['content-type'] = 'application/json'
  const response = await ctx.handler(
    new Request(`${BASE}${request.path}`, { method: request.method, headers, ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }) }),
  )
  const text = await response.text()
  note(`${request.method} ${request.path.replace(/^\/[0-9A-Za-z]{16,}/, '/{id}').replace(/\?.*/, '')} ${actor.admin ? 'admin' : 'member'} -> ${response.status}`)
  const type = response.headers.get('content-type') ?? ''
  return {
    status: response.status,
    headers: [...response.headers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    text,
    json: text !== '' && type.includes('json') ? (JSON.parse(text) as unknown) : null,
  }
}

/** An answer as an error message shows it: tokens redacted (the leak canary scans test output too). */
function show(answer: Answer): string {
  const body = answer.text.replace(/"token":"[^"]*"/g, '"token":"<redacted>"')
  return `${answer.status} ${JSON.stringify(Object.fromEntries(answer.headers))} ${body.length > 1500 ? `${body.slice(0, 1500)}…` : body}`
}

class Disagreement extends Error {
  override readonly name = 'Disagreement'
}

function fail(label: string, message: string, answer?: Answer): never {
  throw new Disagreement(`${label}: ${message}${answer === undefined ? '' : `\n  answer: ${show(answer)}`}`)
}

function codeOf(answer: Answer): unknown {
  return (answer.json as { code?: unknown } | null)?.code
}

/** Every key in the store, all tenants. */
async function snapshot(ctx: Context): Promise<Map<string, ApiKey>> {
  const page = await ctx.keys.list({ limit: 1000 })
  if (page.nextCursor !== null) throw new Error('more keys than one snapshot page holds')
  return new Map(page.items.map((key) => [key.id, key]))
}

async function balances(ctx: Context, ids: Iterable<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  for (const id of ids) found.set(id, JSON.stringify(await ctx.keys.getCredits({ keyId: id })))
  return found
}

/** The answer never names a key the principal may not see, nor another tenant. */
function checkNoForeignMentions(ctx: Context, actor: Actor, answer: Answer, label: string): void {
  const text = `${answer.text}\n${answer.headers.map(([name, value]) => `${name}: ${value}`).join('\n')}`
  for (const key of ctx.model.keys.values()) {
    if (ctx.model.visible(actor, key)) continue
    if (text.includes(key.id)) {
      const why = key.deleted ? 'a deleted key' : key.tenantId === actor.tenantId ? `a key of ${key.ownerId} in its own tenant` : `a key of tenant ${key.tenantId}`
      fail(label, `the answer names ${why} (${key.id}), which ${actor.id}@${actor.tenantId} may not see`, answer)
    }
  }
  for (const tenant of ctx.tenants) {
    if (tenant !== null && tenant !== actor.tenantId && text.includes(tenant)) fail(label, `the answer names another tenant (${tenant})`, answer)
  }
}

function sameBytes(a: Answer, b: Answer): boolean {
  return a.status === b.status && a.text === b.text && JSON.stringify(a.headers) === JSON.stringify(b.headers)
}

function expectNotFound(ctx: Context, answer: Answer, label: string, why: string): void {
  if (!sameBytes(answer, ctx.notFound)) fail(label, `${why}: expected the bytes of the 404 for an ID that never existed (${show(ctx.notFound)})`, answer)
}

function expectStatus(answer: Answer, status: number, label: string, code?: string): void {
  if (answer.status !== status || (code !== undefined && codeOf(answer) !== code)) fail(label, `expected ${status}${code === undefined ? '' : ` ${code}`}`, answer)
}

/** Who a pick names, from the principal's point of view; `undefined` for `omit`. */
function ownerOf(ctx: Context, actor: Actor, owner: OwnerPick): string | undefined {
  switch (owner) {
    case 'omit':
      return undefined
    case 'self':
      return actor.id
    case 'peer':
      return actor.id === 'ana' ? `ben-${tag(actor.tenantId)}` : 'ana'
    case 'admin':
      return 'root'
    case 'ghost':
      return 'ghost-user'
    case 'foreign':
      return `ben-${tag(ctx.tenants.find((tenant) => tenant !== actor.tenantId) ?? null)}`
  }
}

function grantBody(grant: Grant): { scopes?: string[]; roles?: string[] } {
  switch (grant) {
    case 'none':
      return {}
    case 'readScope':
      return { scopes: ['data:read'] }
    case 'billingScope':
      return { scopes: ['billing:read'] }
    case 'memberRole':
      return { roles: ['member'] }
    case 'adminRole':
      return { roles: ['admin'] }
  }
}

/** Grants beyond a member's ceiling (its role's scopes, and the roles those cover). */
function aboveCeiling(actor: Actor, grant: Grant | PatchKind): boolean {
  return !actor.admin && (grant === 'billingScope' || grant === 'adminRole')
}

function targetId(ctx: Context, actor: Actor, target: Target): string {
  if (target.kind === 'malformed') return MALFORMED_ID
  const { model } = ctx
  const choices = {
    disabled: model.order.filter((id) => model.visible(actor, model.keys.get(id)) && !model.keys.get(id)!.enabled),
    visible: model.order.filter((id) => model.visible(actor, model.keys.get(id))),
    tenant: model.order.filter((id) => model.keys.get(id)!.tenantId === actor.tenantId),
    any: model.order,
    never: [],
  }
  const kinds = ['disabled', 'visible', 'tenant', 'any', 'never'] as const
  for (const kind of kinds.slice(kinds.indexOf(target.kind))) {
    const ids = choices[kind]
    if (ids.length > 0) return ids[target.pick % ids.length]!
  }
  return ctx.neverIds[target.pick % ctx.neverIds.length]!
}

function ifMatchHeader(ifMatch: IfMatch, current: ApiKey | undefined): Record<string, string> {
  const version = current?.version ?? 1
  if (ifMatch === 'none') return {}
  return { 'if-match': `"${ifMatch === 'current' ? version : version + 1}"` }
}

/** A legitimate refusal: its status and problem code. */
interface Refusal {
  readonly status: number
  readonly code: string
}

const OPERATIONS = { patch: 'updateKey', enable: 'enableKey', disable: 'disableKey', revoke: 'revokeKey', rotate: 'rotateKey', delete: 'deleteKey' } as const

/** Whether the route reads If-Match, as the route table (the source of the OpenAPI document) says. */
function readsIfMatch(op: keyof typeof OPERATIONS): boolean {
  return ROUTES.find((route) => route.operationId === OPERATIONS[op])?.headers?.includes('If-Match') === true
}

async function expectUnchanged(ctx: Context, id: string, before: ApiKey | undefined, label: string): Promise<void> {
  const after = await ctx.keys.get(id)
  if (after?.version !== before?.version) fail(label, `a refused call changed the key from version ${before?.version} to ${after?.version}`)
}

async function runScenario(backend: Backend, tenants: readonly (string | null)[], { tenantCount, neverIds, calls }: Scenario): Promise<void> {
  const used = tenants.slice(0, tenantCount)
  const actors = actorsOf(used)
  const handle = await backend.open()
  const time = manualClock()
  const keys = new KeyManager({
    store: handle.store,
    prefix: 'kwp',
    environments: ['live'],
    roles: ROLES,
    pepper: PEPPER,
    expiry: { default: '90d', max: '365d' },
    maxKeysPerOwner: (owner) => (owner['role'] === 'admin' ? Infinity : MEMBER_QUOTA),
    limits: LIMITS,
    clock: time.clock,
  })
  const handler = createManagementHandler(keys, {
    basePath: '/api/keys',
    authorize: (request) => actors[Number(request.headers.get('x-principal'))]?.principal ?? null,
  })
  const ctx: Context = { keys, handler, actors, tenants: used, neverIds, model: new Model(), notFound: null as unknown as Answer, lastCreate: null }
  try {
    ctx.notFound = await send(ctx, actors[0]!, { method: 'GET', path: `/${neverIds[0]}` })
    if (ctx.notFound.status !== 404 || codeOf(ctx.notFound) !== 'not_found') fail('setup', 'an ID that never existed is not a 404 not_found', ctx.notFound)
    for (const [step, generated] of calls.entries()) {
      time.advance(1_000)
      const { actor, call } = generated.op === 'retry' ? (ctx.lastCreate ?? { actor: actors[0]!, call: { op: 'meta' as const, who: 0 } }) : { actor: actors[generated.who % actors.length]!, call: generated }
      if (call.op === 'create') ctx.lastCreate = { actor, call }
      note(`calls`)
      await runCall(ctx, actor, call, `call #${step} ${generated.op === 'retry' ? 'retry of ' : ''}${JSON.stringify(call)} by ${actor.id}@${actor.tenantId}`)
    }
  } finally {
    await keys.close()
    await handle.cleanup()
  }
}

async function runCall(ctx: Context, actor: Actor, call: Exclude<Call, { op: 'retry' }>, label: string): Promise<void> {
  const { model } = ctx
  const before = await snapshot(ctx)
  const changesCredits = call.op === 'credits' || (call.op === 'create' && call.credits !== null)
  const balancesBefore = changesCredits ? await balances(ctx, before.keys()) : null
  let created: string | null = null
  let deleted: string | null = null
  let target: string | null = null

  switch (call.op) {
    case 'create':
      created = await runCreate(ctx, actor, call, label)
      break
    case 'list':
    case 'expiring':
      await runList(ctx, actor, call, label)
      break
    case 'meta': {
      const answer = await send(ctx, actor, { method: 'GET', path: '/meta' })
      checkNoForeignMentions(ctx, actor, answer, label)
      expectStatus(answer, 200, label)
      const meta = answer.json as { principal: { id: string; tenantId: string | null; admin: boolean }; quota: { limit: number | null; used: number } }
      const quota = { limit: actor.admin ? null : MEMBER_QUOTA, used: model.held(actor.id, actor.tenantId) }
      if (meta.principal.id !== actor.id || meta.principal.tenantId !== actor.tenantId || meta.principal.admin !== actor.admin) fail(label, 'meta names another principal', answer)
      if (JSON.stringify({ limit: meta.quota.limit, used: meta.quota.used }) !== JSON.stringify(quota)) fail(label, `meta's quota is not ${JSON.stringify(quota)}`, answer)
      break
    }
    default: {
      target = targetId(ctx, actor, call.target)
      const result = await runKeyCall(ctx, actor, call, target, before.get(target), label)
      if (result === 'deleted') deleted = target
    }
  }

  // Nothing outside what the principal may see changed; the only key that appeared or went is its own doing.
  const after = await snapshot(ctx)
  for (const [id, key] of before) {
    const now = after.get(id)
    if (id === deleted) {
      if (now !== undefined) fail(label, `the deleted key ${id} is still in the store`)
      continue
    }
    if (now === undefined) fail(label, `key ${id} (owner ${key.ownerId}, tenant ${key.tenantId}) disappeared from the store`)
    // Credits pools are not key records: only the path's key may change (a first balance of its own is a write to it).
    if (id !== target && now.version !== key.version) fail(label, `key ${id} (owner ${key.ownerId}, tenant ${key.tenantId}) changed from version ${key.version} to ${now.version}`)
  }
  for (const id of after.keys()) {
    if (!before.has(id) && id !== created) fail(label, `key ${id} appeared in the store (owner ${after.get(id)!.ownerId}, tenant ${after.get(id)!.tenantId})`)
  }
  if (balancesBefore !== null) {
    const balancesAfter = await balances(ctx, before.keys())
    for (const [id, balance] of balancesBefore) {
      if (id === deleted || model.visible(actor, model.keys.get(id))) continue
      if (balancesAfter.get(id) !== balance) fail(label, `the credits of key ${id} (owner ${before.get(id)!.ownerId}, tenant ${before.get(id)!.tenantId}), which it may not see, went from ${balance} to ${balancesAfter.get(id)}`)
    }
  }
  checkModel(ctx, after, label)
}

/** The model's view of every key agrees with the store's. */
function checkModel(ctx: Context, stored: Map<string, ApiKey>, label: string): void {
  const live = ctx.model.live()
  if (live.length !== stored.size) fail(label, `the model holds ${live.length} keys, the store ${stored.size}`)
  for (const key of live) {
    const real = stored.get(key.id)
    if (real === undefined) fail(label, `the model's key ${key.id} is not in the store`)
    const expected = { tenantId: key.tenantId, ownerId: key.ownerId, enabled: key.enabled, disabledBy: key.disabledBy, revoked: key.revoked }
    const actual = { tenantId: real.tenantId, ownerId: real.ownerId, enabled: real.enabled, disabledBy: real.disabledBy?.id ?? null, revoked: real.revokedAt !== null }
    if (JSON.stringify(actual) !== JSON.stringify(expected)) fail(label, `key ${key.id} is ${JSON.stringify(actual)} in the store, the model says ${JSON.stringify(expected)}`)
  }
}

async function runCreate(ctx: Context, actor: Actor, call: Extract<Call, { op: 'create' }>, label: string): Promise<string | null> {
  const { model } = ctx
  const ownerId = ownerOf(ctx, actor, call.owner)
  const owner = ownerId ?? actor.id
  const policy = POLICIES[call.policy]!
  const grants = grantBody(call.grant)
  const body = {
    name: NAMES[call.name]!,
    ...(ownerId === undefined ? {} : { ownerId }),
    ...grants,
    ...(policy === null ? {} : { policy }),
    ...(call.credits === null ? {} : { credits: call.credits }),
  }
  const idempotencyKey = call.idempotency === null ? undefined : IDEMPOTENCY_KEYS[call.idempotency]!
  const answer = await send(ctx, actor, { method: 'POST', path: '/', body, headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey } })
  checkNoForeignMentions(ctx, actor, answer, label)

  // What the policy forbids (a member naming another owner) is a 403, whatever else the request holds.
  if (!actor.admin && owner !== actor.id) {
    note('refused: create naming another owner')
    expectStatus(answer, 403, label, 'forbidden')
    return null
  }
  // Grants above the ceiling, and credits from a member: 403s, in whichever order the router checks them.
  const reasons: Refusal[] = []
  if (aboveCeiling(actor, call.grant)) reasons.push({ status: 403, code: 'grant_not_allowed' })
  if (!actor.admin && call.credits !== null) reasons.push({ status: 403, code: 'forbidden' })
  if (reasons.length > 0) {
    const refusal = reasons.find((reason) => answer.status === reason.status && codeOf(answer) === reason.code)
    if (refusal === undefined) fail(label, `expected one of ${reasons.map((reason) => `${reason.status} ${reason.code}`).join(', ')}`, answer)
    note(`refused: create, ${refusal.code === 'forbidden' ? 'credits from a member' : 'above the ceiling'}`)
    return null
  }

  const slotKey = JSON.stringify([actor.index, idempotencyKey, owner])
  // A replay needs the key as this request would make it: the fields a create compares, and no rotation since.
  const signature = JSON.stringify([body.name, null, grants.scopes ?? [], grants.roles ?? []])
  const slot = idempotencyKey === undefined ? undefined : model.slots.get(slotKey)
  if (slot !== undefined) {
    const existing = model.keys.get(slot.keyId)!
    const current = existing.deleted ? null : await ctx.keys.get(slot.keyId)
    const replayable = current !== null && !existing.rotated && JSON.stringify([current.name, current.description, current.scopes, current.roles]) === signature
    if (!replayable) {
      note(`refused: idempotent create, ${existing.deleted ? 'deleted' : 'changed'} since`)
      expectStatus(answer, 409, label, 'idempotency_conflict')
      return null
    }
    note('idempotent create replayed')
    expectStatus(answer, 201, label)
    const key = (answer.json as { key: ApiKey }).key
    if (key.id !== slot.keyId) fail(label, `a replay answered key ${key.id}, not ${slot.keyId}`, answer)
    return null
  }
  if (!actor.admin && model.held(owner, actor.tenantId) >= MEMBER_QUOTA) {
    note('refused: create over the quota')
    expectStatus(answer, 409, label, 'quota_exceeded')
    return null
  }

  expectStatus(answer, 201, label)
  const { key, token } = answer.json as { key: ApiKey; token: string }
  if (key.tenantId !== actor.tenantId || key.ownerId !== owner) fail(label, `the new key is owned by ${key.ownerId} in ${key.tenantId}, not by ${owner} in ${actor.tenantId}`, answer)
  if (typeof token !== 'string' || model.keys.has(key.id)) fail(label, 'the answer is not a new key with its token', answer)
  note(`created: ${actor.admin ? (owner === actor.id ? 'admin for itself' : 'admin for another owner') : 'member'}`)
  model.add({ id: key.id, tenantId: actor.tenantId, ownerId: owner, enabled: true, disabledBy: null, revoked: false, deleted: false, rotated: false })
  if (idempotencyKey !== undefined) model.slots.set(slotKey, { keyId: key.id })
  if (call.credits !== null) {
    const balance = await ctx.keys.getCredits({ keyId: key.id })
    if (balance?.remaining !== call.credits) fail(label, `the new key's balance is ${JSON.stringify(balance)}, not ${call.credits}`)
  }
  return key.id
}

async function runList(ctx: Context, actor: Actor, call: Extract<Call, { op: 'list' | 'expiring' }>, label: string): Promise<void> {
  const ownerId = ownerOf(ctx, actor, call.owner)
  const query = new URLSearchParams()
  if (call.op === 'expiring') query.set('within', call.within)
  if (ownerId !== undefined) query.set('ownerId', ownerId)
  if (call.limit !== null) query.set('limit', String(call.limit))
  if (call.op === 'list' && call.status !== null) query.set('status', call.status)
  const path = call.op === 'list' ? '/' : '/expiring'
  const seen: string[] = []
  let cursor: string | null = null
  let cursorCount = 0
  for (let page = 0; ; page++) {
    if (page === LIST_PAGE_LIMIT) fail(label, `still a next page after ${LIST_PAGE_LIMIT} pages`)
    const pageQuery = new URLSearchParams(query)
    if (cursor !== null) pageQuery.set('cursor', cursor)
    const answer = await send(ctx, actor, { method: 'GET', path: `${path}?${pageQuery}` })
    const pageLabel = `${label}, page ${page + 1}`
    checkNoForeignMentions(ctx, actor, answer, pageLabel)
    expectStatus(answer, 200, pageLabel)
    const { items, nextCursor } = answer.json as { items: ApiKey[]; nextCursor: string | null }
    for (const item of items) {
      const key = ctx.model.keys.get(item.id)
      if (!ctx.model.visible(actor, key)) fail(pageLabel, `lists key ${item.id}, which it may not see`, answer)
      if (!actor.admin && item.ownerId !== actor.id) fail(pageLabel, `a member's list holds a key of ${item.ownerId}`, answer)
      seen.push(item.id)
    }
    if (nextCursor === null) break
    cursor = nextCursor
    cursorCount++
  }
  const expected = ctx.model
    .live()
    .filter((key) => ctx.model.visible(actor, key) && (ownerId === undefined || key.ownerId === ownerId))
    .filter((key) => (call.op === 'list' ? call.status === null || call.status === statusOf(key) : !key.revoked && call.within === '100d'))
    .map((key) => key.id)
    .sort()
  note(`${call.op}: ${expected.length === 0 ? 'empty' : 'keys'}${seen.length > 0 && cursorCount > 0 ? ', several pages' : ''}`)
  const got = [...seen].sort()
  if (JSON.stringify(got) !== JSON.stringify(expected)) fail(label, `the pages hold ${JSON.stringify(got)}, expected exactly ${JSON.stringify(expected)}`)
}

/** A key's status as lists filter on it; nothing expires (the clock moves seconds, keys live 90 days). */
function statusOf(key: ModelKey): ListStatus {
  return key.revoked ? 'revoked' : key.enabled ? 'active' : 'disabled'
}

/** A call on one key: checks the answer against the model, and updates the model. */
async function runKeyCall(ctx: Context, actor: Actor, call: Exclude<Call, { op: 'create' | 'retry' | 'list' | 'expiring' | 'meta' }>, id: string, current: ApiKey | undefined, label: string): Promise<'deleted' | null> {
  const { model } = ctx
  const known = model.keys.get(id)
  const path = `/${id}`
  const request: Sent = (() => {
    switch (call.op) {
      case 'read':
        return { method: 'GET', path: call.route === 'get' ? path : `${path}/${call.route}` }
      case 'patch': {
        const patch = {
          rename: { name: NAMES[call.name]! },
          describe: { description: `about ${NAMES[call.name]!}` },
          readScope: { scopes: ['data:read'] },
          billingScope: { scopes: ['billing:read'] },
          adminRole: { roles: ['admin'] },
          empty: {},
        }[call.patch]
        return { method: 'PATCH', path, body: patch, headers: ifMatchHeader(call.ifMatch, current) }
      }
      case 'delete':
        return { method: 'DELETE', path, headers: ifMatchHeader(call.ifMatch, current) }
      case 'credits':
        return { method: 'POST', path: `${path}/credits`, body: call.mode === 'add' ? { add: call.amount } : { set: call.amount } }
      default:
        return { method: 'POST', path: `${path}/${call.op}`, body: call.op === 'rotate' ? { gracePeriod: '1h' } : { reason: 'property test' }, headers: ifMatchHeader(call.ifMatch, current) }
    }
  })()
  const answer = await send(ctx, actor, request)
  checkNoForeignMentions(ctx, actor, answer, label)

  if (known === undefined || !model.visible(actor, known)) {
    const why =
      known === undefined ? (call.target.kind === 'malformed' ? 'a malformed ID' : 'an ID that never existed') : known.deleted ? 'a deleted key' : known.tenantId !== actor.tenantId ? "another tenant's key" : "another owner's key"
    expectNotFound(ctx, answer, label, why)
    note(`hidden: ${why}`)
    // (The snapshot after every call checks the whole store; this is the target on its own, as the issue asks.)
    const after = id === MALFORMED_ID ? null : await ctx.keys.get(id)
    if ((after?.version ?? null) !== (current?.version ?? null)) fail(label, `${why} changed from version ${current?.version} to ${after?.version}`)
    return null
  }

  // A key the principal sees. What the policy forbids is a 403, whatever else is wrong with the request.
  const key = known
  const forbidden = (call.op === 'enable' && !actor.admin && key.disabledBy !== null && key.disabledBy !== actor.id) || (call.op === 'credits' && !actor.admin)
  if (forbidden) {
    expectStatus(answer, 403, label, 'forbidden')
    note(`refused: ${call.op} 403 forbidden (${actor.admin ? 'admin' : 'member'})`)
    await expectUnchanged(ctx, id, current, label)
    return null
  }
  // Otherwise every legitimate reason to refuse that applies; the answer is one of them (their order is the router's business).
  const reasons: Refusal[] = []
  if (call.op !== 'read' && call.op !== 'credits' && call.ifMatch === 'stale' && readsIfMatch(call.op)) reasons.push({ status: 412, code: 'version_conflict' })
  if (call.op === 'patch' && aboveCeiling(actor, call.patch)) reasons.push({ status: 403, code: 'grant_not_allowed' })
  if (call.op === 'patch' && call.patch === 'empty') reasons.push({ status: 422, code: 'validation_failed' })
  if (key.revoked && (call.op === 'patch' || call.op === 'enable' || call.op === 'disable' || call.op === 'rotate')) reasons.push({ status: 409, code: 'key_revoked' })
  if (reasons.length > 0) {
    const refusal = reasons.find((reason) => answer.status === reason.status && codeOf(answer) === reason.code)
    if (refusal === undefined) fail(label, `expected one of ${reasons.map((reason) => `${reason.status} ${reason.code}`).join(', ')}`, answer)
    note(`refused: ${call.op} ${refusal.status} ${refusal.code} (${actor.admin ? 'admin' : 'member'})`)
    await expectUnchanged(ctx, id, current, label)
    return null
  }

  const json = answer.json as Record<string, unknown> | null
  switch (call.op) {
    case 'read':
      expectStatus(answer, 200, label)
      if (call.route === 'get' && (json?.['id'] !== id || answer.headers.find(([name]) => name === 'etag')?.[1] !== `"${current?.version}"`)) fail(label, 'not the key asked for, at its version', answer)
      if (call.route === 'credits' && !(json !== null && 'credits' in json)) fail(label, 'no credits in the answer', answer)
      return null
    case 'patch':
      expectStatus(answer, 200, label)
      if (json?.['id'] !== id) fail(label, 'the updated key is not the key asked for', answer)
      return null
    case 'enable':
      expectStatus(answer, 200, label)
      key.enabled = true
      key.disabledBy = null
      return null
    case 'disable':
      expectStatus(answer, 200, label)
      if (key.enabled) note(`disabled: ${actor.admin && key.ownerId !== actor.id ? "an admin, another owner's key" : 'the owner'}`)
      if (key.enabled) key.disabledBy = actor.id
      key.enabled = false
      return null
    case 'revoke':
      expectStatus(answer, 200, label)
      key.revoked = true
      return null
    case 'rotate':
      expectStatus(answer, 200, label)
      if ((json?.['key'] as ApiKey | undefined)?.id !== id) fail(label, 'the rotated key is not the key asked for', answer)
      key.rotated = true
      return null
    case 'delete':
      if (answer.status !== 204 || answer.text !== '') fail(label, 'expected 204 without a body', answer)
      key.deleted = true
      return 'deleted'
    case 'credits': {
      expectStatus(answer, 200, label)
      const remaining = (json?.['credits'] as { remaining?: number } | null)?.remaining
      if (call.mode === 'set' && remaining !== call.amount) fail(label, `the balance is ${remaining}, not the ${call.amount} set`, answer)
      return null
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The suites

const backends = BACKENDS.filter((backend): backend is Backend & { name: 'memory' | 'postgres' } => backend.name === 'memory' || backend.name === 'postgres')
const gates = await Promise.all(backends.map((backend) => backend.gate()))

for (const [index, backend] of backends.entries()) {
  describe.skipIf(!gates[index]!.available)(`management API properties: ${backend.name}`, () => {
    afterAll(() => backend.close())

    for (const [setName, tenants] of Object.entries(PRINCIPAL_SETS)) {
      it(`no principal sees or changes more than the default policy allows (${setName})`, { timeout: 120_000 }, async () => {
        await fc.assert(
          fc.asyncProperty(scenario, (input) => runScenario(backend, tenants, input)),
          {
            numRuns: replay.runs ?? RUNS[backend.name],
            ...(replay.seed === undefined ? {} : { seed: replay.seed }),
            ...(replay.path === undefined ? {} : { path: replay.path }),
            ...(replay.runs === undefined ? { interruptAfterTimeLimit: 90_000 } : {}),
          },
        )
        if (process.env.KEYWARDEN_MGMT_STATS) {
          console.log(`[management properties] ${backend.name}, ${setName}:\n${[...outcomes].sort().map(([outcome, count]) => `  ${outcome}: ${count}`).join('\n')}`)
          outcomes.clear()
        }
      })
    }
  })
}
