/**
 * describeKeyStore: registers the KeyStore conformance suite with a test runner, one test per promise of
 * the contract in src/store.ts, each on a fresh store from the caller's factory, torn down afterwards.
 */
import { ConfigError, type ValidationIssue } from '../errors.js'
import type { KeyStore } from '../store.js'
import { auditTests } from './cases/audit.js'
import { whoDidWhatScenarios } from './cases/who-did-what.js'
import type { Register, SuiteContext } from './cases/case-helpers.js'
import { deleteTests } from './cases/delete.js'
import { insertAndGetTests, isolationTests } from './cases/insert-get.js'
import { keyManagerScenarios } from './cases/key-manager.js'
import { listExpiresWithinTests, listFilterTests, listStatusTests } from './cases/list-filters.js'
import { listOrderTests, listPagingTests } from './cases/list-order.js'
import { quotaTests, tenantQuotaTests } from './cases/quota.js'
import { touchTests } from './cases/touch.js'
import { updateTests } from './cases/update.js'
import { usageTests } from './cases/usage.js'
import { limitsScenarios } from './cases/limits.js'
import { resolveTestRunner, type RunnerDescribe, type RunnerExpect, type RunnerIt } from './runner.js'

/**
 * Options of {@link describeKeyStore}: the test runner's functions (found on their own under jest, vitest
 * and vitest with `globals: true`), the cases to skip, and what to do with each test's store afterwards.
 *
 * @example
 * ```ts
 * import { describe, it } from 'node:test'
 * import type { KeyStore } from 'keywarden'
 * import type { DescribeKeyStoreOptions, RunnerExpect } from 'keywarden/testing'
 *
 * type MyStore = KeyStore & { dropTable(): Promise<void> }
 * declare const expect: RunnerExpect // e.g. from the expect package
 *
 * const options: DescribeKeyStoreOptions<MyStore> = {
 *   describe,
 *   it,
 *   expect,
 *   skip: ['touch: parallel touches keep the latest instant'],
 *   teardown: (store) => store.dropTable(),
 * }
 * ```
 */
export interface DescribeKeyStoreOptions<S extends KeyStore> {
  /** The runner's `describe`. Default: the global one, else vitest's when running inside vitest. */
  readonly describe?: RunnerDescribe
  /** The runner's `it` (or `test`), with `it.skip`. Default: as for `describe`. */
  readonly it?: RunnerIt
  /** The runner's `expect` (vitest's, jest's, or the `expect` package). Default: as for `describe`. */
  readonly expect?: RunnerExpect
  /**
   * Exact names of the cases this store opts out of (the test titles, without the
   * `KeyStore conformance: <name>` group); they show as skipped. A name that matches no case fails the
   * suite, so a typo cannot hide a gap.
   */
  readonly skip?: readonly string[]
  /**
   * Whether to run the usage cases (rate counters and credit balances, see `UsageStore`); default
   * `true`. A store that keeps no counters (because `limits.counters` points elsewhere) passes `false`.
   */
  readonly usage?: boolean
  /**
   * Whether to run the audit cases (the entry written with each change, listing, paging, pruning, see
   * `AuditStore`, and the actor fields of a stored key); default `true`. A store that keeps no audit
   * trail (no `listAudit` / `pruneAudit`) passes `false`; left on, its audit cases fail and say so.
   */
  readonly audit?: boolean
  /** Runs after every test with that test's store; without it, the store's own `close()` runs. */
  readonly teardown?: (store: S) => Promise<void> | void
  /**
   * Runs after every test with that test's store and the case's name, before the teardown: to inspect
   * or dump what the store holds. The teardown runs even when this throws.
   */
  readonly beforeTeardown?: (store: S, testName: string) => Promise<void> | void
}

const CASE_GROUPS: readonly ((context: SuiteContext) => void)[] = [
  insertAndGetTests,
  isolationTests,
  quotaTests,
  tenantQuotaTests,
  updateTests,
  deleteTests,
  touchTests,
  listFilterTests,
  listStatusTests,
  listExpiresWithinTests,
  listOrderTests,
  listPagingTests,
  keyManagerScenarios,
]

