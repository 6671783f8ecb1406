/**
 * What each management route does, once the core has authorized the principal and validated the
 * input: the tenant floor, the policy, the grant ceiling, then one KeyManager call with the principal
 * as the actor.
 */
import { sha256Hex } from '../../crypto/hash.js'
import type { ChangeContext } from '../../audit/audit-store.js'
import type { KeyManager } from '../../key-manager.js'
import type { ApiKey, CreateKeyInput, KeyPage, UpdateKeyInput } from '../../types.js'
import type { CeilingResolver } from './ceiling.js'
import { actorOf, type ManagementAction, type ManagementPolicy, type NewKeyTarget, type Principal } from './principal.js'
import { FORBIDDEN, NOT_FOUND, invalid, problem, type RouterResponse } from './problems.js'
import type { OperationId } from './route-table.js'
import { visiblePage } from './visible-pages.js'

/** Everything a route handler gets. */
export interface RouteCall {
  readonly principal: Principal
  /** The key ID from the path, for `/{id}…` routes. */
  readonly id: string | null
  /** The path's key, once the principal was found to may act on it (`/{id}…` routes). */
  readonly key: ApiKey | null
  readonly query: Record<string, unknown>
  readonly body: Record<string, unknown>
  /** `If-Match`: the version asked for, `undefined` for none. */
  readonly expectedVersion: number | undefined
  readonly idempotencyKey: string | undefined
  readonly requestId: string | undefined
}

/** The settings the handlers need from the router's options. */
export interface RouteSettings {
  readonly keys: KeyManager
  readonly can: ManagementPolicy
  readonly isAdmin: (principal: Principal) => boolean
  /** Whether the default policy applies (it lets non-admins see their own keys only, so lists can ask the store for just those). */
  readonly defaultPolicy: boolean
  readonly ceiling: CeilingResolver
  readonly types: readonly string[]
  readonly scopeCatalog: readonly string[] | null
  readonly expiryPresets: readonly string[]
}

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } as const

function json(status: number, value: unknown, headers: Record<string, string> = {}): RouterResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(value) }
}

/** A stored key, as the API shows it: the `ApiKey` plus its status now. */
function view(keys: KeyManager, key: ApiKey): Record<string, unknown> {
  return { ...key, status: keys.statusOf(key) }
}

function keyAnswer(keys: KeyManager, key: ApiKey, status = 200): RouterResponse {
  return json(status, view(keys, key), { ETag: `"${key.version}"` })
}

type Handler = (call: RouteCall) => Promise<RouterResponse>

export class ManagementRoutes {
  readonly #s: RouteSettings
  readonly handlers: Readonly<Record<Exclude<OperationId, 'getOpenApi'>, Handler>>

