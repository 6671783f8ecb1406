/**
 * The Lua both usage scripts share: src/limits/usage-arithmetic.ts, operation for operation and in the
 * same order, so Redis computes the same doubles as the memory and SQL stores. Lua 5.1 numbers are
 * IEEE doubles like JavaScript's; `math.fmod` is JavaScript's `%` (Lua's own `%` floors instead).
 * Doubles leave Lua as `%.17g` text, which `tonumber` and `Number` read back to the same bits;
 * `tostring` would keep only 14 digits, and a number returned as such becomes a truncated integer.
 */
export const USAGE_LUA = `
local format, floor = string.format, math.floor
-- An integer of fewer than 16 digits prints the same digits under %d as under %.17g (which switches to
-- an exponent at 17), and %d costs a third as much; 0 keeps %.17g, which tells -0 from 0.
local function exact(x)
  if x ~= 0 and x > -1e15 and x < 1e15 and x == floor(x) then return format('%d', x) end
  return format('%.17g', x)
end

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

-- HMGET of the hash at KEYS[position]. A key of another type fails as expect_type does, naming the
-- role and the type found (TYPE is asked only then), so the common case is one command, not two.
-- Scripts do every such read before their first write, so a failed read still writes nothing.
local function read_hash(position, role, ...)
  local stored = redis.pcall('HMGET', KEYS[position], ...)
  if stored.err then
    expect_type(position, 'hash', role)
    error(stored)
  end
  return stored
end

-- A counter state from its HMGET of value and at: nil when none is stored.
local function parse_counter(stored)
  if not stored[1] and not stored[2] then return nil end
  return { value = stored_number(stored[1], 'counter value'), at = stored_number(stored[2], 'counter instant') }
end

local function read_counter_hash(position)
  return read_hash(position, 'rate counter', 'value', 'at')
end

-- A balance from its HMGET of remaining and refilledAt: nil when none is stored; refilledAt nil while
-- never refilled.
local function parse_balance(stored)
  if not stored[1] then
    if stored[2] then reject('ERR', 'the stored balance has no remaining credits') end
    return nil
  end
  local refilledAt = nil
  if stored[2] then refilledAt = stored_number(stored[2], 'refill instant') end
  return { remaining = stored_number(stored[1], 'balance'), refilledAt = refilledAt }
end

local function read_balance_hash(position)
  return read_hash(position, 'credit balance', 'remaining', 'refilledAt')
end

local function read_balance(position)
  return parse_balance(read_balance_hash(position))
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

-- The state comes from current_credits on the balance as stored, whose refilledAt is nil only when the
-- stored hash has none (a stored one is kept or replaced, never dropped): so there is never a stale
-- refilledAt to delete, and one HSET writes the balance.
-- remaining_text, when given, is exact(state.remaining), already computed by the caller.
local function write_balance(position, state, remaining_text)
  local remaining = remaining_text or exact(state.remaining)
  if state.refilledAt == nil then
    redis.call('HSET', KEYS[position], 'remaining', remaining)
  else
    redis.call('HSET', KEYS[position], 'remaining', remaining, 'refilledAt', exact(state.refilledAt))
  end
end
`
