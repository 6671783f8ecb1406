/**
 * The prune script: removes a batch of audit entries from the entries hash and from every index they
 * are in, in one atomic step; and the builder of its KEYS and ARGV.
 */
import type { KeyLayout } from '../keys.js'
import type { PreparedAudit } from './audit-lua.js'
import { DeclaredKeys, defineScript, type ScriptCall } from './script.js'

/**
 * KEYS: 1 the entries hash, 2 the all index, then the entries' other indexes, each once.
 * ARGV: seven per entry: its field, its order member, and the KEYS positions of its key, tenant, owner,
 * actor and action indexes (`'0'` where it is in none).
 *
 * Entries are never changed and a member names one entry, so removing what is already gone (pruned
 * concurrently) does nothing; every key's type is checked before the first write. Answers how many
 * entries it removed from the hash.
 */
export const PRUNE_AUDIT = defineScript(`
if #KEYS < 2 or #ARGV % 7 ~= 0 then reject('ERR', 'expected the entries hash, the all index and seven arguments per entry') end
expect_type(1, 'hash', 'audit entries hash')
for i = 2, #KEYS do expect_type(i, 'zset', 'audit index') end
local count = #ARGV / 7
local positions = {}
for i = 0, count - 1 do
  required(7 * i + 1, 'audit entry ID')
  required(7 * i + 2, 'audit order member')
  for j = 3, 7 do
    local value = finite(ARGV[7 * i + j])
    if value == nil or value ~= math.floor(value) or value < 0 or value > #KEYS then reject('ERR', 'the position of an audit index is not a key position') end
    positions[7 * i + j] = value
  end
end

local removed = 0
for i = 0, count - 1 do
  local member = ARGV[7 * i + 2]
  removed = removed + redis.call('HDEL', KEYS[1], ARGV[7 * i + 1])
  redis.call('ZREM', KEYS[2], member)
  for j = 3, 7 do
    local index = positions[7 * i + j]
    if index > 0 then redis.call('ZREM', KEYS[index], member) end
  end
end
return removed
`)

/**
 * One entry to prune: its member, and its indexes when its JSON was still there to name them (an entry
 * already gone leaves only its member in the all index to remove).
 */
export interface PruneCandidate {
  readonly field: string
  readonly member: string
  readonly indexes: PreparedAudit['indexes'] | null
}

/** KEYS and ARGV of {@link PRUNE_AUDIT}. */
export function pruneAuditCall(layout: KeyLayout, candidates: readonly PruneCandidate[]): ScriptCall {
  const declared = new DeclaredKeys([layout.auditEntries, layout.auditAllIndex])
  const args: string[] = []
  for (const { field, member, indexes } of candidates) {
    args.push(field, member, ...(indexes ?? [null, null, null, null, null]).map((index) => declared.position(index)))
  }
  return { keys: declared.keys, args }
}
