/**
 * Scopes, roles and groups: their syntax, and the effective scopes of a key resolved at verify time.
 */

/**
 * Scope strings: printable ASCII without space, `"` or `\` (the RFC 6750 `scope-token` alphabet), so a
 * scope can be named in a `WWW-Authenticate` header as it is.
 */
export const SCOPE_PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/

/** Names of roles and groups. */
export const ROLE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/

/**
 * Why a scope string is not acceptable, or `undefined` when it is. With wildcards on, `*` may appear
 * only as the whole scope or as a final `:*` segment (`data:*`).
 */
export function scopeProblem(scope: string, wildcards: boolean): string | undefined {
  if (!SCOPE_PATTERN.test(scope)) {
    return 'must be 1-128 printable ASCII characters without spaces, quotes or backslashes'
  }
  if (wildcards && scope.includes('*') && scope !== '*' && !(scope.endsWith(':*') && scope.indexOf('*') === scope.length - 1)) {
    return "may use '*' only as the whole scope or as a final ':*' segment"
  }
  return undefined
}

/**
 * Whether the granted scope `pattern` covers the `required` scope. Matching is exact and
 * case-sensitive. With wildcards on, `*` covers every scope and `data:*` covers every scope that starts
 * with `data:` and has at least one more character (`data:read`, `data:read:own`), but not `data` itself.
 * This is the rule {@link KeyManager.verify} applies; use it to check scopes in your own code the same way.
 *
 * @example
 * ```ts
 * import { scopeGrants } from 'keywarden'
 *
 * scopeGrants('data:*', 'data:read', true) // true
 * scopeGrants('data:*', 'data', true) // false
 * scopeGrants('*', 'admin', false) // false: without wildcards `*` is an ordinary character
 * ```
 */
export function scopeGrants(pattern: string, required: string, wildcards: boolean): boolean {
  if (pattern === required) return true
  if (!wildcards) return false
  if (pattern === '*') return true
  if (pattern.length >= 2 && pattern.charCodeAt(pattern.length - 1) === 42 /* * */ && pattern.charCodeAt(pattern.length - 2) === 58 /* : */) {
    return required.length > pattern.length - 1 && required.startsWith(pattern.slice(0, -1))
  }
  return false
}

/** The part of a key that grants scopes. */
export interface ScopeGrants {
  readonly scopes: readonly string[]
  readonly roles: readonly string[]
  readonly groups: readonly string[]
}

/**
 * Turns a key's scopes, roles and groups into its effective scopes, using the configured role and group
 * definitions at the moment of the call, so that changing a role changes every key that has it.
 */
/**
 * Where one of a key's effective scopes comes from: granted to the key itself, by one of its roles,
 * or by a role of one of its groups. A scope reached several ways has one grant per way.
 *
 * @example
 * ```ts
 * import type { PermissionGrant } from 'keywarden'
 *
 * const { grants } = await keys.permissions(keyId)
 * const explain = (grant: PermissionGrant) =>
 *   grant.via === 'key' ? 'granted directly' : grant.via === 'role' ? `role ${grant.role}` : `group ${grant.group} (role ${grant.role})`
 * console.info(grants.map((grant) => `${grant.scope}: ${explain(grant)}`))
 * ```
 */
export type PermissionGrant =
  | {
      /** The scope granted. */
      readonly scope: string
      /** Granted to the key itself. */
      readonly via: 'key'
    }
  | {
      /** The scope granted. */
      readonly scope: string
      /** Granted by one of the key's roles. */
      readonly via: 'role'
      /** The role. */
      readonly role: string
    }
  | {
      /** The scope granted. */
      readonly scope: string
      /** Granted by a role of one of the key's groups. */
      readonly via: 'group'
      /** The group. */
      readonly group: string
      /** The group's role that grants the scope. */
      readonly role: string
    }

export class ScopeResolver {
  private readonly roleScopes: ReadonlyMap<string, readonly string[]>
  private readonly groupScopes: ReadonlyMap<string, readonly string[]>
  private readonly groupRoles: ReadonlyMap<string, readonly string[]>

  constructor(
    /** The role definitions this resolver applies. */
    readonly roles: Readonly<Record<string, readonly string[]>>,
    /** The group definitions this resolver applies. */
    readonly groups: Readonly<Record<string, readonly string[]>>,
    private readonly wildcards: boolean,
  ) {
    this.roleScopes = new Map(Object.entries(roles))
    this.groupRoles = new Map(Object.entries(groups))
    this.groupScopes = new Map(
      Object.entries(groups).map(([group, groupRoles]) => [group, [...new Set(groupRoles.flatMap((role) => (Object.hasOwn(roles, role) ? roles[role]! : [])))]]),
    )
  }

  hasRole(name: string): boolean {
    return this.roleScopes.has(name)
  }

  hasGroup(name: string): boolean {
    return this.groupScopes.has(name)
  }

  /** Own scopes, then role scopes, then group scopes, without duplicates. Unknown roles add nothing. */
  effectiveScopes(grants: ScopeGrants): readonly string[] {
    if (grants.roles.length === 0 && grants.groups.length === 0) return grants.scopes
    const all = new Set(grants.scopes)
    for (const role of grants.roles) for (const scope of this.roleScopes.get(role) ?? []) all.add(scope)
    for (const group of grants.groups) for (const scope of this.groupScopes.get(group) ?? []) all.add(scope)
    return [...all]
  }

  /** Whether `effective` covers every scope in `required`. */
  /** Every way each effective scope is granted: the key's own scopes, then roles, then groups. */
  grantsOf(grants: ScopeGrants): PermissionGrant[] {
    const out: PermissionGrant[] = grants.scopes.map((scope) => ({ scope, via: 'key' as const }))
    for (const role of grants.roles) for (const scope of this.roleScopes.get(role) ?? []) out.push({ scope, via: 'role', role })
    for (const group of grants.groups) {
      for (const role of this.groupRoles.get(group) ?? []) for (const scope of this.roleScopes.get(role) ?? []) out.push({ scope, via: 'group', group, role })
    }
    return out
  }

  satisfies(effective: readonly string[], required: readonly string[]): boolean {
    for (const scope of required) {
      if (!effective.some((pattern) => scopeGrants(pattern, scope, this.wildcards))) return false
    }
    return true
  }
}
