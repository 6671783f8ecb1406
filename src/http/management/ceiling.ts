/**
 * The grant ceiling: the scopes, roles and groups a principal may put on a key. A request asking for
 * more is refused before the KeyManager sees it.
 */
import type { KeyManager } from '../../key-manager.js'
import type { RoleCatalog } from '../../policy/role-directory.js'
import { scopeGrants } from '../../policy/scopes.js'
import type { Principal } from './principal.js'

/** A principal's resolved ceiling. `scopes` are patterns; `roles` and `groups` exact names. */
export interface Ceiling {
  readonly scopes: readonly string[]
  readonly roles: readonly string[]
  readonly groups: readonly string[]
}

/** Which kind of grant a request asks for beyond the ceiling (the value is not repeated back). */
export interface Excess {
  readonly field: 'scopes' | 'roles' | 'groups'
}

export class CeilingResolver {
  readonly #wildcards: boolean

  constructor(
    private readonly keys: KeyManager,
    private readonly isAdmin: (principal: Principal) => boolean,
  ) {
    this.#wildcards = keys.options.scopeWildcards
  }

  /** The principal's ceiling in its tenant's catalogue of roles and groups. */
  async of(principal: Principal): Promise<Ceiling> {
    const catalog = await this.keys.roleCatalog(principal.tenantId)
    const given = principal.grantable
    const admin = this.isAdmin(principal)
    const scopes = given?.scopes ?? (admin ? ['*'] : roleScopes(catalog, principal.role))
    const covered = (granted: readonly string[]) => granted.every((scope) => this.#covers(scopes, scope, admin && given?.scopes === undefined))
    const roles = given?.roles ?? Object.keys(catalog.roles).filter((role) => covered(catalog.roles[role]!))
    const groups =
      given?.groups ?? Object.keys(catalog.groups).filter((group) => catalog.groups[group]!.every((role) => Object.hasOwn(catalog.roles, role) && covered(catalog.roles[role]!)))
    return { scopes, roles, groups }
  }

  /** Which of the asked-for grants exceeds the ceiling first, if any. */
  excess(ceiling: Ceiling, asked: { scopes?: readonly string[] | undefined; roles?: readonly string[] | undefined; groups?: readonly string[] | undefined }): Excess | null {
    if (asked.scopes?.some((scope) => !this.#covers(ceiling.scopes, scope, false))) return { field: 'scopes' }
    if (asked.roles?.some((role) => !ceiling.roles.includes(role))) return { field: 'roles' }
    if (asked.groups?.some((group) => !ceiling.groups.includes(group))) return { field: 'groups' }
    return null
  }

  /** Whether a ceiling pattern grants `scope`; an admin's default `*` covers anything, wildcards on or off. */
  #covers(ceiling: readonly string[], scope: string, everything: boolean): boolean {
    if (everything) return true
    return ceiling.some((pattern) => scopeGrants(pattern, scope, this.#wildcards))
  }
}

function roleScopes(catalog: RoleCatalog, role: string): readonly string[] {
  return Object.hasOwn(catalog.roles, role) ? catalog.roles[role]! : []
}
