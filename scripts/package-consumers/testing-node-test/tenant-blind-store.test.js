// @ts-check
// A deliberately broken store: its quota counts the owner's keys in every tenant (as if tenantId were not
// part of the owner). The suite must fail it, in the tenant-quota cases and nowhere else.
import { describe, it } from 'node:test'
import { expect } from 'expect'
import { describeKeyStore } from 'keywarden/testing'
import { MapStore } from './map-store.js'

class TenantBlindStore extends MapStore {
  /** @param {import('keywarden').StoredKey} record @param {import('keywarden').QuotaCheck} quota */
  countsTowards(record, quota) {
    return record.ownerId === quota.ownerId && record.revokedAt === null
  }
}

describeKeyStore('tenant-blind store', () => new TenantBlindStore(), { describe, it, expect, usage: false, audit: false })
