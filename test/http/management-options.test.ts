// The management router's options and policy seams, through the Fetch handler on Node's Request: the
// grant ceiling (default, given, per-tenant roles), `can`, `adminRoles`, the quota's owner context,
// expiry presets, the body limit, and what happens to bad options and a bad principal.
import { describe, expect, it } from 'vitest'
import { ConfigError, KeyManager, createManagementHandler, type KeyManagerOptions, type ManagementRouterOptions, type Principal, type RoleMap } from '../../src/index.js'
import { MemoryStore } from '../../adapters/memory/index.js'

const PEPPER = 'management-options-test-pepper-0123456789'

function managerWith(options: Partial<KeyManagerOptions> = {}): KeyManager {
  return new KeyManager({
    store: new MemoryStore(),
    prefix: 'acme',
    environments: ['live'],
    pepper: PEPPER,
    roles: { admin: ['*'], member: ['data:read', 'data:write'], readonly: ['data:read'], billing: ['billing:read'] },
    groups: { readers: ['readonly'], finance: ['billing'] },
    ...options,
  })
}

/** A handler whose principal is whatever the test put in `as`. */
function handlerFor(keys: KeyManager, options: Partial<ManagementRouterOptions<Request>> = {}) {
  let principal: Principal | null = null
  const handler = createManagementHandler(keys, { authorize: () => principal, ...options })
  return {
    as(next: Principal | null) {
      principal = next
      return this
    },
    async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const init: RequestInit = { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } }
      if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body)
      const response = await handler(new Request(`http://app.test${path}`, init))
      const text = await response.text()
      return { status: response.status, headers: response.headers, text, json: text === '' ? null : (JSON.parse(text) as Record<string, any>) }
    },
  }
}

const ana: Principal = { id: 'ana', tenantId: 'acme', role: 'admin' }
const ben: Principal = { id: 'ben', tenantId: 'acme', role: 'member' }

describe('the grant ceiling', () => {
  it("defaults to the scopes of the principal's own role and the roles and groups they cover", async () => {
    const api = handlerFor(managerWith()).as(ben)
    const meta = await api.call('GET', '/meta')
    expect(meta.status).toBe(200)
    expect(meta.json!.grantable).toEqual({ scopes: ['data:read', 'data:write'], roles: ['member', 'readonly'], groups: ['readers'] })
    expect((await api.call('POST', '/', { name: 'ok', scopes: ['data:read'], roles: ['readonly'], groups: ['readers'] })).status).toBe(201)
    for (const [field, grant] of [['scopes', { scopes: ['billing:read'] }], ['scopes', { scopes: ['data:*'] }], ['roles', { roles: ['billing'] }], ['groups', { groups: ['finance'] }]] as const) {
      const refused = await api.call('POST', '/', { name: 'too much', ...grant })
      expect(refused.status).toBe(403)
      expect(refused.json).toMatchObject({ code: 'grant_not_allowed', field })
    }
  })

  it('gives admins everything, wildcards included', async () => {
    const api = handlerFor(managerWith()).as(ana)
    expect((await api.call('GET', '/meta')).json!.grantable).toEqual({ scopes: ['*'], roles: ['admin', 'member', 'readonly', 'billing'], groups: ['readers', 'finance'] })
    expect((await api.call('POST', '/', { name: 'all', scopes: ['*'], roles: ['admin'], groups: ['finance'] })).status).toBe(201)
  })

  it('takes a ceiling given on the principal, and checks updates against it too', async () => {
    const keys = managerWith()
    const intern: Principal = { id: 'ida', tenantId: 'acme', role: 'member', grantable: { scopes: ['data:read'], roles: [] } }
    const api = handlerFor(keys).as(intern)
    expect((await api.call('GET', '/meta')).json!.grantable).toEqual({ scopes: ['data:read'], roles: [], groups: ['readers'] })
    expect((await api.call('POST', '/', { name: 'write', scopes: ['data:write'] })).json).toMatchObject({ code: 'grant_not_allowed', field: 'scopes' })
    expect((await api.call('POST', '/', { name: 'role', roles: ['readonly'] })).json).toMatchObject({ code: 'grant_not_allowed', field: 'roles' })
    const created = await api.call('POST', '/', { name: 'read', scopes: ['data:read'] })
    const patched = await api.call('PATCH', `/${created.json!.key.id}`, { scopes: ['data:read', 'data:write'] })
    expect(patched).toMatchObject({ status: 403, json: { code: 'grant_not_allowed', field: 'scopes' } })
    expect((await keys.get(created.json!.key.id))!.scopes).toEqual(['data:read'])
  })

  it("uses the tenant's own roles when roles come from a function", async () => {
    const byTenant: Record<string, RoleMap> = { acme: { member: ['data:read'] }, globex: { member: ['reports:read'] } }
    const keys = managerWith({ roles: (tenantId) => byTenant[tenantId ?? ''] ?? {}, groups: {} })
    const api = handlerFor(keys)
    expect((await api.as(ben).call('GET', '/meta')).json!.grantable.scopes).toEqual(['data:read'])
    expect((await api.as({ id: 'gus', tenantId: 'globex', role: 'member' }).call('GET', '/meta')).json!.grantable.scopes).toEqual(['reports:read'])
    expect((await api.as(ben).call('POST', '/', { name: 'x', scopes: ['reports:read'] })).status).toBe(403)
  })

  it('filters the scope catalogue given to the router by the ceiling', async () => {
    const api = handlerFor(managerWith(), { scopes: ['data:read', 'data:write', 'billing:read'] }).as(ben)
    expect((await api.call('GET', '/meta')).json!.grantable.scopes).toEqual(['data:read', 'data:write'])
  })
})

