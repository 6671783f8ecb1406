/**
 * The snapshot script of `migrate()`: writes the verify snapshot of a batch of records that were
 * written before snapshots existed, and records how far the walk got, in one atomic step; and the
 * builder of its KEYS and ARGV.
 */
import type { StoredKey } from '../../../src/store.js'
import type { KeyLayout } from '../keys.js'
import { encodeNumber, encodeSnapshotTail } from '../record-codec.js'
import { defineScript, type ScriptCall } from './script.js'
import { SNAPSHOT_LUA } from './snapshot-lua.js'

/**
 * KEYS: 1 meta, then two per record: its hash, its snapshot. ARGV: 1 the order member the walk has
 * reached, or '' when it is complete; then two per record: the version it was read at, its snapshot's
 * tail.
 *
 * A record whose version moved since it was read was changed by this version's scripts, which wrote its
 * snapshot then (or was deleted): it is skipped. Answers how many snapshots it wrote.
 */
export const SNAPSHOT_BATCH = defineScript(`${SNAPSHOT_LUA}
if #KEYS < 1 or (#KEYS - 1) % 2 ~= 0 or #ARGV ~= #KEYS then reject('ERR', 'expected a meta key, key pairs and argument pairs') end
expect_type(1, 'hash', 'namespace meta hash')
local count = (#KEYS - 1) / 2
for i = 1, count do
  expect_type(2 * i, 'hash', 'record')
  expect_type(2 * i + 1, 'string', 'verify snapshot')
  integer(2 * i, 'version')
  required(2 * i + 1, 'snapshot')
end

local written = 0
for i = 1, count do
  if redis.call('HGET', KEYS[2 * i], 'version') == ARGV[2 * i] then
    write_snapshot(KEYS[2 * i + 1], KEYS[2 * i], ARGV[2 * i + 1])
    written = written + 1
  end
end
if ARGV[1] == '' then
  redis.call('HSET', KEYS[1], 'snapshots', 'complete')
  redis.call('HDEL', KEYS[1], 'snapshotCursor')
elseif redis.call('HGET', KEYS[1], 'snapshots') ~= 'complete' then
  -- A concurrent migrate() that already finished leaves no cursor behind.
  redis.call('HSET', KEYS[1], 'snapshotCursor', ARGV[1])
end
return written
`)

/** KEYS and ARGV of {@link SNAPSHOT_BATCH}. `reached` is '' once the walk is complete. */
export function snapshotBatchCall(layout: KeyLayout, records: readonly StoredKey[], reached: string): ScriptCall {
  const keys = [layout.meta]
  const args = [reached]
  for (const record of records) {
    keys.push(layout.record(record.id), layout.snapshot(record.id))
    args.push(encodeNumber(record.version), encodeSnapshotTail(record))
  }
  return { keys, args }
}
