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
-- Whether two strings are equal, in time that depends on their lengths only: every byte of the longer
-- is XORed with its counterpart (0 past the end of the shorter) and ORed into one accumulator, with no
-- exit before the end; strings of different lengths are never equal.
local function same_hash(a, b)
  local difference = 0
  if #a ~= #b then difference = 1 end
  for i = 1, math.max(#a, #b) do
    difference = bit.bor(difference, bit.bxor(string.byte(a, i) or 0, string.byte(b, i) or 0))
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
 * Every input and every key's type is checked first, whether or not the guard holds; then the guard;
 * then `apply_usage`, which checks every stored state before its first write.
 */
export const CONSUME_IF_CURRENT = defineScript(`${USAGE_LUA}${CONSUME_LUA}${GUARD_LUA}
local usage = read_usage(1, 2)
local record = #KEYS
expect_type(record, 'hash', 'record')
local version = ARGV[usage.args + 1]
integer(usage.args + 1, 'version')
local hash = ARGV[usage.args + 2]

local stored = redis.call('HMGET', KEYS[record], 'fixed', 'doc', 'version', 'lastUsedAt')
if not guard_holds(stored, version, hash, usage.now) then
  return { 'not_applied', stored[1], stored[2], stored[3], stored[4] }
end
local out = apply_usage(usage)
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
