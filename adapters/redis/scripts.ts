/**
 * The Lua scripts. Each multi-step operation is one script, so it runs atomically: no other command
 * runs on the server between its reads and its writes. Every key a script touches is declared in KEYS
 * (optional keys at positions given in ARGV, 0 meaning absent), as Redis Cluster and Redis-compatible
 * servers that lock declared keys require.
 *
 * Scripts never parse or build JSON: `fixed` and `doc` are opaque strings to them (see record-codec.ts),
 * and numbers stay strings except where touch compares two instants.
 */
import { createHash } from 'node:crypto'
import type { SendCommand } from './client.js'

/** A Lua script and the SHA-1 that EVALSHA runs it by. */
export interface Script {
  readonly source: string
  readonly sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * KEYS: 1 record, 2 all index, 3 expiry index; owner index, owner live set, tenant index and the quota's
 * live set at the positions in ARGV[8..11].
 * ARGV: 1 id, 2 order member, 3 fixed, 4 doc, 5 version, 6 lastUsedAt or '', 7 expiry score or ''
 * (also '' when revoked), 8..11 positions, 12 quota limit, 13 '1' when not revoked.
 * The ID check comes before the quota check, as the contract requires.
 */
export const INSERT = script(
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id_taken' end
local ownerIndex, ownerLive, tenantIndex, quotaLive = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
if quotaLive > 0 and redis.call('SCARD', KEYS[quotaLive]) >= tonumber(ARGV[12]) then return 'quota_exceeded' end
redis.call('HSET', KEYS[1], 'fixed', ARGV[3], 'doc', ARGV[4], 'version', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[6]) end
redis.call('ZADD', KEYS[2], 0, ARGV[2])
if ownerIndex > 0 then redis.call('ZADD', KEYS[ownerIndex], 0, ARGV[2]) end
if tenantIndex > 0 then redis.call('ZADD', KEYS[tenantIndex], 0, ARGV[2]) end
if ownerLive > 0 and ARGV[13] == '1' then redis.call('SADD', KEYS[ownerLive], ARGV[1]) end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1]) end
return 'inserted'
`,
)

/**
 * Compare-and-set. KEYS: 1 record, 2 expiry index; the owner's live set at position ARGV[7].
 * ARGV: 1 fixed the keys were derived from, 2 expected version, 3 new version, 4 doc, 5 id,
 * 6 expiry score or '', 7 position, 8 '1' when not revoked.
 * Answers 'stale_keys' when the stored immutable fields differ from ARGV[1]: the declared keys may then
 * be the wrong ones, and the caller retries with the stored value. `fixed` and `lastUsedAt` are never
 * written, so immutable fields and the last use stay as stored.
 */
export const UPDATE = script(
  `
local stored = redis.call('HMGET', KEYS[1], 'fixed', 'version')
if not stored[1] then return 'not_found' end
if stored[1] ~= ARGV[1] then return 'stale_keys' end
if stored[2] ~= ARGV[2] then return 'conflict' end
redis.call('HSET', KEYS[1], 'doc', ARGV[4], 'version', ARGV[3])
local ownerLive = tonumber(ARGV[7])
if ownerLive > 0 then
  if ARGV[8] == '1' then redis.call('SADD', KEYS[ownerLive], ARGV[5]) else redis.call('SREM', KEYS[ownerLive], ARGV[5]) end
end
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5]) else redis.call('ZREM', KEYS[2], ARGV[5]) end
return 'updated'
`,
)

/**
 * KEYS: 1 record, 2 all index, 3 expiry index; owner index, owner live set and tenant index at the
 * positions in ARGV[4..6]. ARGV: 1 fixed the keys were derived from, 2 id, 3 order member.
 * Empty indexes and sets vanish on their own, so an owner leaves no key behind.
 */
export const DELETE = script(
  `
local fixed = redis.call('HGET', KEYS[1], 'fixed')
if not fixed then return 'not_found' end
if fixed ~= ARGV[1] then return 'stale_keys' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[2])
local ownerIndex, ownerLive, tenantIndex = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if ownerIndex > 0 then redis.call('ZREM', KEYS[ownerIndex], ARGV[3]) end
if ownerLive > 0 then redis.call('SREM', KEYS[ownerLive], ARGV[2]) end
if tenantIndex > 0 then redis.call('ZREM', KEYS[tenantIndex], ARGV[3]) end
return 'deleted'
`,
)

/** KEYS: 1 record. ARGV: 1 instant. Raises lastUsedAt only; a missing record stays missing. */
export const TOUCH = script(
  `
local current = redis.call('HGET', KEYS[1], 'lastUsedAt')
if current then
  if tonumber(current) >= tonumber(ARGV[1]) then return 0 end
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1])
return 1
`,
)

/**
 * KEYS: record hashes. Answers four values per key (fixed, doc, version, lastUsedAt; nil when absent),
 * read in one step so a batch never mixes two versions of a record.
 */
export const FETCH = script(
  `
local out = {}
for i = 1, #KEYS do
  local values = redis.call('HMGET', KEYS[i], 'fixed', 'doc', 'version', 'lastUsedAt')
  for j = 1, 4 do out[#out + 1] = values[j] end
end
return out
`,
)

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOSCRIPT')
}

/**
 * Runs `script` by its SHA-1; on NOSCRIPT (a restarted server, or a Cluster node that has not seen
 * it yet) sends the source with EVAL, which also caches it for the next EVALSHA.
 */
export async function runScript(send: SendCommand, script: Script, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args]
  try {
    return await send(['EVALSHA', script.sha, ...tail])
  } catch (error) {
    if (!isNoScript(error)) throw error
    return await send(['EVAL', script.source, ...tail])
  }
}
