/**
 * What both example servers share: the key configuration, the input of the create route, the demo
 * keys and the start-up banner. The admin check, request reading and error answers have files of their own.
 */
import { randomBytes } from 'node:crypto'
import { KeyManager, type IssuedKey } from 'keywarden'
import { MemoryStore } from 'keywarden/adapters/memory'
import { adminToken, adminTokenSource, MIN_ADMIN_TOKEN_LENGTH } from './admin-token.js'

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

/** Creates the two demo keys the banner shows. */
export async function seedDemoKeys(): Promise<{ reader: IssuedKey; writer: IssuedKey }> {
  const reader = await keys.create({ name: 'demo reader', ownerId: 'demo-user', environment: 'live', roles: ['readonly'] })
  const writer = await keys.create({ name: 'demo writer', ownerId: 'demo-user', environment: 'live', roles: ['writer'] })
  return { reader, writer }
}

/** Prints where the server listens, the demo keys and `curl` lines to try. */
export function printBanner(framework: string, baseUrl: string, demo: { reader: IssuedKey; writer: IssuedKey }): void {
  // A token the operator set stays out of the output (and its logs): the curl lines read it from the shell.
  const admin = adminTokenSource === 'generated' ? adminToken : '$ADMIN_TOKEN'
  const lines = [
    `keywarden ${framework} example listening on ${baseUrl}`,
    '',
    `Reader key (data:read):             ${demo.reader.token}`,
    `Writer key (data:read, data:write): ${demo.writer.token}`,
    adminTokenSource === 'generated'
      ? `Admin token (X-Admin-Token):        ${adminToken} (made up for this run; set ADMIN_TOKEN, ${MIN_ADMIN_TOKEN_LENGTH}+ characters, to choose one)`
      : 'Admin token (X-Admin-Token):        from ADMIN_TOKEN, not printed (export it in the shell you run the curl lines from)',
    '',
    'Try:',
    `curl -s ${baseUrl}/health`,
    `curl -s ${baseUrl}/reports -H "Authorization: Bearer ${demo.reader.token}"`,
    `curl -s ${baseUrl}/reports -X POST -H "X-API-Key: ${demo.reader.token}"`,
    `curl -s ${baseUrl}/reports -X POST -H "X-API-Key: ${demo.writer.token}"`,
    `curl -s ${baseUrl}/reports`,
    `curl -s ${baseUrl}/admin/keys -X POST -H "X-Admin-Token: ${admin}" -H "Content-Type: application/json" -d '{"name":"my script","ownerId":"u1","environment":"live","roles":["readonly"],"expiresIn":"30d"}'`,
    `curl -s "${baseUrl}/admin/keys?ownerId=demo-user" -H "X-Admin-Token: ${admin}"`,
    `curl -s ${baseUrl}/admin/keys/${demo.reader.key.id}/rotate -X POST -H "X-Admin-Token: ${admin}" -H "Content-Type: application/json" -d '{"gracePeriod":"1h"}'`,
    `curl -s ${baseUrl}/admin/keys/${demo.writer.key.id}/disable -X POST -H "X-Admin-Token: ${admin}" -H "Content-Type: application/json" -d '{}'`,
    `curl -s ${baseUrl}/admin/keys/${demo.writer.key.id}/enable -X POST -H "X-Admin-Token: ${admin}" -H "Content-Type: application/json" -d '{}'`,
    `curl -s ${baseUrl}/admin/keys/${demo.reader.key.id}/revoke -X POST -H "X-Admin-Token: ${admin}" -H "Content-Type: application/json" -d '{}'`,
  ]
  console.log(lines.join('\n'))
}
