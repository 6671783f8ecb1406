// @ts-check
// What the store's author adds to run the conformance suite: node:test's describe and it, jest's expect.
import { describe, it } from 'node:test'
import { expect } from 'expect'
import { describeKeyStore } from 'keywarden/testing'
import { MapStore } from './map-store.js'

describeKeyStore('map store', () => new MapStore(), {
  describe,
  it,
  expect,
  // Skipped to prove skip works from the tarball; the Map store passes it too.
  skip: ['touch: parallel touches keep the latest instant'],
  // A store of keys only: its KeyManagers keep rate counters elsewhere (limits.counters).
  usage: false,
  // Nor does it keep an audit trail (no listAudit / pruneAudit).
  audit: false,
})
