/**
 * The consume-usage script: reads every rate counter and the credit balance of a {@link UsageRequest},
 * decides as `applyUsage` does, writes what it says, in one atomic step; and the builder of its KEYS
 * and ARGV.
 */
import type { CounterState, UsageOutcome, UsageRequest } from '../../../src/limits/usage-store.js'
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { encodeNumber } from '../record-codec.js'
import { readNumber, readOutcome, readTexts } from '../replies.js'
import { runScript } from './run-script.js'
import { defineScript, type ScriptCall } from './script.js'
import { USAGE_LUA } from './usage-lua.js'

/**
 * The body of {@link CONSUME_USAGE}, as three Lua functions, so that a script guarding the consumption
 * (consume-if-current.ts) runs the very same code around its own check:
 *
 * - `read_usage(extra_keys, extra_args)` checks the request in ARGV[1..] and the key count (see
 *   {@link CONSUME_USAGE}), allowing that many further keys and arguments after them, and answers
 *   the parsed request (`args` is how many arguments it took). It writes nothing and reads no state.
 * - `read_states(usage)` reads every counter and the balance (one HMGET each), unparsed; a key of
 *   another type fails here, as a WRONGTYPE naming its role (no TYPE is sent otherwise).
 * - `apply_usage(usage, states)` checks and parses the stored states, decides, writes what a committed
 *   request moves, and answers as {@link CONSUME_USAGE} does. Every stored state is checked before its
 *   first write.
 */
export const CONSUME_LUA = `
-- No state lives longer than this (about 31,700 years), so PEXPIRE never refuses an overflow.
local MAX_TTL_MS = 1e15
-- A spent state reads exactly like a missing one, so keeping it a minute longer changes no answer; it
-- covers instances whose clocks run behind the server's, and commands that run late under load.
local TTL_GRACE_MS = 60000

local function read_usage(extra_keys, extra_args)
  if #ARGV < 4 + extra_args then reject('ERR', 'expected at least ' .. (4 + extra_args) .. ' arguments') end
  local u = {}
  u.now = integer(1, 'now')
  u.cost = integer(2, 'cost')
  if u.cost < 0 then reject('ERR', 'the cost is negative') end
  u.commit = flag(3, 'commit')
  u.n = integer(4, 'counter count')
  if u.n < 0 then reject('ERR', 'the counter count is negative') end
  local base = 4 + 4 * u.n
  u.args = base + 4
  if #ARGV ~= u.args + extra_args then reject('ERR', 'expected ' .. (u.args + extra_args) .. ' arguments') end
  u.hasPool = flag(base + 1, 'credits')
  local keyCount = u.n
  if u.hasPool then keyCount = u.n + 1 end
  if #KEYS ~= keyCount + extra_keys then reject('ERR', 'expected ' .. (keyCount + extra_keys) .. ' keys') end

  u.counters = {}
  for i = 1, u.n do
    local at = 4 + 4 * (i - 1)
    local algorithm = ARGV[at + 1]
    if algorithm ~= 'token-bucket' and algorithm ~= 'fixed-window' then reject('ERR', 'the algorithm of a counter is unknown') end
    u.counters[i] = {
      fixed = algorithm == 'fixed-window',
      limit = positive_integer(at + 2, 'counter limit'),
      capacity = positive_integer(at + 3, 'counter capacity'),
      windowMs = positive_integer(at + 4, 'counter window'),
    }
  end
  if u.hasPool then
    u.initial = integer(base + 2, 'initial balance')
    u.refill = read_refill(base + 3, 'pool')
  end
  return u
end

-- The stored hashes, as HMGET answers them, unparsed: a key of another type fails here.
local function read_states(u)
  local raw = {}
  for i = 1, u.n do raw[i] = read_counter_hash(i) end
  if u.hasPool then raw.balance = read_balance_hash(u.n + 1) end
  return raw
end

local function apply_usage(u, raw)
  local n, now, cost, counters = u.n, u.now, u.cost, u.counters
  local states = {}
  for i = 1, n do states[i] = current_counter(counters[i], parse_counter(raw[i]), now) end
  local balance, previous
  if u.hasPool then
    local stored = parse_balance(raw.balance)
    balance = current_credits(u.initial, u.refill, stored)
    previous = u.initial
    if stored ~= nil then previous = stored.remaining end
  end

  -- Each counter's value and at as text, formatted once for both the write and the answer.
  local function texts_of(rate)
    local texts = {}
    for i = 1, n do
      texts[2 * i - 1] = exact(rate[i].value)
      texts[2 * i] = exact(rate[i].at)
    end
    return texts
  end

  local function answer(refused, texts, remaining_text)
    local out = { refused, '', '' }
    if balance ~= nil then
      out[2] = exact(previous)
      out[3] = remaining_text
    end
    for i = 1, 2 * n do out[3 + i] = texts[i] end
    return out
  end

  for i = 1, n do
    if not counter_allows(counters[i], states[i], cost) then
      if balance == nil then return answer('rate_limited', texts_of(states), nil) end
      return answer('rate_limited', texts_of(states), exact(balance.remaining))
    end
  end

  local charged = {}
  for i = 1, n do charged[i] = charge_counter(counters[i], states[i], cost) end
  local texts = texts_of(charged)
  if u.commit then
    for i = 1, n do
      local ttl = math.min(MAX_TTL_MS, math.max(1, counter_expires_at(counters[i], charged[i]) - now) + TTL_GRACE_MS)
      redis.call('HSET', KEYS[i], 'value', texts[2 * i - 1], 'at', texts[2 * i])
      redis.call('PEXPIRE', KEYS[i], format('%d', ttl))
    end
  end
  if balance == nil then return answer('', texts, nil) end
  if balance.remaining < cost then return answer('usage_exceeded', texts, exact(balance.remaining)) end
  local after = { remaining = balance.remaining - cost, refilledAt = balance.refilledAt }
  local remaining_text = exact(after.remaining)
  if u.commit then write_balance(n + 1, after, remaining_text) end
  return answer('', texts, remaining_text)
end
`

