/**
 * The read of a record that has no verify snapshot: its hash, and whether the namespace says every
 * record has one (then a missing snapshot means a missing record), in one step. It writes nothing.
 */
import type { StoredKey } from '../../../src/store.js'
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { decodeRecord, READ_FIELDS } from '../record-codec.js'
import { readTexts } from '../replies.js'
import { runScript } from './run-script.js'
import { defineScript } from './script.js'

/** KEYS: 1 meta, 2 record. Answers the meta `snapshots` field, then the four {@link READ_FIELDS}. */
export const READ_UNSNAPSHOTTED = defineScript(`
local out = redis.call('HMGET', KEYS[2], 'fixed', 'doc', 'version', 'lastUsedAt')
table.insert(out, 1, redis.call('HGET', KEYS[1], 'snapshots'))
return out
`)

/** What {@link readUnsnapshotted} found. */
export interface UnsnapshottedRead {
  /** The record as its hash holds it (a 0.1.0 record not yet migrated), or `null`. */
  readonly record: StoredKey | null
  /** Whether the namespace has a snapshot for every record (migrated, or created by this version). */
  readonly snapshotsComplete: boolean
}

/** Runs {@link READ_UNSNAPSHOTTED} for the record with ID `id`. */
export async function readUnsnapshotted(send: SendCommand, layout: KeyLayout, id: string): Promise<UnsnapshottedRead> {
  const [snapshots, ...fields] = readTexts(await runScript(send, READ_UNSNAPSHOTTED, { keys: [layout.meta, layout.record(id)], args: [] }))
  if (fields.length !== READ_FIELDS.length) throw new Error('Unexpected Redis reply: expected the meta field and the record fields')
  return { record: decodeRecord(fields), snapshotsComplete: snapshots === 'complete' }
}
