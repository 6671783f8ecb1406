/**
 * The adjust-credits script: a {@link CreditAdjustment} as `applyCreditAdjustment` computes it (refill
 * first, then set or add, never below 0 nor past `Number.MAX_SAFE_INTEGER`), in one atomic step; and
 * the builder of its KEYS and ARGV.
 */
import type { CreditAdjustment, CreditsAdjusted } from '../../../src/limits/usage-store.js'
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { encodeNumber } from '../record-codec.js'
import { readNumber, readTexts } from '../replies.js'
import { AUDIT_LUA, auditArgs, prepareCreditAudit, type PreparedAudit } from './audit-lua.js'
import { runScript } from './run-script.js'
import { DeclaredKeys, defineScript, type ScriptCall } from './script.js'
import { USAGE_LUA } from './usage-lua.js'

/**
 * KEYS: 1 the balance; then the audit entry's keys, at the positions in its arguments.
 * ARGV: 1 initial, 2 refill amount or '', 3 refill period start or '', 4 'set' or 'add', 5 amount,
 * 6..15 the audit entry (audit-lua.ts) with its JSON lacking `changes`: the script writes it with
 * `,"changes":{"credits":{"from":previous,"to":remaining}}` spliced in before its closing brace, the
 * numbers as the reply spells them, so the entry records exactly the answer.
 * Answers previous and remaining as `%.17g` text.
 */
export const ADJUST_CREDITS = defineScript(`${USAGE_LUA}${AUDIT_LUA}
expect_counts(1, 15)
expect_type(1, 'hash', 'credit balance')
local initial = integer(1, 'initial balance')
local refill = read_refill(2, 'pool')
local mode = ARGV[4]
if mode ~= 'set' and mode ~= 'add' then reject('ERR', 'the mode is not set or add') end
local amount = integer(5, 'amount')
local audit = read_audit(6)
if audit ~= nil and not (#audit.json > 2 and string.sub(audit.json, 1, 1) == '{' and string.sub(audit.json, -1) == '}') then
  reject('ERR', 'the audit entry is not a JSON object with fields')
end

local stored = read_balance(1)
local balance = current_credits(initial, refill, stored)
local remaining
if mode == 'set' then remaining = math.max(0, amount) else remaining = math.max(0, balance.remaining + amount) end
-- As applyCreditAdjustment: never past 2^53 - 1. A sum beyond it may have rounded; the bound is exact.
remaining = math.min(9007199254740991, remaining)
write_balance(1, { remaining = remaining, refilledAt = balance.refilledAt })
local previous = initial
if stored ~= nil then previous = stored.remaining end
local previousText, remainingText = exact(previous), exact(remaining)
if audit ~= nil then
  write_audit(audit, string.sub(audit.json, 1, -2) .. ',"changes":{"credits":{"from":' .. previousText .. ',"to":' .. remainingText .. '}}}')
end
return { previousText, remainingText }
`)

/** KEYS and ARGV of {@link ADJUST_CREDITS}. */
export function adjustCreditsCall(layout: KeyLayout, change: CreditAdjustment, audit: PreparedAudit | null = null): ScriptCall {
  const { pool } = change
  const declared = new DeclaredKeys([layout.balance(pool.id)])
  const args = [
    encodeNumber(pool.initial),
    pool.refill === null ? '' : encodeNumber(pool.refill.amount),
    pool.refill === null ? '' : encodeNumber(pool.refill.periodStart),
    change.mode,
    encodeNumber(change.amount),
    ...auditArgs(layout, declared, audit),
  ]
  return { keys: declared.keys, args }
}

/** Runs {@link ADJUST_CREDITS} for `change`, writing `change.audit` (with its `changes`) if given. */
export async function adjustCredits(send: SendCommand, layout: KeyLayout, change: CreditAdjustment): Promise<CreditsAdjusted> {
  const call = adjustCreditsCall(layout, change, prepareCreditAudit(layout, change.audit))
  const reply = readTexts(await runScript(send, ADJUST_CREDITS, call))
  if (reply.length !== 2) throw new Error('Unexpected Redis reply: expected 2 values')
  return { previous: readNumber(reply[0]), remaining: readNumber(reply[1]) }
}
