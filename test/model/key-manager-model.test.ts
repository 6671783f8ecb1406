/**
 * Model-based tests: random sequences of create / verify / update / enable / disable / revoke / delete /
 * rotate (plain and idempotent), credits calls (get / add / set) and clock steps run against a real
 * KeyManager with rate limits and credits (`LIMITS` in commands.ts) on every store, and against the
 * reference model in reference-model.ts. Every verify's answer is predicted, usage refusals and limit
 * states included. After every command, verify (with `consume: false`) of every token ever issued must
 * agree with the model, and no owner may hold more non-revoked keys within a tenant than the quota.
 * Each store runs once without and once with the verify cache (without it, stores that implement
 * `consumeIfCurrent`, memory and Redis today, read and charge recently verified keys in one round trip).
 *
 * A failure prints the seed, the path and the replay path, with the command line that replays it:
 *   KEYWARDEN_MODEL_SEED=<seed> KEYWARDEN_MODEL_PATH=<path> KEYWARDEN_MODEL_REPLAY_PATH=<replayPath> \
 *     npx vitest run test/model -t '<test name>'
 * KEYWARDEN_MODEL_SEED alone reruns the same sequences; KEYWARDEN_MODEL_RUNS=<n> sets the number of
 * runs per store and variant (e.g. 2000 for a long soak; the time budget is lifted then).
 * KEYWARDEN_MODEL_STATS=1 prints how often each outcome (refusal, replay, verify reason) was reached.
 */
import fc from 'fast-check'
import { afterAll, describe, it } from 'vitest'
import type { KeyManagerOptions } from '../../src/index.js'
import { BACKENDS, type Backend } from '../support/backends.js'
import { outcomes } from './commands.js'
import { modelRunProperty } from './model-property.js'
import { optionalInteger } from '../support/env.js'
/** Runs per variant: many in memory, fewer where every call is a round trip to a server. */
const DEFAULT_RUNS: Record<Backend['name'], { plain: number; cached: number }> = {
  memory: { plain: 100, cached: 50 },
  redis: { plain: 20, cached: 10 },
  postgres: { plain: 15, cached: 8 },
  mariadb: { plain: 15, cached: 8 },
  sqlite: { plain: 25, cached: 12 },
}
/** Generation and shrinking stop after this, so a slow failure still prints its seed before the test timeout. */
const TIME_BUDGET_MS = 100_000

const replay = {
  seed: optionalInteger('KEYWARDEN_MODEL_SEED'),
  path: process.env.KEYWARDEN_MODEL_PATH || undefined,
  replayPath: process.env.KEYWARDEN_MODEL_REPLAY_PATH || undefined,
  runs: optionalInteger('KEYWARDEN_MODEL_RUNS'),
}
if (replay.path !== undefined && replay.seed === undefined) throw new Error('KEYWARDEN_MODEL_PATH needs KEYWARDEN_MODEL_SEED too')

const VARIANTS = [
  { name: 'without cache', runs: 'plain', options: {} },
  { name: 'with cache', runs: 'cached', options: { cache: { ttl: '10s' } } },
] as const satisfies readonly { name: string; runs: 'plain' | 'cached'; options: Partial<KeyManagerOptions> }[]

const gates = await Promise.all(BACKENDS.map((backend) => backend.gate()))

for (const [index, backend] of BACKENDS.entries()) {
  const suite = `model-based: ${backend.name}`
  describe.skipIf(!gates[index]!.available)(suite, () => {
    afterAll(() => backend.close())

    for (const variant of VARIANTS) {
      it(
        variant.name,
        async () => {
          const property = modelRunProperty(() => backend.open(), variant.options, replay.replayPath)
          const details = await fc.check(property, {
            numRuns: replay.runs ?? DEFAULT_RUNS[backend.name][variant.runs],
            ...(replay.seed === undefined ? {} : { seed: replay.seed }),
            ...(replay.path === undefined ? {} : { path: replay.path }),
            ...(replay.runs === undefined ? { interruptAfterTimeLimit: TIME_BUDGET_MS } : {}),
            verbose: 1,
          })
          if (details.failed) throw new Error(failureReport(`${suite} ${variant.name}`, details))
          if (process.env.KEYWARDEN_MODEL_STATS) {
            console.log(`[model] ${suite} ${variant.name}, outcomes over ${details.numRuns} runs:\n${[...outcomes].sort().map(([outcome, count]) => `  ${outcome}: ${count}`).join('\n')}`)
            outcomes.clear()
          }
          if (details.interrupted) console.warn(`[model] ${suite} ${variant.name}: time budget reached after ${details.numRuns} runs (seed ${details.seed})`)
        },
        replay.runs === undefined ? TIME_BUDGET_MS + 60_000 : 24 * 3_600_000,
      )
    }
  })
}

/** fast-check's report, preceded by the command line that replays the failure. */
function failureReport<Ts extends [unknown]>(testName: string, details: fc.RunDetails<Ts>): string {
  const replayPath = /replayPath="([^"]*)"/.exec(String(details.counterexample?.[0]))?.[1]
  const command = [
    `KEYWARDEN_MODEL_SEED=${details.seed}`,
    `KEYWARDEN_MODEL_PATH=${JSON.stringify(details.counterexamplePath ?? '')}`,
    ...(replayPath === undefined ? [] : [`KEYWARDEN_MODEL_REPLAY_PATH=${JSON.stringify(replayPath)}`]),
    `npx vitest run test/model -t ${JSON.stringify(testName)}`,
  ].join(' ')
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
  return `Model disagreement in "${testName}": ${error}\nReplay with:\n  ${command}\n\n${fc.defaultReportMessage(details) ?? ''}`
}
