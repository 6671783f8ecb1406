/**
 * The adjust-credits script: a {@link CreditAdjustment} as `applyCreditAdjustment` computes it (refill
 * first, then set or add, never below 0), in one atomic step; and the builder of its KEYS and ARGV.
 */
import type { CreditAdjustment, CreditsAdjusted } from '../../../src/limits/usage-store.js'
import type { SendCommand } from '../client.js'
import type { KeyLayout } from '../keys.js'
import { encodeNumber } from '../record-codec.js'
import { readNumber, readTexts } from '../replies.js'
import { runScript } from './run-script.js'
import { defineScript, type ScriptCall } from './script.js'
import { USAGE_LUA } from './usage-lua.js'

/**
 * KEYS: 1 the balance.
 * ARGV: 1 initial, 2 refill amount or '', 3 refill period start or '', 4 'set' or 'add', 5 amount.
 * Answers previous and remaining as `%.17g` text.
 */
export const ADJUST_CREDITS = defineScript(`${USAGE_LUA}
expect_counts(1, 5)
expect_type(1, 'hash', 'credit balance')
local initial = integer(1, 'initial balance')
local refill = read_refill(2, 'pool')
local mode = ARGV[4]
if mode ~= 'set' and mode ~= 'add' then reject('ERR', 'the mode is not set or add') end
local amount = integer(5, 'amount')

local stored = read_balance(1)
local balance = current_credits(initial, refill, stored)
local remaining
if mode == 'set' then remaining = math.max(0, amount) else remaining = math.max(0, balance.remaining + amount) end
write_balance(1, { remaining = remaining, refilledAt = balance.refilledAt })
local previous = initial
if stored ~= nil then previous = stored.remaining end
return { exact(previous), exact(remaining) }
`)

/** KEYS and ARGV of {@link ADJUST_CREDITS}. */
export function adjustCreditsCall(layout: KeyLayout, change: CreditAdjustment): ScriptCall {
  const { pool } = change
  return {
    keys: [layout.balance(pool.id)],
    args: [
      encodeNumber(pool.initial),
      pool.refill === null ? '' : encodeNumber(pool.refill.amount),
      pool.refill === null ? '' : encodeNumber(pool.refill.periodStart),
      change.mode,
      encodeNumber(change.amount),
    ],
  }
}

/** Runs {@link ADJUST_CREDITS} for `change`. */
export async function adjustCredits(send: SendCommand, layout: KeyLayout, change: CreditAdjustment): Promise<CreditsAdjusted> {
  const reply = readTexts(await runScript(send, ADJUST_CREDITS, adjustCreditsCall(layout, change)))
  if (reply.length !== 2) throw new Error('Unexpected Redis reply: expected 2 values')
  return { previous: readNumber(reply[0]), remaining: readNumber(reply[1]) }
}
