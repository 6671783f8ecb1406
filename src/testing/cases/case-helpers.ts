/**
 * What every group of conformance cases shares: how a case is registered, and the small helpers that
 * build queries and fixtures. Preconditions throw a plain Error; the assertions use the runner's expect.
 */
import type { KeyQuery, KeyStore, StoredKey } from '../../store.js'
import { makeRecord, T0, type MutableStoredKey } from '../records.js'
import type { RunnerExpect } from '../runner.js'

/** Registers one case: a fresh store for each run, torn down afterwards. */
export type Register = (title: string, body: (store: KeyStore) => Promise<void>) => void

/** What each group of cases is given. */
export interface SuiteContext {
  readonly test: Register
  readonly expect: RunnerExpect
}

export function query(overrides: Partial<KeyQuery> = {}): KeyQuery {
  return { now: T0, order: 'asc', limit: 1000, ...overrides }
}

export async function listIds(store: KeyStore, overrides: Partial<KeyQuery> = {}): Promise<string[]> {
  return (await store.list(query(overrides))).map((record) => record.id)
}

/** Inserts records one by one without a quota; a record that is not inserted fails the case's setup. */
export async function insertAll(store: KeyStore, records: readonly StoredKey[]): Promise<void> {
  for (const record of records) {
    const outcome = await store.insert(record, null)
    if (outcome !== 'inserted') throw new Error(`setup: insert ${record.id} returned ${outcome}, expected inserted`)
  }
}

export function count<T>(values: readonly T[], value: T): number {
  return values.filter((item) => item === value).length
}

/** The next version of `record` as a caller builds it: new fields, `version + 1`, a later updatedAt. */
export function nextVersion(record: StoredKey, changes: Partial<StoredKey> = {}): MutableStoredKey {
  return makeRecord({ ...record, version: record.version + 1, updatedAt: record.updatedAt + 1000, ...changes })
}

/** Records with the default fields and these ids; createdAt is T0 + index unless given. */
export function recordsWithIds(ids: readonly string[], changes: Partial<StoredKey> = {}): MutableStoredKey[] {
  return ids.map((id, index) => makeRecord({ id, createdAt: T0 + index, updatedAt: T0 + index, ...changes }))
}

export function ownedBy(ownerId: string | null, ids: readonly string[], changes: Partial<StoredKey> = {}): MutableStoredKey[] {
  return recordsWithIds(ids, { ownerId, ...changes })
}
