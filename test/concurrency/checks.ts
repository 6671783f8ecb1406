/** Assertions shared by the concurrency suites (kept apart from harness.ts, which the worker process loads without vitest). */
import { expect } from 'vitest'
import { fulfilled, interleave, rejected, times, unexpectedErrors, type Op, type OpName, type Outcome } from './harness.js'

/** Every call either succeeded or failed with a KeywardenError whose code `allowed` lists for its operation. */
export function expectOnlyTypedErrors(outcomes: readonly Outcome[], allowed: Partial<Record<OpName, readonly string[]>>): void {
  expect(unexpectedErrors(outcomes, allowed), 'calls that failed with an error this race must not produce').toEqual([])
}

/**
 * A store dump without the audit trail's Redis keys, which keep a deleted key's history on purpose
 * (SQL dumps here hold the keys table only).
 */
export function withoutAuditTrail(dump: string): string {
  return dump
    .split('\n')
    .filter((line) => !line.includes(':audit:'))
    .join('\n')
}

/** The delete race run in process and on Redis Cluster: 4 deletes against updates, rotations, revokes, disables and verifies of one key. */
export function deleteRaceOps(keyId: string, token: string): Op[] {
  return interleave([
    ...times(4, (): Op => ({ op: 'delete', id: keyId })),
    ...times(10, (i): Op => ({ op: 'update', id: keyId, patch: { name: `late-${i}` } })),
    ...times(6, (): Op => ({ op: 'rotate', id: keyId, gracePeriod: '1h' })),
    ...times(3, (): Op => ({ op: 'revoke', id: keyId })),
    ...times(3, (): Op => ({ op: 'disable', id: keyId })),
    ...times(6, (): Op => ({ op: 'verify', token })),
  ])
}

/** The only errors the delete race may produce: the losers find the key gone (or revoked). */
export function expectDeleteRaceErrors(outcomes: readonly Outcome[]): void {
  const gone = ['key_not_found', 'conflict']
  expectOnlyTypedErrors(outcomes, { delete: ['key_not_found'], update: [...gone, 'key_revoked'], rotate: [...gone, 'key_revoked'], revoke: gone, disable: [...gone, 'key_revoked'] })
}

/** The quota race: three owners, 15 creates each, against quotas of 1, 2 and 5. */
export const QUOTA_RACE_LIMITS: Readonly<Record<string, number>> = { solo: 1, pair: 2, five: 5 }

export function quotaRaceOps(): Op[] {
  return interleave(Object.entries(QUOTA_RACE_LIMITS).flatMap(([ownerId, quota]) => times(15, (i): Op => ({ op: 'create', input: { name: `${ownerId}-${i}`, ownerId, owner: { quota } } }))))
}

/** Each owner got exactly its quota and the rest `quota_exceeded`; returns each owner's outcomes. */
export function expectQuotaRace(outcomes: readonly Outcome[], ops: readonly Op[]): Map<string, Outcome[]> {
  expectOnlyTypedErrors(outcomes, { create: ['quota_exceeded'] })
  const byOwner = new Map<string, Outcome[]>()
  for (const [ownerId, quota] of Object.entries(QUOTA_RACE_LIMITS)) {
    const mine = outcomes.filter((_, i) => (ops[i] as Extract<Op, { op: 'create' }>).input.ownerId === ownerId)
    expect(fulfilled(mine), ownerId).toHaveLength(quota)
    expect(rejected(mine), ownerId).toHaveLength(15 - quota)
    byOwner.set(ownerId, mine)
  }
  return byOwner
}
