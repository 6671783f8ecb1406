/**
 * Where roles and groups come from: fixed maps given at construction, or functions of the tenant so
 * that tenant administrators define their own. Maps returned by a function are validated and cached
 * per tenant for `rolesCacheTtl`; `invalidate` drops a tenant's entry at once.
 */
import * as z from 'zod/mini'
import { callStore } from '../store-failure.js'
import { roleNameSchema, scopeListSchema } from '../validation.js'
import { ScopeResolver } from './scopes.js'

/**
 * Role name → the scopes it grants.
 *
 * @example
 * ```ts
 * import type { RoleMap } from 'keywarden'
 *
 * const roles: RoleMap = { reader: ['data:read'], writer: ['data:read', 'data:write'] }
 * ```
 */
export type RoleMap = Readonly<Record<string, readonly string[]>>

/**
 * Group name → the roles it grants.
 *
 * @example
 * ```ts
 * import type { GroupMap } from 'keywarden'
 *
 * const groups: GroupMap = { support: ['reader'], ingestion: ['writer'] }
 * ```
 */
export type GroupMap = Readonly<Record<string, readonly string[]>>

/**
 * The roles and groups that apply to one tenant's keys, as `keys.roleCatalog(tenantId)` returns them.
 *
 * @example
 * ```ts
 * import type { RoleCatalog } from 'keywarden'
 *
 * const catalog: RoleCatalog = await keys.roleCatalog('acme')
 * const readers = Object.entries(catalog.roles).filter(([, scopes]) => scopes.includes('data:read')).map(([name]) => name)
 * ```
 */
export interface RoleCatalog {
  /** Role name → the scopes it grants. */
  readonly roles: RoleMap
  /** Group name → the roles it grants. */
  readonly groups: GroupMap
}

/**
 * A tenant's roles or groups, looked up at run time (from your database, say). Called with the key's
 * `tenantId` (`null` for keys without one); the answer is cached for `rolesCacheTtl`.
 *
 * @example
 * ```ts
 * import type { RoleLookup, RoleMap } from 'keywarden'
 *
 * declare const db: { rolesOf(tenantId: string | null): Promise<RoleMap> }
 * const roles: RoleLookup<RoleMap> = (tenantId) => db.rolesOf(tenantId)
 * ```
 */
export type RoleLookup<M> = (tenantId: string | null) => M | Promise<M>

const MAX_TENANTS_CACHED = 10_000

interface Cached {
  readonly resolver: ScopeResolver
  readonly expiresAt: number
}

export class RoleDirectory {
  readonly dynamic: boolean
  readonly #static: ScopeResolver | null
  readonly #cache = new Map<string, Cached>()
  readonly #loading = new Map<string, Promise<ScopeResolver>>()
  readonly #generation = new Map<string, number>()
  readonly #rolesSchema: z.ZodMiniType<Record<string, string[]>>
  readonly #groupsSchema = z.record(roleNameSchema, z.array(roleNameSchema))

  constructor(
    private readonly roles: RoleMap | RoleLookup<RoleMap>,
    private readonly groups: GroupMap | RoleLookup<GroupMap>,
    private readonly wildcards: boolean,
    private readonly ttlMs: number,
    private readonly clock: () => number,
  ) {
    this.dynamic = typeof roles === 'function' || typeof groups === 'function'
    this.#static = this.dynamic ? null : new ScopeResolver(roles as RoleMap, groups as GroupMap, wildcards)
    this.#rolesSchema = z.record(roleNameSchema, scopeListSchema(wildcards))
  }

  /** The resolver for a tenant's roles and groups: synchronous for fixed maps and cached tenants. */
  resolverFor(tenantId: string | null): ScopeResolver | Promise<ScopeResolver> {
    if (this.#static !== null) return this.#static
    const key = JSON.stringify(tenantId)
    const cached = this.#cache.get(key)
    if (cached !== undefined && this.clock() < cached.expiresAt) return cached.resolver
    const loading = this.#loading.get(key)
    if (loading !== undefined) return loading
    const generation = this.#generation.get(key) ?? 0
    const load = this.#load(tenantId).then(
      (resolver) => {
        this.#loading.delete(key)
        // An invalidation while loading means the answer may predate the change: do not keep it.
        if ((this.#generation.get(key) ?? 0) === generation) this.#remember(key, resolver)
        return resolver
      },
      (error: unknown) => {
        this.#loading.delete(key)
        throw error
      },
    )
    this.#loading.set(key, load)
    return load
  }

  /** Forgets a tenant's cached roles and groups (all tenants' when `tenantId` is omitted). */
  invalidate(tenantId?: string | null): void {
    const keys = tenantId === undefined ? [...new Set([...this.#cache.keys(), ...this.#loading.keys()])] : [JSON.stringify(tenantId)]
    for (const key of keys) {
      this.#cache.delete(key)
      this.#loading.delete(key)
      this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1)
    }
  }

  #remember(key: string, resolver: ScopeResolver): void {
    this.#cache.delete(key)
    if (this.#cache.size >= MAX_TENANTS_CACHED) this.#cache.delete(this.#cache.keys().next().value!)
    this.#cache.set(key, { resolver, expiresAt: this.clock() + this.ttlMs })
  }

  async #load(tenantId: string | null): Promise<ScopeResolver> {
    // A failing lookup, or one answering garbage, is treated like a failing store: verify fails
    // closed with a StoreError (its cause says which).
    return callStore('roles', async () => {
      const [roles, groups] = await Promise.all([
        typeof this.roles === 'function' ? this.roles(tenantId) : this.roles,
        typeof this.groups === 'function' ? this.groups(tenantId) : this.groups,
      ])
      const parsedRoles = this.#rolesSchema.safeParse(roles)
      const parsedGroups = this.#groupsSchema.safeParse(groups)
      if (!parsedRoles.success || !parsedGroups.success) {
        const path = parsedRoles.success ? 'groups' : 'roles'
        throw new TypeError(`The ${path} function returned something that is not a valid ${path} map`)
      }
      return new ScopeResolver(parsedRoles.data, parsedGroups.data, this.wildcards)
    })
  }
}
