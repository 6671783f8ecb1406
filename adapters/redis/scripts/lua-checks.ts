/**
 * The Lua helpers every write script starts with: checks of its KEYS and ARGV. Redis keeps the writes a
 * script made before a command failed, so a write script runs all of these before its first write and a
 * failed check writes nothing. A failed check raises an error reply naming the input's role, never its
 * value or key name (those hold owner and tenant IDs).
 */

/** Prepended to each script by {@link defineScript}; the helpers are locals of the script. */
export const LUA_CHECKS = `
local function reject(code, message) error({ err = code .. ' keywarden: ' .. message }) end

local function expect_counts(keys, args)
  if #KEYS < keys or #ARGV ~= args then reject('ERR', 'expected at least ' .. keys .. ' keys and ' .. args .. ' arguments') end
end

-- TYPE answers a status reply, which Lua sees as { ok = 'hash' }; 'none' is a key not yet written.
local function expect_type(position, expected, role)
  local actual = redis.call('TYPE', KEYS[position]).ok
  if actual ~= 'none' and actual ~= expected then reject('WRONGTYPE', 'the ' .. role .. ' holds a ' .. actual .. ', expected a ' .. expected) end
end

-- Decimal notation as JavaScript's String(number) writes it; tonumber alone would also take ' 5', '0x1f' or 'nan'.
local function finite(text)
  if type(text) ~= 'string' then return nil end
  if not (string.find(text, '^%-?%d+%.?%d*$') or string.find(text, '^%-?%d+%.?%d*[eE][%-+]?%d+$')) then return nil end
  local value = tonumber(text)
  if value == nil or value ~= value or value == math.huge or value == -math.huge then return nil end
  return value
end

local function required(index, role)
  local value = ARGV[index]
  if type(value) ~= 'string' or value == '' then reject('ERR', 'the ' .. role .. ' is missing') end
  return value
end

local function number(index, role)
  local value = finite(ARGV[index])
  if value == nil then reject('ERR', 'the ' .. role .. ' is not a finite number') end
  return value
end

local function integer(index, role)
  local value = number(index, role)
  if value ~= math.floor(value) then reject('ERR', 'the ' .. role .. ' is not an integer') end
  return value
end

-- '' (absent) or a finite number.
local function optional_number(index, role)
  if ARGV[index] == '' then return nil end
  return number(index, role)
end

-- '' (absent), a finite number, or an infinity as ZADD spells it.
local function optional_score(index, role)
  local text = ARGV[index]
  if text == '' then return nil end
  if text == '+inf' or text == '-inf' then return text end
  number(index, role)
  return text
end

local function flag(index, role)
  local value = ARGV[index]
  if value ~= '0' and value ~= '1' then reject('ERR', 'the ' .. role .. ' flag is not 0 or 1') end
  return value == '1'
end

-- An optional key: its position in KEYS as given in ARGV, 0 when absent; its type is checked too.
local function position(index, expected, role)
  local value = finite(ARGV[index])
  if value == nil or value ~= math.floor(value) or value < 0 or value > #KEYS then reject('ERR', 'the position of the ' .. role .. ' is not a key position') end
  if value > 0 then expect_type(value, expected, role) end
  return value
end

-- The namespace layout recorded in the meta hash: nil (0.1.0, or nothing written yet) or 2.
local function read_layout(metaPosition)
  local layout = redis.call('HGET', KEYS[metaPosition], 'layout')
  if not layout then return nil end
  if layout ~= '2' then reject('ERR', 'the namespace layout is not one this keywarden version knows') end
  return 2
end
`
