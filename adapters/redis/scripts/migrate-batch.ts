/**
 * The migration script: moves a batch of 0.1.0 tenant keys from their owner's set into their tenant's
 * set and records how far the walk got, in one atomic step; and the builder of its KEYS and ARGV.
 */
import type { KeyLayout } from '../keys.js'
import { decodeFixed } from '../record-codec.js'
import { defineScript, type ScriptCall } from './script.js'

/**
 * KEYS: 1 meta, then three per record: its hash, its owner's 0.1.0 set, its tenant set.
 * ARGV: 1 the order member the walk has reached, or '' when it is complete; then two per record: its
 * ID and the fixed fields its keys were derived from.
 *
 * A record whose stored fixed fields differ was deleted or replaced since they were read: it is skipped,
 * as every record written by this version is in its right set already. Answers how many IDs moved.
 */
export const MIGRATE_BATCH = defineScript(`
if #KEYS < 1 or (#KEYS - 1) % 3 ~= 0 or #ARGV ~= 1 + (#KEYS - 1) / 3 * 2 then reject('ERR', 'expected a meta key, key triples and ID pairs') end
expect_type(1, 'hash', 'namespace meta hash')
local layout = read_layout(1)
local count = (#KEYS - 1) / 3
for i = 1, count do
  expect_type(3 * i - 1, 'hash', 'record')
  expect_type(3 * i, 'set', '0.1.0 owner live set')
  expect_type(3 * i + 1, 'set', 'tenant live set')
  required(2 * i, 'id')
  required(2 * i + 1, 'fixed fields')
end

local moved = 0
for i = 1, count do
  local id = ARGV[2 * i]
  if redis.call('HGET', KEYS[3 * i - 1], 'fixed') == ARGV[2 * i + 1] and redis.call('SREM', KEYS[3 * i], id) == 1 then
    redis.call('SADD', KEYS[3 * i + 1], id)
    moved = moved + 1
  end
end
if ARGV[1] == '' then
  redis.call('HSET', KEYS[1], 'layout', '2')
  redis.call('HDEL', KEYS[1], 'migrationCursor')
elseif layout == nil then
  -- A concurrent migrate() that already finished leaves no cursor behind.
  redis.call('HSET', KEYS[1], 'migrationCursor', ARGV[1])
end
return moved
`)

/** A record as the walk read it: its ID and its stored fixed fields. */
export interface MigrationCandidate {
  readonly id: string
  readonly fixed: string
}

/**
 * KEYS and ARGV of {@link MIGRATE_BATCH}. Only records with an owner and a tenant can sit in the wrong
 * set; the others are left out. `reached` is '' once the walk is complete.
 */
export function migrateBatchCall(layout: KeyLayout, candidates: readonly MigrationCandidate[], reached: string): ScriptCall {
  const keys = [layout.meta]
  const args = [reached]
  for (const { id, fixed } of candidates) {
    const { ownerId, tenantId } = decodeFixed(fixed)
    if (ownerId === null || tenantId === null) continue
    keys.push(layout.record(id), layout.ownerLive(ownerId), layout.liveSet(ownerId, tenantId))
    args.push(id, fixed)
  }
  return { keys, args }
}
