/**
 * The fetch script: reads a batch of record hashes in one step, so a batch never mixes two versions
 * of a record; and the builder of its KEYS. It writes nothing, so it needs no input checks.
 */
import type { StoredKey } from '../../../src/store.js'
import type { SendCommand } from '../client.js'
import { decodeRecord, READ_FIELDS } from '../record-codec.js'
import { readTexts } from '../replies.js'
import { runScript } from './run-script.js'
import { defineScript, type ScriptCall } from './script.js'

/** KEYS: record hashes. Answers the four {@link READ_FIELDS} per key, nil when absent. */
export const FETCH = defineScript(`
local out = {}
for i = 1, #KEYS do
  local values = redis.call('HMGET', KEYS[i], 'fixed', 'doc', 'version', 'lastUsedAt')
  for j = 1, 4 do out[#out + 1] = values[j] end
end
return out
`)

export function fetchCall(recordKeys: readonly string[]): ScriptCall {
  return { keys: recordKeys, args: [] }
}

/** The records at `recordKeys`, in the same order, `null` for those that do not exist. */
export async function fetchRecords(send: SendCommand, recordKeys: readonly string[]): Promise<(StoredKey | null)[]> {
  if (recordKeys.length === 0) return []
  const values = readTexts(await runScript(send, FETCH, fetchCall(recordKeys)))
  const width = READ_FIELDS.length
  return recordKeys.map((_, i) => decodeRecord(values.slice(i * width, i * width + width)))
}

/** A record as its hash holds it, with its `fixed` field raw (scripts compare it as a string). */
export interface FetchedRecord {
  readonly record: StoredKey
  readonly fixed: string
}

/** The records at `recordKeys` with their raw `fixed` fields, in the same order, `null` for those that do not exist. */
export async function fetchRecordsWithFixed(send: SendCommand, recordKeys: readonly string[]): Promise<(FetchedRecord | null)[]> {
  if (recordKeys.length === 0) return []
  const values = readTexts(await runScript(send, FETCH, fetchCall(recordKeys)))
  const width = READ_FIELDS.length
  return recordKeys.map((_, i) => {
    const fields = values.slice(i * width, i * width + width)
    const record = decodeRecord(fields)
    return record === null ? null : { record, fixed: fields[0]! }
  })
}
