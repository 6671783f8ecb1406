/**
 * Who is asking the management router, and what they may do: the principal the host's `authorize`
 * returns, the default policy (admins manage their tenant, everyone else their own keys) and the
 * grant ceiling (a principal never hands out more than it may).
 */
import * as z from 'zod/mini'
import type { Actor } from '../../audit/audit-store.js'
import type { ApiKey } from '../../types.js'
import { identifierSchema, roleNameSchema } from '../../validation.js'

/**
 * The signed-in party a management request acts for, as the host's `authorize` finds it in its own
 * session: never from the request body. Keys it creates belong to it (`ownerId = id`) in its tenant.
 *
 * @example
 * ```ts
 * import type { Principal } from 'keywarden'
 *
 * const ana: Principal = { id: 'u_ana', tenantId: 'acme', role: 'admin' }
 * // A member who may hand out read scopes only, whatever its role holds:
 * const ben: Principal = { id: 'u_ben', tenantId: 'acme', role: 'member', grantable: { scopes: ['data:read'] } }
 * ```
 */
export interface Principal {
  /** The user's (or service's) ID in the host application; the owner of the keys it creates. */
  readonly id: string
  /** Its tenant; it never reads or changes a key of another tenant. `null` for keys without a tenant. */
  readonly tenantId: string | null
  /** Its role in the host application; `admin` (see `adminRoles`) manages every key of the tenant. */
  readonly role: string
  /**
   * The ceiling of what it may put on a key. Default: the scopes its own role holds (a role of the
   * KeyManager's `roles` with the same name), and the roles and groups those scopes cover; everything
   * for admins.
   */
  readonly grantable?: Grantable
}

/**
 * What a principal may hand out. Asking for more (a scope no pattern here grants, a role or group
 * not listed) is a 403.
 *
 * @example
 * ```ts
 * import type { Grantable } from 'keywarden'
 *
 * const support: Grantable = { scopes: ['tickets:*'], roles: ['readonly'], groups: [] }
 * ```
 */
export interface Grantable {
  /** Scope patterns (`data:*`, `*`) covering every scope it may grant. Default: its role's scopes. */
  readonly scopes?: readonly string[]
  /** Roles it may grant. Default: the roles whose scopes `scopes` covers. */
  readonly roles?: readonly string[]
  /** Groups it may grant. Default: the groups whose scopes `scopes` covers. */
  readonly groups?: readonly string[]
}

/**
 * What a management request does to a key, as `can` is asked about it. Listing and the expiring
 * banner ask `read` for each key they would show; permissions and history are `read` too.
 *
 * @example
 * ```ts
 * import type { ManagementAction } from 'keywarden'
 *
 * // Support staff may look and disable, nothing else:
 * const supportMay = (action: ManagementAction) => action === 'read' || action === 'disable'
 * ```
 */
export type ManagementAction =
  | 'create'
  | 'read'
  | 'update'
  | 'enable'
  | 'disable'
  | 'revoke'
  | 'delete'
  | 'rotate'
  | 'read_credits'
  | 'change_credits'

/**
 * The key a `create` would make, as `can` sees it before it exists.
 *
 * @example
 * ```ts
 * import type { NewKeyTarget } from 'keywarden'
 *
 * const testKeysOnly = (key: NewKeyTarget) => key.environment === 'test'
 * ```
 */
export interface NewKeyTarget {
  /** Always `null`: the key has no ID yet. */
  readonly id: null
  /** The owner it would have: the principal, or the owner an admin named. */
  readonly ownerId: string
  /** The principal's tenant. */
  readonly tenantId: string | null
  /** The environment asked for (`undefined`: the only one configured, or the KeyManager refuses). */
  readonly environment: string | undefined
  /** The type label asked for. */
  readonly type: string | null
}

/**
 * A policy deciding whether a principal may do `action` to `key`. Returning `false` for `read` hides
 * the key (404, exactly as for a key that does not exist); `false` for anything else is a 403. The
 * tenant check always applies first: `can` is never asked about another tenant's key.
 *
 * @example
 * ```ts
 * import type { ManagementPolicy } from 'keywarden'
 *
 * // Owners manage their own keys; anyone in the tenant may read and disable any key.
 * const can: ManagementPolicy = (principal, action, key) =>
 *   key.ownerId === principal.id || action === 'read' || action === 'disable'
 * ```
 */
export type ManagementPolicy = (principal: Principal, action: ManagementAction, key: ApiKey | NewKeyTarget) => boolean | Promise<boolean>

const grantableSchema = z.strictObject({
  scopes: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(128)))),
  roles: z.optional(z.array(roleNameSchema)),
  groups: z.optional(z.array(roleNameSchema)),
})

/** What `authorize` must return: a principal or `null`. */
export const principalSchema = z.nullable(
  z.object({
    id: identifierSchema,
    tenantId: z.nullish(identifierSchema),
    role: z.string().check(z.minLength(1), z.maxLength(256)),
    grantable: z.optional(grantableSchema),
  }),
)

/** The principal as the router keeps it: `tenantId` always present. */
export function normalizePrincipal(parsed: z.infer<typeof principalSchema>): Principal | null {
  if (parsed === null) return null
  const { id, role, grantable } = parsed
  return Object.freeze({ id, tenantId: parsed.tenantId ?? null, role, ...(grantable === undefined ? {} : { grantable }) })
}

/** The actor recorded on every change a principal makes through the router. */
export function actorOf(principal: Principal): Actor {
  return principal.tenantId === null ? { type: 'user', id: principal.id } : { type: 'user', id: principal.id, tenantId: principal.tenantId }
}

/**
 * The default policy. Admins: everything in their tenant. Others: their own keys, except changing
 * credits, and re-enabling a key someone else (an admin, the secret scanner) disabled.
 */
export function defaultPolicy(isAdmin: (principal: Principal) => boolean): ManagementPolicy {
  return (principal, action, key) => {
    if (isAdmin(principal)) return true
    if (key.ownerId !== principal.id) return false
    if (action === 'change_credits') return false
    if (action === 'enable' && key.id !== null) {
      const by = (key as ApiKey).disabledBy
      return by === null || (by.type === 'user' && by.id === principal.id)
    }
    return true
  }
}
