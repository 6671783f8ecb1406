/**
 * The test runner the conformance suite registers its tests with: its types (only what the suite calls,
 * structural, so vitest's and jest's `describe`/`it`/`expect` and node:test with the `expect` package all
 * fit) and how the suite finds one when the caller passes none.
 */
import { ConfigError, type ValidationIssue } from '../errors.js'

/**
 * The matchers the conformance suite uses, a subset that vitest's and jest's `expect` both provide.
 *
 * @example
 * ```ts
 * import type { RunnerMatchers } from 'keywarden/testing'
 * import { expect } from 'vitest'
 *
 * const matchers: RunnerMatchers = expect(await store.get(keyId))
 * matchers.toBeNull()
 * ```
 */
export interface RunnerMatchers {
  /** `Object.is` equality. */
  toBe(expected: unknown): unknown
  /** Recursive equality of values. */
  toEqual(expected: unknown): unknown
  /** The actual value's properties include these, recursively. */
  toMatchObject(expected: object): unknown
  /** The value is `null`. */
  toBeNull(): unknown
  /** The value is not `undefined`. */
  toBeDefined(): unknown
  /** The value is `undefined`. */
  toBeUndefined(): unknown
  /** The value is an instance of this class. */
  toBeInstanceOf(expected: unknown): unknown
  /** The array (or string) holds this item. */
  toContain(expected: unknown): unknown
  /** The value's `length` is this. */
  toHaveLength(expected: number): unknown
  /** The number is smaller than this. */
  toBeLessThan(expected: number): unknown
  /** The number is at most this. */
  toBeLessThanOrEqual(expected: number): unknown
  /** The number is at least this. */
  toBeGreaterThanOrEqual(expected: number): unknown
}

/**
 * What {@link RunnerExpect} returns: the matchers, and the same matchers negated under `not`.
 *
 * @example
 * ```ts
 * import type { RunnerAssertion } from 'keywarden/testing'
 * import { expect } from 'vitest'
 *
 * const assertion: RunnerAssertion = expect(await store.get(keyId))
 * assertion.not.toBeNull()
 * ```
 */
export interface RunnerAssertion extends RunnerMatchers {
  /** The matchers, negated. */
  readonly not: RunnerMatchers
}

/**
 * A test runner's `expect`: vitest's, jest's global one, or the `expect` package (jest's, for node:test).
 *
 * @example
 * ```ts
 * import type { RunnerExpect } from 'keywarden/testing'
 * import { expect } from 'vitest'
 *
 * const assert: RunnerExpect = expect
 * assert(await store.get(keyId)).not.toBeNull()
 * ```
 */
export interface RunnerExpect {
  /** Starts an assertion on `actual`. (The suite never passes a second argument: jest's expect refuses one.) */
  (actual: unknown): RunnerAssertion
}

/**
 * A test runner's `describe`: groups the tests registered while `body` runs under `name`.
 *
 * @example
 * ```ts
 * import { describe } from 'node:test'
 * import type { RunnerDescribe } from 'keywarden/testing'
 *
 * const group: RunnerDescribe = describe
 * ```
 */
export interface RunnerDescribe {
  /** Registers the group `name`; `body` registers its tests, synchronously. */
  (name: string, body: () => void): unknown
}

/**
 * A test runner's `it` (or `test`), with `it.skip` for the tests a store opts out of.
 *
 * @example
 * ```ts
 * import { it } from 'node:test'
 * import type { RunnerIt } from 'keywarden/testing'
 *
 * const test: RunnerIt = it
 * ```
 */
export interface RunnerIt {
  /** Registers one test; a rejected `body` fails it. */
  (name: string, body: () => Promise<void>): unknown
  /** Registers one test that is shown as skipped and never run. */
  skip(name: string, body: () => void): unknown
}

/**
 * The three functions of a test runner the conformance suite needs.
 *
 * @example
 * ```ts
 * import type { TestRunner } from 'keywarden/testing'
 * import { describe, expect, it } from 'vitest'
 *
 * const vitest: TestRunner = { describe, it, expect }
 * ```
 */
export interface TestRunner {
  /** Groups the suite's tests. */
  readonly describe: RunnerDescribe
  /** Registers each test. */
  readonly it: RunnerIt
  /** Asserts inside each test. */
  readonly expect: RunnerExpect
}

const RUNNER_FUNCTIONS = ['describe', 'it', 'expect'] as const

type RunnerFunctionName = (typeof RUNNER_FUNCTIONS)[number]

const NO_RUNNER =
  'not passed, and no test runner provides one (no global describe/it/expect, not inside vitest): ' +
  "pass your runner's functions, describeKeyStore(name, createStore, { describe, it, expect }), " +
  "e.g. node:test's describe and it with expect from the expect package"

/** vitest puts its module namespace here in every test worker (vitest/dist/chunks/base.*.js). */
const VITEST_INDEX = '__vitest_index__'

function lookUp(holder: unknown, name: RunnerFunctionName): unknown {
  if (typeof holder !== 'object' || holder === null) return undefined
  const value = (holder as Record<string, unknown>)[name]
  return typeof value === 'function' ? value : undefined
}

/**
 * Each function from `given`, else a global one (jest, vitest with `globals: true`), else from vitest's
 * own module when the suite runs inside vitest. Throws a ConfigError naming what to pass otherwise.
 */
export function resolveTestRunner(given: Partial<TestRunner>): TestRunner {
  const vitest = (globalThis as Record<string, unknown>)[VITEST_INDEX]
  const found: Partial<Record<RunnerFunctionName, unknown>> = {}
  const issues: ValidationIssue[] = []
  for (const name of RUNNER_FUNCTIONS) {
    // Something passed that is not a function is a mistake to report, not a reason to look elsewhere.
    if (given[name] !== undefined && typeof given[name] !== 'function') {
      issues.push({ path: [name], message: "must be the test runner's function" })
      continue
    }
    const value = lookUp(given, name) ?? lookUp(globalThis, name) ?? lookUp(vitest, name)
    if (value !== undefined) found[name] = value
    else issues.push({ path: [name], message: issues.some((issue) => issue.message === NO_RUNNER) ? 'not passed either' : NO_RUNNER })
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return found as unknown as TestRunner
}

