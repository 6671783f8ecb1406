/** Assertions shared by the concurrency suites (kept apart from harness.ts, which the worker process loads without vitest). */
import { expect } from 'vitest'
import { unexpectedErrors, type OpName, type Outcome } from './harness.js'

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