/**
 * Registers `KeyStore conformance: <name>`, one test per promise of the {@link keywarden!KeyStore | KeyStore}
 * contract, followed by KeyManager scenarios (quota races, rotation races, expiry to the millisecond)
 * on the same store. Each test calls `createStore` for a fresh, empty store that no other test sees (a
 * new table, namespace or key prefix), and tears it down afterwards. Throws a ConfigError when no test
 * runner is passed or found, and fails the suite when `skip` names no case.
 *
 * @example
 * ```ts
 * import { MemoryStore } from 'keywarden/adapters/memory'
 * import { describeKeyStore } from 'keywarden/testing'
 * import { describe, expect, it } from 'vitest'
 *
 * // Under vitest (or jest) the runner is found on its own; passing it works with any runner.
 * describeKeyStore('memory', () => new MemoryStore(), { describe, it, expect })
 * ```
 */
export function describeKeyStore<S extends KeyStore>(
  name: string,
  createStore: () => Promise<S> | S,
  options: DescribeKeyStoreOptions<S> = {},
): void {
  checkArguments(name, createStore, options)
  const { describe, it, expect } = resolveTestRunner(options)

  describe(`KeyStore conformance: ${name}`, () => {
    const skipped = new Set(options.skip ?? [])
    const registered = new Set<string>()

    const test: Register = (title, body) => {
      if (registered.has(title)) throw new Error(`Duplicate conformance test name: ${title}`)
      registered.add(title)
      if (skipped.has(title)) {
        it.skip(title, () => {})
        return
      }
      it(title, async () => {
        const store = await createStore()
        try {
          await body(store)
        } finally {
          await tearDown(store, title, options)
        }
      })
    }

    for (const cases of CASE_GROUPS) cases({ test, expect })
    if (options.usage !== false) {
      usageTests({ test, expect })
      limitsScenarios({ test, expect })
    }
    if (options.audit !== false) {
      auditTests({ test, expect })
      whoDidWhatScenarios({ test, expect })
    }

    // A misspelt name would silently skip nothing: fail instead.
    const unknown = (options.skip ?? []).flatMap((title, index): ValidationIssue[] =>
      registered.has(title) ? [] : [{ path: ['skip', index], message: 'names no conformance test' }],
    )
    if (unknown.length > 0) throw new ConfigError(unknown)
  })
}

async function tearDown<S extends KeyStore>(store: S, title: string, options: DescribeKeyStoreOptions<S>): Promise<void> {
  try {
    await options.beforeTeardown?.(store, title)
  } finally {
    await (options.teardown ? options.teardown(store) : store.close?.())
  }
}

function checkArguments(name: unknown, createStore: unknown, options: unknown): void {
  const issues: ValidationIssue[] = []
  if (typeof name !== 'string' || name.trim() === '') issues.push({ path: ['name'], message: 'must be a non-empty string' })
  if (typeof createStore !== 'function') issues.push({ path: ['createStore'], message: 'must be a function that returns a fresh store' })
  if (typeof options !== 'object' || options === null) {
    issues.push({ path: ['options'], message: 'must be an object' })
  } else {
    const given = options as Record<string, unknown>
    if (given['skip'] !== undefined && (!Array.isArray(given['skip']) || given['skip'].some((title) => typeof title !== 'string'))) {
      issues.push({ path: ['skip'], message: 'must be an array of test names' })
    }
    for (const flag of ['usage', 'audit']) {
      if (given[flag] !== undefined && typeof given[flag] !== 'boolean') issues.push({ path: [flag], message: 'must be a boolean' })
    }
    for (const hook of ['teardown', 'beforeTeardown']) {
      if (given[hook] !== undefined && typeof given[hook] !== 'function') issues.push({ path: [hook], message: 'must be a function' })
    }
  }
  if (issues.length > 0) throw new ConfigError(issues)
}