/**
 * KEYS: 1..N the counters in request order (a counter named twice is declared twice), N+1 the balance
 * when the request names one.
 * ARGV: 1 now, 2 cost, 3 '1' to commit, 4 N, then per counter: algorithm, limit, capacity, windowMs;
 * then '1' when there is a balance, its initial, refill amount and refill period start ('' when absent).
 * Answers: refused ('' when passed), previous and remaining balance ('' without a balance), then value
 * and at of each counter, every number as `%.17g` text.
 *
 * Nothing is written before every input, every key's type and every stored state has been checked.
 * A counter key expires when its state stops mattering: `expiresAt - now` from the write, a duration,
 * so the request's clock and the server's need not agree (and a test clock in the past deletes nothing).
 */
export const CONSUME_USAGE = defineScript(`${USAGE_LUA}${CONSUME_LUA}
local usage = read_usage(0, 0)
return apply_usage(usage, read_states(usage))
`)

const REFUSALS = ['', 'rate_limited', 'usage_exceeded'] as const

/** KEYS and ARGV of {@link CONSUME_USAGE}. */
export function consumeUsageCall(layout: KeyLayout, request: UsageRequest): ScriptCall {
  const keys = request.rate.map((counter) => layout.counter(counter.id))
  const args = [encodeNumber(request.now), encodeNumber(request.cost), request.commit ? '1' : '0', String(request.rate.length)]
  for (const counter of request.rate) {
    args.push(counter.algorithm, encodeNumber(counter.limit), encodeNumber(counter.capacity), encodeNumber(counter.windowMs))
  }
  const pool = request.credits
  if (pool === null) {
    args.push('0', '', '', '')
  } else {
    keys.push(layout.balance(pool.id))
    args.push('1', encodeNumber(pool.initial), pool.refill === null ? '' : encodeNumber(pool.refill.amount), pool.refill === null ? '' : encodeNumber(pool.refill.periodStart))
  }
  return { keys, args }
}

/**
 * The {@link UsageOutcome} in `reply` from `offset` on, as {@link CONSUME_USAGE} (or a script ending in
 * `apply_usage`) answers it; a reply of another length is a store failure.
 */
export function readUsageOutcome(reply: readonly (string | null)[], offset: number, request: UsageRequest): UsageOutcome {
  const counters = request.rate.length
  if (reply.length !== offset + 3 + 2 * counters) throw new Error(`Unexpected Redis reply: expected ${offset + 3 + 2 * counters} values`)
  const refused = readOutcome(reply[offset], REFUSALS)
  const rate: CounterState[] = []
  for (let i = 0; i < counters; i++) rate.push({ value: readNumber(reply[offset + 3 + 2 * i]), at: readNumber(reply[offset + 4 + 2 * i]) })
  return {
    refused: refused === '' ? null : refused,
    rate,
    credits: request.credits === null ? null : { previous: readNumber(reply[offset + 1]), remaining: readNumber(reply[offset + 2]) },
  }
}

/** Runs {@link CONSUME_USAGE} for `request`. */
export async function consumeUsage(send: SendCommand, layout: KeyLayout, request: UsageRequest): Promise<UsageOutcome> {
  const reply = readTexts(await runScript(send, CONSUME_USAGE, consumeUsageCall(layout, request)))
  return readUsageOutcome(reply, 0, request)
}
