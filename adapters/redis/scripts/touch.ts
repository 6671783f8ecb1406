/**
 * The touch script: raises a record's `lastUsedAt`, never lowers it, never creates a record; and the
 * builder of its KEYS and ARGV.
 */
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { encodeNumber } from '../record-codec.js'
import { runScript } from './run-script.js'
import { SNAPSHOT_LUA } from './snapshot-lua.js'
import { defineScript, type ScriptCall } from './script.js'

/**
 * KEYS: 1 record, 2 its verify snapshot (raised with it). ARGV: 1 instant. A stored `lastUsedAt` that is not a number is refused rather than
 * overwritten: it means someone else wrote the hash.
 */
export const TOUCH = defineScript(`${SNAPSHOT_LUA}
expect_counts(2, 1)
expect_type(1, 'hash', 'record')
expect_type(2, 'string', 'verify snapshot')
local at = number(1, 'instant')

local current = redis.call('HGET', KEYS[1], 'lastUsedAt')
if current then
  local stored = finite(current)
  if stored == nil then reject('ERR', 'the stored lastUsedAt is not a finite number') end
  if stored >= at then return 0 end
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local snapshot = touched_snapshot(KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1])
if snapshot then redis.call('SET', KEYS[2], snapshot) end
return 1
`)

export function touchCall(layout: KeyLayout, id: string, at: number): ScriptCall {
  return { keys: [layout.record(id), layout.snapshot(id)], args: [encodeNumber(at)] }
}

/** Runs {@link TOUCH}. */
export async function touchRecord(send: SendCommand, layout: KeyLayout, id: string, at: number): Promise<void> {
  await runScript(send, TOUCH, touchCall(layout, id, at))
}
