/**
 * The KeyStore conformance suite: `import { describeKeyStore } from 'keywarden/testing'`. Every built-in
 * store passes it; a store of your own proves the same promises in a few lines, under vitest, jest or
 * node:test (pass `describe`, `it` and `expect`; vitest and jest are found on their own).
 *
 * @example
 * ```ts
 * import { MemoryStore } from 'keywarden/adapters/memory'
 * import { describeKeyStore } from 'keywarden/testing'
 *
 * // my-store.test.ts, run by vitest or jest: a fresh store for each test.
 * describeKeyStore('my store', () => new MemoryStore())
 * ```
 *
 * @module keywarden/testing
 */
export { describeKeyStore, type DescribeKeyStoreOptions } from './describe-key-store.js'
export type { RunnerAssertion, RunnerDescribe, RunnerExpect, RunnerIt, RunnerMatchers, TestRunner } from './runner.js'
