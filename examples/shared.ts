/**
 * What both example servers share: the key configuration, the host's own admin check, mapping
 * keywarden errors to HTTP answers for the management routes, and the start-up banner.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import {
  KeyManager,
  KeyNotFoundError,
  KeyRevokedError,
  KeywardenError,
  QuotaExceededError,
  StoreError,
  ValidationError,
  type CreateKeyInput,
  type IssuedKey,
} from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'

export const keys = new KeyManager({
  store: new MemoryStore(),
  prefix: 'acme',
  environments: ['live', 'test'],
  roles: { admin: ['*'], readonly: ['data:read'], writer: ['data:read', 'data:write'] },
  // In production the pepper comes from a secret manager; the example makes one up per run.
  pepper: process.env.KEY_PEPPER ?? randomBytes(32).toString('base64'),
  expiry: { default: '90d', max: '365d' },
  maxKeysPerOwner: (owner) => (owner.role === 'admin' ? Infinity : 5),
})

keys.on('rejected', (event) => console.log(`[keywarden] rejected: ${event.reason}${event.keyId ? ` (key ${event.keyId})` : ''}`))

/** The host application's own admin credential (not an API key): from ADMIN_TOKEN, or made up per run. */
export const adminToken = process.env.ADMIN_TOKEN ?? randomBytes(18).toString('base64url')

/** The host's admin check for the management routes: a constant-time comparison of X-Admin-Token. */
export function isAdmin(req: IncomingMessage): boolean {
  const presented = Buffer.from(String(req.headers['x-admin-token'] ?? ''))
  const expected = Buffer.from(adminToken)
  return presented.length === expected.length && timingSafeEqual(presented, expected)
}

/** The fields a settings page may send to create a key; the owner and its role come from the session. */
export function createInput(body: unknown): CreateKeyInput {
  const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  // keys.create validates every field; unknown or malformed ones come back as a 400 naming the field.
  return { environment: 'live', ...input, owner: { role: 'user' } } as unknown as CreateKeyInput
}

/** Maps an error from a management call to the HTTP answer a settings page expects. */
export function errorResponse(error: unknown): { status: number; body: Record<string, unknown> } {
  if (error instanceof ValidationError) return { status: 400, body: { code: error.code, field: error.field, message: error.message } }
  if (error instanceof KeyNotFoundError) return { status: 404, body: { code: error.code } }
  if (error instanceof QuotaExceededError) return { status: 409, body: { code: error.code, limit: error.limit } }
  if (error instanceof KeyRevokedError) return { status: 409, body: { code: error.code } }
  if (error instanceof StoreError) return { status: 503, body: { code: error.code } }
  if (error instanceof KeywardenError) return { status: 500, body: { code: error.code } }
  return { status: 500, body: { code: 'internal_error' } }
}

/** Reads a JSON request body (for servers without a body parser). Empty or invalid JSON gives `{}`. */
export async function readJson(req: IncomingMessage, limitBytes = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limitBytes) return {}
    chunks.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
  } catch {
    return {}
  }
}

/** Creates the two demo keys the banner shows. */
export async function seedDemoKeys(): Promise<{ reader: IssuedKey; writer: IssuedKey }> {
  const reader = await keys.create({ name: 'demo reader', ownerId: 'demo-user', environment: 'live', roles: ['readonly'] })
  const writer = await keys.create({ name: 'demo writer', ownerId: 'demo-user', environment: 'live', roles: ['writer'] })
  return { reader, writer }
}

/** Prints where the server listens, the demo keys and `curl` lines to try. */
export function printBanner(framework: string, baseUrl: string, demo: { reader: IssuedKey; writer: IssuedKey }): void {
  const lines = [
    `keywarden ${framework} example listening on ${baseUrl}`,
    '',
    `Reader key (data:read):             ${demo.reader.token}`,
    `Writer key (data:read, data:write): ${demo.writer.token}`,
    `Admin token (X-Admin-Token):        ${adminToken}`,
    '',
    'Try:',
    `curl -s ${baseUrl}/health`,
    `curl -s ${baseUrl}/reports -H "Authorization: Bearer ${demo.reader.token}"`,
    `curl -s ${baseUrl}/reports -X POST -H "X-API-Key: ${demo.reader.token}"`,
    `curl -s ${baseUrl}/reports -X POST -H "X-API-Key: ${demo.writer.token}"`,
    `curl -s ${baseUrl}/reports`,
    `curl -s ${baseUrl}/admin/keys -X POST -H "X-Admin-Token: ${adminToken}" -H "Content-Type: application/json" -d '{"name":"my script","ownerId":"u1","roles":["readonly"],"expiresIn":"30d"}'`,
    `curl -s "${baseUrl}/admin/keys?ownerId=demo-user" -H "X-Admin-Token: ${adminToken}"`,
    `curl -s ${baseUrl}/admin/keys/${demo.reader.key.id}/rotate -X POST -H "X-Admin-Token: ${adminToken}" -H "Content-Type: application/json" -d '{"gracePeriod":"1h"}'`,
    `curl -s ${baseUrl}/admin/keys/${demo.writer.key.id}/disable -X POST -H "X-Admin-Token: ${adminToken}"`,
    `curl -s ${baseUrl}/admin/keys/${demo.writer.key.id}/enable -X POST -H "X-Admin-Token: ${adminToken}"`,
    `curl -s ${baseUrl}/admin/keys/${demo.reader.key.id}/revoke -X POST -H "X-Admin-Token: ${adminToken}"`,
  ]
  console.log(lines.join('\n'))
}
