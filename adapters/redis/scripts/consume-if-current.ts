/**
 * The consume-if-current script: reads a key's record, checks it is still the one the KeyManager last
 * saw (version, state, hash) and, only then, consumes as CONSUME_USAGE does, all in one atomic
 * step and one round trip; and the builder of its KEYS and ARGV.
 */
import type { GuardedUsageOutcome, GuardedUsageRequest } from '../../../src/limits/usage-store.js'
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { decodeRecord, encodeNumber, READ_FIELDS } from '../record-codec.js'
import { readTexts } from '../replies.js'
import { CONSUME_LUA, consumeUsageCall, readUsageOutcome } from './consume-usage.js'
import { runScript } from './run-script.js'
import { defineScript, type ScriptCall } from './script.js'
import { USAGE_LUA } from './usage-lua.js'

/**
 * The guard of `guardHolds` (src/limits/usage-store.ts) in Lua, on the four {@link READ_FIELDS} as
 * HMGET answers them. `version` is a plain field, compared as text like the update script does; the
 * other fields live in `doc`, decoded with cjson (its decoder reads numbers exactly; only its encoder
 * rounds, and it is never used). A `doc` cjson cannot decode (nested deeper than 1000 levels, an
 * unpaired surrogate escaped by JSON.stringify), or a field of an unexpected type, fails the guard:
 * the caller then decides on the record it gets back, so a failed guard is always safe.
 */
const GUARD_LUA = `
-- Whether two strings are equal, in time that depends on their lengths only. Strings of different
-- lengths are never equal: the longer is then compared with itself, so the work is the same. Bytes go
-- 16 to a string.byte call and their differences are summed as squares (integers far within a double's
-- exact range, so the sum is 0 exactly when every byte matches): plain arithmetic with no branch on
-- the data, several times cheaper than a bit.bxor call per byte, which cost more than every command
-- of the script together.
local byte = string.byte
local function same_hash(a, b)
  local difference = 0
  local n = #a
  if n ~= #b then
    difference = 1
    if #b > n then a = b; n = #b else b = a end
  end
  local whole = n - n % 16
  for i = 1, whole, 16 do
    local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16 = byte(a, i, i + 15)
    local b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16 = byte(b, i, i + 15)
    a1, a2, a3, a4, a5, a6, a7, a8 = a1 - b1, a2 - b2, a3 - b3, a4 - b4, a5 - b5, a6 - b6, a7 - b7, a8 - b8
    a9, a10, a11, a12, a13, a14, a15, a16 = a9 - b9, a10 - b10, a11 - b11, a12 - b12, a13 - b13, a14 - b14, a15 - b15, a16 - b16
    difference = difference + a1 * a1 + a2 * a2 + a3 * a3 + a4 * a4 + a5 * a5 + a6 * a6 + a7 * a7 + a8 * a8
      + a9 * a9 + a10 * a10 + a11 * a11 + a12 * a12 + a13 * a13 + a14 * a14 + a15 * a15 + a16 * a16
  end
  for i = whole + 1, n do
    local d = byte(a, i) - byte(b, i)
    difference = difference + d * d
  end
  return difference == 0
end

local function guard_holds(stored, version, hash, now)
  if not stored[1] or not stored[2] or not stored[3] then return false end
  if stored[3] ~= version then return false end
  local decoded, doc = pcall(cjson.decode, stored[2])
  if not decoded or type(doc) ~= 'table' then return false end
  if doc.revokedAt ~= cjson.null or doc.enabled ~= true then return false end
  local expiresAt = doc.expiresAt
  if expiresAt ~= cjson.null and not (type(expiresAt) == 'number' and now < expiresAt) then return false end
  if type(doc.hash) ~= 'string' then return false end
  local current = same_hash(doc.hash, hash)
  -- The previous hash is compared whenever there is one, so the time does not tell which one matched.
  local previous = false
  if type(doc.previousHash) == 'string' then
    local matched = same_hash(doc.previousHash, hash)
    local until_ = doc.previousHashExpiresAt
    previous = matched and type(until_) == 'number' and now < until_
  end
  return current or previous
end
`

/**
 * KEYS: those of CONSUME_USAGE (the counters, then the balance when there is one), then the record.
 * ARGV: those of CONSUME_USAGE, then the expected version and the hash of the presented secret.
 * Answers `applied`, the stored lastUsedAt (nil when none), then what CONSUME_USAGE answers;
 * or, when the guard does not hold, `not_applied` and the four {@link READ_FIELDS} (nil when absent),
 * having written nothing.
 *
 * Every input is checked first, then every key is read (a key of another type fails there, whether or
 * not the guard holds, with no TYPE sent otherwise); then the guard; then `apply_usage`, which checks
 * every stored state before its first write.
 */
export const CONSUME_IF_CURRENT = defineScript(`${USAGE_LUA}${CONSUME_LUA}${GUARD_LUA}
local usage = read_usage(1, 2)
local record = #KEYS
local version = ARGV[usage.args + 1]
integer(usage.args + 1, 'version')
local hash = ARGV[usage.args + 2]

local states = read_states(usage)
local stored = read_hash(record, 'record', 'fixed', 'doc', 'version', 'lastUsedAt')
if not guard_holds(stored, version, hash, usage.now) then
  return { 'not_applied', stored[1], stored[2], stored[3], stored[4] }
end
local out = apply_usage(usage, states)
table.insert(out, 1, stored[4])
table.insert(out, 1, 'applied')
return out
`)

/** KEYS and ARGV of {@link CONSUME_IF_CURRENT}: those of the consumption, then the record's. */
export function consumeIfCurrentCall(layout: KeyLayout, request: GuardedUsageRequest): ScriptCall {
  const usage = consumeUsageCall(layout, request)
  return {
    keys: [...usage.keys, layout.record(request.keyId)],
    args: [...usage.args, encodeNumber(request.version), request.hash],
  }
}

/** Runs {@link CONSUME_IF_CURRENT} for `request`. */
export async function consumeIfCurrent(send: SendCommand, layout: KeyLayout, request: GuardedUsageRequest): Promise<GuardedUsageOutcome> {
  const reply = readTexts(await runScript(send, CONSUME_IF_CURRENT, consumeIfCurrentCall(layout, request)))
  if (reply[0] === 'applied') {
    const lastUsedAt = reply[1]
    // As `get` reads it (decodeRecord), so both answers agree on the same stored text.
    return { applied: true, outcome: readUsageOutcome(reply, 2, request), lastUsedAt: lastUsedAt == null ? null : Number(lastUsedAt) }
  }
  if (reply[0] === 'not_applied' && reply.length === 1 + READ_FIELDS.length) {
    return { applied: false, record: decodeRecord(reply.slice(1)) }
  }
  throw new Error('Unexpected Redis reply: expected applied or not_applied')
}