describe('the policy seams', () => {
  it('lets `can` replace the default policy, never across tenants', async () => {
    const keys = managerWith()
    const asked: string[] = []
    const api = handlerFor(keys, {
      can: (principal, action, key) => {
        asked.push(`${principal.id}:${action}`)
        return principal.role === 'support' ? action === 'read' || action === 'disable' : key.ownerId === principal.id
      },
    })
    const { key } = await keys.create({ name: 'ben key', ownerId: 'ben', tenantId: 'acme', environment: 'live' })
    const foreign = await keys.create({ name: 'other tenant', ownerId: 'zed', tenantId: 'globex', environment: 'live' })
    const sam: Principal = { id: 'sam', tenantId: 'acme', role: 'support' }
    api.as(sam)
    expect((await api.call('GET', `/${key.id}`)).status).toBe(200)
    expect((await api.call('POST', `/${key.id}/disable`, { reason: 'abuse' })).status).toBe(200)
    expect((await api.call('POST', `/${key.id}/revoke`, {})).json).toMatchObject({ code: 'forbidden' })
    expect((await api.call('GET', '/')).json!.items.map((item: { id: string }) => item.id)).toEqual([key.id])
    const before = asked.length
    expect((await api.call('GET', `/${foreign.key.id}`)).status).toBe(404)
    expect(asked.length).toBe(before) // never asked about another tenant's key
  })

  it('pages through only the keys `can` shows, and no cursor ever names a hidden one', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z')
    const keys = managerWith({ clock: () => (now += 1000) })
    const api = handlerFor(keys, { can: (_principal, _action, key) => key.type !== 'hidden' })
    const shown: string[] = []
    const hidden: string[] = []
    for (let index = 0; index < 9; index += 1) {
      const type = index % 3 === 1 ? 'shown' : 'hidden'
      const { key } = await keys.create({ name: `k${index}`, tenantId: 'acme', environment: 'live', type })
      ;(type === 'shown' ? shown : hidden).push(key.id)
    }
    // A tenantless principal sees only keys without a tenant: none of acme's, nor their IDs.
    const stranger = await api.as({ id: 'x', tenantId: null, role: 'admin' }).call('GET', '/?limit=1')
    expect(stranger.json).toEqual({ items: [], nextCursor: null })
    api.as(ana)
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await api.call('GET', `/?limit=1${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
      expect(page.status).toBe(200)
      for (const id of hidden) expect(page.text).not.toContain(id)
      seen.push(...page.json!.items.map((item: { id: string }) => item.id))
      cursor = page.json!.nextCursor
    } while (cursor !== null)
    expect(seen).toEqual(shown)
  })

  it('treats the roles in `adminRoles` as admins', async () => {
    const keys = managerWith()
    const { key } = await keys.create({ name: 'ben key', ownerId: 'ben', tenantId: 'acme', environment: 'live' })
    const api = handlerFor(keys, { adminRoles: ['owner'] })
    expect((await api.as({ id: 'olga', tenantId: 'acme', role: 'owner' }).call('GET', `/${key.id}`)).status).toBe(200)
    expect((await api.as(ana).call('GET', `/${key.id}`)).status).toBe(404) // 'admin' is no admin here
  })

  it('gives the quota the principal as owner context, and GET /meta counts what it holds', async () => {
    const contexts: Record<string, unknown>[] = []
    const keys = managerWith({
      maxKeysPerOwner: (owner) => {
        contexts.push({ ...owner })
        return owner['role'] === 'admin' ? Infinity : 2
      },
    })
    const api = handlerFor(keys).as(ben)
    expect((await api.call('GET', '/meta')).json!.quota).toEqual({ limit: 2, used: 0, remaining: 2 })
    await api.call('POST', '/', { name: 'one' })
    const second = await api.call('POST', '/', { name: 'two' })
    await api.call('POST', `/${second.json!.key.id}/revoke`, {})
    await api.call('POST', '/', { name: 'three' })
    expect((await api.call('GET', '/meta')).json!.quota).toEqual({ limit: 2, used: 2, remaining: 0 })
    expect(await api.call('POST', '/', { name: 'four' })).toMatchObject({ status: 409, json: { code: 'quota_exceeded', limit: 2 } })
    expect(contexts).toContainEqual({ id: 'ben', role: 'member', tenantId: 'acme', principalId: 'ben' })
    // An admin creating for a member: the member is the owner counted, the admin the context.
    const forBen = await api.as(ana).call('POST', '/', { name: 'by ana', ownerId: 'ben' })
    expect(forBen.status).toBe(201)
    expect(contexts.at(-1)).toEqual({ id: 'ben', role: 'admin', tenantId: 'acme', principalId: 'ana' })
    expect((await api.as(ana).call('GET', '/meta')).json!.quota).toEqual({ limit: null, used: 0, remaining: null })
  })
})

describe('router options', () => {
  it('offers only the expiry presets within the maximum', async () => {
    const api = handlerFor(managerWith({ expiry: { max: '60d' } }), { expiryPresets: ['7d', '30d', '60d', '90d'] }).as(ben)
    expect((await api.call('GET', '/meta')).json!.expiry).toEqual({ presets: ['7d', '30d', '60d'], defaultMs: 60 * 86_400_000, maxMs: 60 * 86_400_000, neverAllowed: false })
  })

  it('refuses a body over `bodyLimit` with 413, before parsing it', async () => {
    const api = handlerFor(managerWith(), { bodyLimit: 2048 }).as(ben)
    expect((await api.call('POST', '/', { name: 'x', description: 'y'.repeat(900) })).status).toBe(201)
    const big = await api.call('POST', '/', `{"name":"${'x'.repeat(3000)}"`)
    expect(big.json).toMatchObject({ status: 413, code: 'payload_too_large' })
  })

  it('throws a ConfigError naming the option for bad options', () => {
    const keys = managerWith()
    const bad: [Record<string, unknown>, string][] = [
      [{}, 'authorize'],
      [{ authorize: () => null, allowedOrigins: ['https://app.example.com/path'] }, 'allowedOrigins'],
      [{ authorize: () => null, bodyLimit: 10 }, 'bodyLimit'],
      [{ authorize: () => null, expiryPresets: ['soon'] }, 'expiryPresets'],
      [{ authorize: () => null, basePath: 'api keys' }, 'basePath'],
    ]
    for (const [options, path] of bad) {
      let thrown: unknown
      try {
        createManagementHandler(keys, options as unknown as ManagementRouterOptions<Request>)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(ConfigError)
      expect((thrown as ConfigError).message).toContain(path)
    }
  })

  it("rejects with a ConfigError when authorize returns something that is not a principal, and changes nothing", async () => {
    const keys = managerWith()
    const handler = createManagementHandler(keys, { authorize: () => ({ id: '', role: 'admin' }) as unknown as Principal })
    await expect(handler(new Request('http://app.test/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' }))).rejects.toBeInstanceOf(ConfigError)
    expect((await keys.list()).items).toEqual([])
  })

  it('answers paths outside basePath with the one 404', async () => {
    const api = handlerFor(managerWith(), { basePath: '/api/keys' }).as(ana)
    const outside = await api.call('GET', '/elsewhere')
    const missing = await api.call('GET', '/api/keys/NoSuchKey0000000')
    expect(outside.status).toBe(404)
    expect(outside.text).toBe(missing.text)
    expect((await api.call('GET', '/api/keys')).status).toBe(200)
    expect((await api.call('GET', '/api/keys/')).status).toBe(200)
  })
})
