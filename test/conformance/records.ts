/** The conformance suite's record builders (src/testing/records.ts), for the adapter tests' own cases. */
export { makeRecord, makeRichRecord, T0, type MutableStoredKey } from '../../src/testing/records.js'
