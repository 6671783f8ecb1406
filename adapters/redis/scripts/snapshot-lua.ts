/**
 * The Lua helpers of the verify snapshot (record-codec.ts): the scripts that change a record's hash
 * rewrite its snapshot in the same step, with the `lastUsedAt` the hash holds. Lua only splices the
 * first member; the rest is JSON built in TypeScript, passed through untouched.
 */
import { SNAPSHOT_HEAD } from '../record-codec.js'

/** Prepended to the scripts that write snapshots, after the checks of lua-checks.ts. */
export const SNAPSHOT_LUA = `
local SNAPSHOT_HEAD = '${SNAPSHOT_HEAD}'

-- The snapshot of a record whose hash is at recordKey, from the tail TypeScript encoded.
local function write_snapshot(snapshotKey, recordKey, tail)
  local lastUsedAt = redis.call('HGET', recordKey, 'lastUsedAt')
  redis.call('SET', snapshotKey, SNAPSHOT_HEAD .. (lastUsedAt or 'null') .. ',' .. tail)
end

-- The snapshot with a new lastUsedAt (already checked: a finite number as JavaScript writes it), or
-- nil when there is none. Computed before the script's first write, so a foreign value writes nothing.
local function touched_snapshot(snapshotKey, at)
  local text = redis.call('GET', snapshotKey)
  if not text then return nil end
  local comma = string.sub(text, 1, #SNAPSHOT_HEAD) == SNAPSHOT_HEAD and string.find(text, ',', #SNAPSHOT_HEAD + 1, true)
  if not comma then reject('ERR', 'the stored verify snapshot is not one this keywarden version wrote') end
  return SNAPSHOT_HEAD .. at .. string.sub(text, comma)
end
`
