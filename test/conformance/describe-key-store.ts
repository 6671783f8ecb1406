/**
 * The conformance suite as this repository's adapter tests run it: the shipped `keywarden/testing` suite
 * (src/testing/) with vitest's functions and the leak canary's dump of each test's store before its
 * teardown. The signature is the shipped one without the runner options.
 */
import { describe, expect, it } from 'vitest'
import type { KeyStore } from '../../src/index.js'
import { describeKeyStore as describeShippedSuite, type DescribeKeyStoreOptions as ShippedOptions } from '../../src/testing/index.js'
import { recordStoreDump } from '../support/canary/dump.js'

/** Options of {@link describeKeyStore}: which cases to skip and how to tear each test's store down. */
export type DescribeKeyStoreOptions<S extends KeyStore> = Pick<ShippedOptions<S>, 'skip' | 'teardown'>

/**
 * Registers `KeyStore conformance: <name>` with vitest: one test per contract promise.
 *
 * @example
 * ```ts
 * describeKeyStore('memory', () => new MemoryStore())
 * ```
 */
export function describeKeyStore<S extends KeyStore>(name: string, createStore: () => Promise<S> | S, options: DescribeKeyStoreOptions<S> = {}): void {
  describeShippedSuite(name, createStore, {
    ...options,
    describe,
    it,
    expect,
    // For the leak canary: what the store holds, raw, before the teardown drops it.
    beforeTeardown: (store, testName) => recordStoreDump(store, `conformance ${name}: ${testName}`),
  })
}
