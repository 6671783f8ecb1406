/**
 * A key record in Redis exactly as 0.1.0's insert script wrote it: `doc` has none of the fields added
 * since (policy, hasCredits, createdBy, updatedBy, disabledReason, disabledBy). For tests that prove
 * such records read back without a migration.
 */
import type { Redis } from 'ioredis'
import { orderMember } from '../../adapters/redis/keys.js'
import type { StoredKey } from '../../src/index.js'

/** Writes `record` (an owner's key without a tenant) under `{namespace}` as 0.1.0 did. */
export async function writeLegacyRedisRecord(client: Redis, namespace: string, record: StoredKey): Promise<void> {
  const key = (suffix: string) => `{${namespace}}:${suffix}`
  const fixed = JSON.stringify({ id: record.id, ownerId: record.ownerId, tenantId: null, environment: record.environment, createdAt: record.createdAt })
  const doc = JSON.stringify({
    name: record.name,
    description: record.description,
    type: record.type,
    scopes: record.scopes,
    roles: record.roles,
    groups: record.groups,
    metadata: record.metadata,
    start: record.start,
    hash: record.hash,
    previousHash: null,
    previousHashExpiresAt: null,
    updatedAt: record.updatedAt,
    expiresAt: null,
    enabled: true,
    revokedAt: null,
    expiryNoticeFor: null,
  })
  await client.hset(key(`key:${record.id}`), 'fixed', fixed, 'doc', doc, 'version', String(record.version))
  await client.zadd(key('idx:all'), 0, orderMember(record.createdAt, record.id))
  await client.zadd(key(`idx:owner:${record.ownerId}`), 0, orderMember(record.createdAt, record.id))
  await client.sadd(key(`live:owner:${record.ownerId}`), record.id)
}