  constructor(settings: RouteSettings) {
    this.#s = settings
    this.handlers = {
      createKey: (call) => this.#create(call),
      listKeys: (call) => this.#list(call),
      getMeta: (call) => this.#meta(call),
      listExpiringKeys: (call) => this.#expiring(call),
      getKey: (call) => this.#onKey(call, async (key) => keyAnswer(this.#keys, key)),
      updateKey: (call) => this.#update(call),
      deleteKey: (call) => this.#onKey(call, async (key) => {
        await this.#keys.delete(key.id, this.#context(call))
        return { status: 204, headers: { 'Cache-Control': 'no-store' }, body: null }
      }),
      enableKey: (call) => this.#onKey(call, async (key) => keyAnswer(this.#keys, await this.#keys.enable(key.id, this.#versioned(call)))),
      disableKey: (call) => this.#onKey(call, async (key) => keyAnswer(this.#keys, await this.#keys.disable(key.id, this.#versioned(call)))),
      revokeKey: (call) => this.#onKey(call, async (key) => keyAnswer(this.#keys, await this.#keys.revoke(key.id, this.#context(call)))),
      rotateKey: (call) => this.#rotate(call),
      getKeyPermissions: (call) => this.#onKey(call, async (key) => json(200, await this.#keys.permissions(key.id))),
      getKeyAudit: (call) =>
        this.#onKey(call, async (key) => {
          const { limit, cursor } = call.query as { limit?: number; cursor?: string }
          return json(200, await this.#keys.audit({ keyId: key.id, limit, cursor }))
        }),
      getKeyCredits: (call) => this.#onKey(call, async (key) => json(200, { credits: await this.#keys.getCredits({ keyId: key.id }) })),
      changeKeyCredits: (call) =>
        this.#onKey(call, async (key) => {
          const { add, set } = call.body as { add?: number; set?: number }
          if (add !== undefined) {
            // The store saturates a top-up at the largest exact integer (so racing top-ups stay bounded);
            // one that plainly passes it is refused here, so the caller learns why instead of finding it capped.
            const current = await this.#keys.getCredits({ keyId: key.id })
            if (current !== null && current.remaining + add > Number.MAX_SAFE_INTEGER) {
              return invalid(422, [{ field: 'add', message: `would take the balance past ${Number.MAX_SAFE_INTEGER}` }])
            }
          }
          const context = this.#context(call)
          const credits = add !== undefined ? await this.#keys.addCredits({ keyId: key.id }, add, context) : await this.#keys.setCredits({ keyId: key.id }, set!, context)
          return json(200, { credits })
        }),
    }
  }

  get #keys(): KeyManager {
    return this.#s.keys
  }

  /** Whether the principal may see a key: its tenant, then the policy's `read`. */
  async #visible(principal: Principal, key: ApiKey): Promise<boolean> {
    return key.tenantId === principal.tenantId && (await this.#s.can(principal, 'read', key))
  }

  /**
   * The path's key if the principal may do `action` to it: 404 if it may not see it (or there is no
   * such key), 403 if it may see but not act. Runs before the body is validated, so someone who may
   * not act learns nothing from validation answers.
   */
  async keyFor(principal: Principal, id: string, action: ManagementAction): Promise<ApiKey | RouterResponse> {
    const key = await this.#keys.get(id)
    if (key === null || !(await this.#visible(principal, key))) return NOT_FOUND
    if (action !== 'read' && !(await this.#s.can(principal, action, key))) return FORBIDDEN
    return key
  }

  #onKey(call: RouteCall, then: (key: ApiKey) => Promise<RouterResponse>): Promise<RouterResponse> {
    return then(call.key!)
  }

  #context(call: RouteCall): ChangeContext {
    const reason = call.body['reason'] as string | undefined
    return { actor: actorOf(call.principal), ...(reason === undefined ? {} : { reason }), ...(call.requestId === undefined ? {} : { requestId: call.requestId }) }
  }

  #versioned(call: RouteCall) {
    return { ...this.#context(call), ...(call.expectedVersion === undefined ? {} : { expectedVersion: call.expectedVersion }) }
  }

  /** A 403 naming the first grant above the principal's ceiling, or `null`. */
  async #aboveCeiling(principal: Principal, asked: { scopes?: readonly string[]; roles?: readonly string[]; groups?: readonly string[] }): Promise<RouterResponse | null> {
    const { ceiling } = this.#s
    const excess = ceiling.excess(await ceiling.of(principal), asked)
    return excess === null ? null : problem(403, 'grant_not_allowed', `You may not grant these ${excess.field}.`, { field: excess.field })
  }

  async #create(call: RouteCall): Promise<RouterResponse> {
    const { principal, body } = call
    const input = body as Omit<CreateKeyInput, 'expiresAt'> & { ownerId?: string; expiresAt?: string | null }
    const ownerId = input.ownerId ?? principal.id
    const environment = input.environment ?? (this.#keys.options.environments.length === 1 ? this.#keys.options.environments[0] : undefined)
    const target: NewKeyTarget = { id: null, ownerId, tenantId: principal.tenantId, environment, type: input.type ?? null }
    if (!(await this.#s.can(principal, 'create', target))) return FORBIDDEN
    const above = await this.#aboveCeiling(principal, input)
    if (above !== null) return above
    // Initial credits are a balance change: only for whoever may change credits.
    if (input.credits !== undefined && !(await this.#s.can(principal, 'change_credits', target))) return problem(403, 'forbidden', 'You may not set credits.', { field: 'credits' })
    const issued = await this.#keys.create(
      {
        ...input,
        expiresAt: typeof input.expiresAt === 'string' ? new Date(input.expiresAt) : input.expiresAt,
        ownerId,
        tenantId: principal.tenantId,
        owner: ownerContextOf(principal),
        ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: this.#scopedIdempotencyKey(principal, call.idempotencyKey) }),
      },
      this.#context(call),
    )
    return json(201, { key: view(this.#keys, issued.key), token: issued.token }, { ETag: `"${issued.key.version}"` })
  }

  /** Idempotency keys are per principal: another user's retry can never replay this user's token. */
  #scopedIdempotencyKey(principal: Principal, key: string): string {
    return `mgmt_${sha256Hex(JSON.stringify([principal.tenantId, principal.id, key]))}`
  }

  async #list(call: RouteCall): Promise<RouterResponse> {
    const { principal } = call
    const query = call.query as { ownerId?: string; environment?: string; type?: string; status?: 'active'; order?: 'asc'; limit?: number; cursor?: string }
    const filter = this.#storeFilter(principal, query.ownerId)
    if (filter === null) return json(200, { items: [], nextCursor: null })
    const { cursor, limit = 50, ...rest } = query
    const read = (from: string | null, size: number) => this.#keys.list({ ...rest, ...filter, cursor: from, limit: size })
    return this.#pageAnswer(await visiblePage(read, (key) => this.#visible(principal, key), limit, cursor ?? null))
  }

  async #expiring(call: RouteCall): Promise<RouterResponse> {
    const { principal } = call
    const query = call.query as { within: string; ownerId?: string; environment?: string; type?: string; limit?: number; cursor?: string }
    const within = /^\d+$/.test(query.within) ? Number(query.within) : (query.within as `${number}d`)
    const filter = this.#storeFilter(principal, query.ownerId)
    if (filter === null) return json(200, { items: [], nextCursor: null })
    const { cursor, limit = 100, ...rest } = query
    const read = (from: string | null, size: number) => this.#keys.expiring({ ...rest, within, ...filter, cursor: from, limit: size })
    return this.#pageAnswer(await visiblePage(read, (key) => this.#visible(principal, key), limit, cursor ?? null))
  }

  /** The store-side filter: the principal's tenant (keys without one are filtered after reading). */
  #tenantFilter(principal: Principal): { tenantId?: string } {
    return principal.tenantId === null ? {} : { tenantId: principal.tenantId }
  }

  /**
   * What a list asks the store for: the tenant, and under the default policy a member's own keys only,
   * so its pages are full. `null` when the filter asks for someone else's keys a member cannot see.
   */
  #storeFilter(principal: Principal, ownerId: string | undefined): { tenantId?: string; ownerId?: string } | null {
    if (!this.#s.defaultPolicy || this.#s.isAdmin(principal)) return this.#tenantFilter(principal)
    if (ownerId !== undefined && ownerId !== principal.id) return null
    return { ...this.#tenantFilter(principal), ownerId: principal.id }
  }

  #pageAnswer(page: KeyPage): RouterResponse {
    return json(200, { items: page.items.map((key) => view(this.#keys, key)), nextCursor: page.nextCursor })
  }

  async #update(call: RouteCall): Promise<RouterResponse> {
    return this.#onKey(call, async (key) => {
      const input = call.body as Omit<UpdateKeyInput, 'expiresAt'> & { expiresAt?: string | null }
      const above = await this.#aboveCeiling(call.principal, input)
      if (above !== null) return above
      const patch: UpdateKeyInput = { ...input, expiresAt: typeof input.expiresAt === 'string' ? new Date(input.expiresAt) : input.expiresAt }
      if (input.expiresAt === undefined) delete (patch as { expiresAt?: unknown }).expiresAt
      return keyAnswer(this.#keys, await this.#keys.update(key.id, patch, this.#versioned(call)))
    })
  }

  async #rotate(call: RouteCall): Promise<RouterResponse> {
    return this.#onKey(call, async (key) => {
      const { gracePeriod } = call.body as { gracePeriod?: number | `${number}d` }
      const rotated = await this.#keys.rotate(key.id, {
        ...this.#versioned(call),
        ...(gracePeriod === undefined ? {} : { gracePeriod }),
        ...(call.idempotencyKey === undefined ? {} : { idempotencyKey: this.#scopedIdempotencyKey(call.principal, call.idempotencyKey) }),
      })
      return json(200, { key: view(this.#keys, rotated.key), token: rotated.token, previousSecretValidUntil: rotated.previousSecretValidUntil }, { ETag: `"${rotated.key.version}"` })
    })
  }

  async #meta(call: RouteCall): Promise<RouterResponse> {
    const { principal } = call
    const { keys, types, scopeCatalog, expiryPresets } = this.#s
    const ceiling = await this.#s.ceiling.of(principal)
    const grantableScopes = scopeCatalog === null ? ceiling.scopes : scopeCatalog.filter((scope) => this.#s.ceiling.excess(ceiling, { scopes: [scope] }) === null)
    const { expiry, environments } = keys.options
    return json(200, {
      principal: { id: principal.id, tenantId: principal.tenantId, role: principal.role, admin: this.#s.isAdmin(principal) },
      environments,
      types,
      policies: keys.options.limitPolicies,
      grantable: { scopes: grantableScopes, roles: ceiling.roles, groups: ceiling.groups },
      expiry: { presets: expiryPresets, defaultMs: expiry.defaultMs, maxMs: expiry.maxMs, neverAllowed: expiry.maxMs === null },
      quota: await this.#quota(principal),
    })
  }

  /** How many keys the principal holds against its quota (non-revoked, in its tenant), and how many it may. */
  async #quota(principal: Principal): Promise<{ limit: number | null; used: number; remaining: number | null }> {
    const { keys } = this.#s
    const limit = keys.options.maxKeysPerOwner(
      { id: principal.id, ...ownerContextOf(principal) },
      { ownerId: principal.id, tenantId: principal.tenantId, environment: keys.options.environments[0]! },
    )
    const limitOf = Number.isFinite(limit) ? limit : null
    let used = 0
    let cursor: string | null = null
    // Quotas count non-revoked keys: a bounded walk over the owner's keys, which a quota keeps few.
    for (let page = 0; page < 20; page += 1) {
      const result: Awaited<ReturnType<KeyManager['list']>> = await keys.list({ ownerId: principal.id, ...this.#tenantFilter(principal), limit: 1000, cursor })
      used += result.items.filter((key) => key.revokedAt === null && key.tenantId === principal.tenantId).length
      cursor = result.nextCursor
      if (cursor === null) break
    }
    return { limit: limitOf, used, remaining: limitOf === null ? null : Math.max(0, limitOf - used) }
  }
}

/** The quota's owner context: the principal (its ID as `principalId`, the key's owner stays `id`). */
function ownerContextOf(principal: Principal): Record<string, unknown> {
  return { role: principal.role, tenantId: principal.tenantId, principalId: principal.id }
}

/** For the core: a request whose `If-Match` is not one of this router's ETags. */
export const BAD_IF_MATCH = invalid(400, [{ field: 'If-Match', message: 'must be an ETag this API sent, such as "3"' }])
