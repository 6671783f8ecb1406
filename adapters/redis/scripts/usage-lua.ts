/**
 * The Lua both usage scripts share: src/limits/usage-arithmetic.ts, operation for operation and in the
 * same order, so Redis computes the same doubles as the memory and SQL stores. Lua 5.1 numbers are
 * IEEE doubles like JavaScript's; `math.fmod` is JavaScript's `%` (Lua's own `%` floors instead).
 * Doubles leave Lua as `%.17g` text, which `tonumber` and `Number` read back to the same bits;
 * `tostring` would keep only 14 digits, and a number returned as such becomes a truncated integer.
 */
export const USAGE_LUA = `
local function exact(x) return string.format('%.17g', x) end

local function positive_integer(index, role)
  local value = integer(index, role)
  if value < 1 then reject('ERR', 'the ' .. role .. ' is not positive') end
  return value
end

local function stored_number(text, role)
  local value = finite(text)
  if value == nil then reject('ERR', 'the stored ' .. role .. ' is not a finite number') end
  return value
end

-- A counter state from its hash: nil when none is stored.
local function read_counter(position)
  local stored = redis.call('HMGET', KEYS[position], 'value', 'at')
  if not stored[1] and not stored[2] then return nil end
  return { value = stored_number(stored[1], 'counter value'), at = stored_number(stored[2], 'counter instant') }
end

-- A balance from its hash: nil when none is stored; refilledAt nil while never refilled.
local function read_balance(position)
  local stored = redis.call('HMGET', KEYS[position], 'remaining', 'refilledAt')
  if not stored[1] then
    if stored[2] then reject('ERR', 'the stored balance has no remaining credits') end
    return nil
  end
  local refilledAt = nil
  if stored[2] then refilledAt = stored_number(stored[2], 'refill instant') end
  return { remaining = stored_number(stored[1], 'balance'), refilledAt = refilledAt }
end

-- A pool's refill from ARGV: nil, or { amount, periodStart }.
local function read_refill(amountIndex, role)
  if ARGV[amountIndex] == '' and ARGV[amountIndex + 1] == '' then return nil end
  return { amount = integer(amountIndex, role .. ' refill amount'), periodStart = integer(amountIndex + 1, role .. ' refill period start') }
end

-- currentCounter
local function current_counter(counter, stored, now)
  if counter.fixed then
    local start = now - math.fmod(now, counter.windowMs)
    if stored == nil or stored.at < start then return { value = 0, at = start } end
    return stored
  end
  if stored == nil then return { value = counter.capacity, at = now } end
  if now <= stored.at then return stored end
  return { value = math.min(counter.capacity, stored.value + ((now - stored.at) * counter.limit) / counter.windowMs), at = now }
end

-- counterAllows
local function counter_allows(counter, state, cost)
  if counter.fixed then return state.value + cost <= counter.limit end
  return state.value >= cost
end

-- chargeCounter
local function charge_counter(counter, state, cost)
  if counter.fixed then return { value = state.value + cost, at = state.at } end
  return { value = state.value - cost, at = state.at }
end

-- counterExpiresAt
local function counter_expires_at(counter, state)
  if counter.fixed then return state.at + counter.windowMs end
  return state.at + math.max(1, math.ceil(((counter.capacity - state.value) * counter.windowMs) / counter.limit))
end

-- currentCredits
local function current_credits(initial, refill, stored)
  if stored == nil then
    if refill == nil then return { remaining = initial, refilledAt = nil } end
    return { remaining = initial, refilledAt = refill.periodStart }
  end
  if refill ~= nil and (stored.refilledAt == nil or stored.refilledAt < refill.periodStart) then
    return { remaining = refill.amount, refilledAt = refill.periodStart }
  end
  return stored
end

local function write_balance(position, state)
  redis.call('HSET', KEYS[position], 'remaining', exact(state.remaining))
  if state.refilledAt == nil then
    redis.call('HDEL', KEYS[position], 'refilledAt')
  else
    redis.call('HSET', KEYS[position], 'refilledAt', exact(state.refilledAt))
  end
end
`
