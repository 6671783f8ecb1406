/**
 * The audit page script: reads a range of an audit index and the entries it names in one step, so a
 * page costs one round trip; and the builder of its KEYS and ARGV. It writes nothing.
 */
import type { SendCommand } from '../client.js'
import { readTexts } from '../replies.js'
import { runScript } from './run-script.js'
import { defineScript } from './script.js'

/**
 * KEYS: 1 an audit index, 2 the entries hash.
 * ARGV: 1 'desc' (newest first, ZREVRANGEBYLEX from ARGV[2] down to ARGV[3]) or 'asc' (ZRANGEBYLEX from
 * ARGV[2] up to ARGV[3]), 2 and 3 lexicographic bounds, 4 the most members to read.
 * Answers member, JSON pairs; the JSON is nil for an entry pruned since it was indexed.
 */
export const AUDIT_PAGE = defineScript(`
local command = 'ZRANGEBYLEX'
if ARGV[1] == 'desc' then command = 'ZREVRANGEBYLEX' end
local members = redis.call(command, KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local out = {}
if #members == 0 then return out end
local fields = {}
for i, member in ipairs(members) do fields[i] = string.sub(member, 18) end
local entries = redis.call('HMGET', KEYS[2], unpack(fields))
for i, member in ipairs(members) do
  out[2 * i - 1] = member
  out[2 * i] = entries[i]
end
return out
`)

/** One member of a page and its entry's JSON (`null` once pruned). */
export interface AuditPageRow {
  readonly member: string
  readonly json: string | null
}

/** Up to `count` members of `index` between the bounds, in `direction`, with their entries' JSON. */
export async function readAuditPage(
  send: SendCommand,
  index: string,
  entries: string,
  direction: 'asc' | 'desc',
  start: string,
  end: string,
  count: number,
): Promise<AuditPageRow[]> {
  const values = readTexts(await runScript(send, AUDIT_PAGE, { keys: [index, entries], args: [direction, start, end, String(count)] }))
  const rows: AuditPageRow[] = []
  for (let i = 0; i + 1 < values.length; i += 2) {
    const member = values[i]
    if (member != null) rows.push({ member, json: values[i + 1] ?? null })
  }
  return rows
}
