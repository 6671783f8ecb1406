/**
 * A key's effective permissions, explained: which scopes it has and where each comes from. Also
 * checks role and group names against a tenant's own, and announces changes of effective scopes.
 */
import type { ChangeDetails, KeyEventEmitter } from '../events.js'
import { KeyNotFoundError, ValidationError, type ValidationIssue } from '../errors.js'
import type { RoleDirectory } from '../policy/role-directory.js'
import type { PermissionGrant, ScopeResolver } from '../policy/scopes.js'
import type { KeyStore, StoredKey } from '../store.js'
import { callStore } from '../store-failure.js'
import type { ApiKey } from '../types.js'

/**
 * What {@link KeyManager.permissions} answers: the key's effective scopes (its own, its roles' and
 * its groups' roles', each once, roles resolved for the key's tenant) and where each comes from.
 *
 * @example
 * ```ts
 * import type { KeyPermissions } from 'keywarden'
 *
 * const permissions: KeyPermissions = await keys.permissions(keyId)
 * for (const grant of permissions.grants) console.info(grant.scope, grant.via)
 * ```
 */
export interface KeyPermissions {
  /** Every scope the key holds, each once: what verify checks required scopes against. */
  readonly scopes: readonly string[]
  /** One entry per way a scope is granted. */
  readonly grants: readonly PermissionGrant[]
}

type Grants = Pick<StoredKey, 'scopes' | 'roles' | 'groups'>

export class Permissions {
  constructor(private readonly roles: RoleDirectory) {}

  async of(record: StoredKey): Promise<KeyPermissions> {
    const resolver = await this.roles.resolverFor(record.tenantId)
    return Object.freeze({ scopes: Object.freeze([...resolver.effectiveScopes(record)]), grants: Object.freeze(resolver.grantsOf(record)) })
  }

  /**
   * Checks, for roles and groups that come from a function of the tenant, that every name is one of
   * the tenant's. (Fixed maps are checked with the rest of the input.)
   */
  async checkNames(tenantId: string | null, grants: Pick<Grants, 'roles' | 'groups'>): Promise<void> {
    if (!this.roles.dynamic || (grants.roles.length === 0 && grants.groups.length === 0)) return
    const resolver = await this.roles.resolverFor(tenantId)
    const issues: ValidationIssue[] = []
    grants.roles.forEach((role, index) => {
      if (!resolver.hasRole(role)) issues.push({ path: ['roles', index], message: "names a role that is not one of the tenant's" })
    })
    grants.groups.forEach((group, index) => {
      if (!resolver.hasGroup(group)) issues.push({ path: ['groups', index], message: "names a group that is not one of the tenant's" })
    })
    if (issues.length > 0) throw new ValidationError(issues)
  }

  /** {@link checkNames} for an update's patch: the key's tenant is read first, as the patch lacks it. */
  async checkPatch(store: KeyStore, id: string, patch: Partial<Pick<Grants, 'roles' | 'groups'>>): Promise<void> {
    if (!this.roles.dynamic || (patch.roles === undefined && patch.groups === undefined)) return
    const current = await callStore('get', () => store.get(id))
    if (current === null) throw new KeyNotFoundError(id)
    await this.checkNames(current.tenantId, { roles: patch.roles ?? [], groups: patch.groups ?? [] })
  }

  /**
   * Emits `permissions_changed` when a change touched the key's scopes, roles or groups. Resolving a
   * tenant's roles may need its lookup function: that runs after the call returned, and a failure
   * goes to the listener-error handler rather than failing a change that already happened.
   */
  announce(before: StoredKey, after: StoredKey, key: ApiKey, details: ChangeDetails, events: KeyEventEmitter): void {
    if (!events.has('permissions_changed')) return
    if (!('scopes' in details.changes || 'roles' in details.changes || 'groups' in details.changes)) return
    const at = key.updatedAt
    const emit = (resolver: ScopeResolver) => {
      const previous = resolver.effectiveScopes(before)
      const next = resolver.effectiveScopes(after)
      events.emit({ type: 'permissions_changed', at, key, ...details, before: Object.freeze([...previous]), after: Object.freeze([...next]) })
    }
    const resolver = this.roles.resolverFor(after.tenantId)
    if (resolver instanceof Promise) resolver.then(emit, (error: unknown) => events.reportFailure(error, 'permissions_changed'))
    else emit(resolver)
  }
}
