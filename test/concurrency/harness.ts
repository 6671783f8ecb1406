/**
 * What the concurrency suites share: one KeyManager configuration (the test process and the worker
 * process must agree on prefix, pepper, clock and quota policy, or their tokens would not verify on the
 * other side), operations as plain JSON so a worker can run them too, their outcomes as plain JSON,
 * and the checks every race ends with.
 */
import {
  KeyManager,
  KeywardenError,
  StoreError,
  type CreateKeyInput,
  type Duration,
  type KeyManagerOptions,
  type KeyStore,
  type LimitsOptions,
  type UpdateKeyInput,
} from '../../src/index.js'

/** Every manager's clock stands still here, so grace periods and idempotency windows never run out mid-race. */
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
export const HOUR = 3_600_000
export const PEPPER = 'concurrency-pepper-0123456789-abcdef'

/**
 * The configuration of every manager in these suites. The quota comes with each create, as
 * `owner: { quota: n }`, so the worker needs no per-test setup; without it an owner is unlimited.
 */
export function managerOptions(store: KeyStore, overrides: Partial<KeyManagerOptions> = {}): KeyManagerOptions {
  return {
    store,
    prefix: 'race',
    environments: ['live'],
    pepper: PEPPER,
    clock: () => T0,
    maxKeysPerOwner: (owner) => (typeof owner['quota'] === 'number' ? owner['quota'] : Infinity),
    ...overrides,
  }
}

/**
 * What a suite configures beyond {@link managerOptions}, as plain JSON: the test process builds its
 * managers from it and hands the same object to its workers (on their command line, next to the store
 * locations), so every KeyManager of a race, in every process, runs one configuration.
 */
export interface ManagerConfig {
  /** The `limits.policies` of every manager (counters live in the key store). */
  readonly policies?: LimitsOptions['policies']
  /**
   * A running clock instead of the frozen T0: it reads T0 at the wall-clock instant `runningFrom`
   * (epoch ms) and then advances with the wall clock. Every process computes it from the same wall
   * clock, so their clocks agree to about a millisecond, and they start at noon UTC, so a day window
   * cannot roll over during a run.
   */
  readonly runningFrom?: number
}

/** The KeyManager options a {@link ManagerConfig} stands for, to pass as `overrides` of managerOptions. */
export function configuredOptions(config: ManagerConfig): Partial<KeyManagerOptions> {
  const { policies, runningFrom } = config
  return {
    ...(policies === undefined ? {} : { limits: { policies } }),
    ...(runningFrom === undefined ? {} : { clock: () => T0 + (Date.now() - runningFrom) }),
  }
}

/** `count` managers, round-robin over `stores`: several app instances on one backend. */
export function managersOn(stores: readonly KeyStore[], count: number, config: ManagerConfig = {}): KeyManager[] {
  return Array.from({ length: count }, (_, i) => new KeyManager(managerOptions(stores[i % stores.length]!, configuredOptions(config))))
}

/** One compare-and-set the store accepted: the version it replaced and the hashes it wrote. */
export interface AcceptedWrite {
  readonly id: string
  readonly expectedVersion: number
  readonly hash: string
  readonly previousHash: string | null
}

/**
 * Wraps a real store and logs every update it accepted (a spy, not a mock: every call reaches the
 * store). Several wrappers may share one log, so the writes of all managers end up in one history.
 */
export function recordingStore(inner: KeyStore, log: AcceptedWrite[]): KeyStore {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (property !== 'update' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value
      return async (record: Parameters<KeyStore['update']>[0], expectedVersion: number) => {
        const outcome = await (value as KeyStore['update']).call(target, record, expectedVersion)
        if (outcome === 'updated') log.push({ id: record.id, expectedVersion, hash: record.hash, previousHash: record.previousHash })
        return outcome
      }
    },
  })
}

/**
 * Whether the accepted writes of one key form a single chain, as compare-and-set promises: each
 * replaced a different version, the versions follow on from `firstVersion` without a gap, and every
 * rotation (a write that changed the hash) kept as its previous hash the hash of the write just before
 * it. A lost update shows as two writes from one version, or as a rotation whose previous hash is an
 * older one. Answers the first break found, or `null`.
 */
export function chainBreak(log: readonly AcceptedWrite[], id: string, firstVersion: number, firstHash: string): string | null {
  const writes = log.filter((write) => write.id === id).sort((a, b) => a.expectedVersion - b.expectedVersion)
  let hash = firstHash
  for (const [i, write] of writes.entries()) {
    if (write.expectedVersion !== firstVersion + i) return `write ${i} replaced version ${write.expectedVersion}, expected ${firstVersion + i}`
    if (write.hash !== hash && write.previousHash !== null && write.previousHash !== hash) return `rotation at version ${write.expectedVersion} kept an older secret in grace`
    hash = write.hash
  }
  return null
}

/** One call of the public API, as JSON. */
export type Op =
  | { readonly op: 'create'; readonly input: CreateKeyInput }
  | { readonly op: 'rotate'; readonly id: string; readonly gracePeriod?: Duration; readonly idempotencyKey?: string }
  | { readonly op: 'update'; readonly id: string; readonly patch: UpdateKeyInput }
  | { readonly op: 'revoke' | 'disable' | 'enable' | 'delete'; readonly id: string }
  | { readonly op: 'verify'; readonly token: string; readonly cost?: number; readonly consume?: boolean }
  | { readonly op: 'notifyExpiring'; readonly within: Duration }
  | { readonly op: 'flush' }

export type OpName = Op['op']

/**
 * What one call did. A fulfilled create or rotate carries its token (it travels on the worker's stdout,
 * never stderr); a verify carries its answer, a notifyExpiring the keys it announced. A rejection
 * carries the error's class name and `code`, whether it was a KeywardenError at all (`typed`), and for
 * a store or driver error its cause (driver code and message: no secret reaches a store).
 */
export type Outcome =
  | {
      readonly op: OpName
      readonly ok: true
      readonly keyId?: string
      readonly token?: string
      readonly name?: string
      readonly valid?: boolean
      readonly reason?: string
      /** For a verify of a limited key: each rate limit's `remaining` after it, in policy order. */
      readonly remaining?: number[]
      /** For a verify charged credits: the balance after it (refusals included). */
      readonly credits?: number
      /** For notifyExpiring: the keys this call told their owners about. */
      readonly notified?: string[]
    }
  | { readonly op: OpName; readonly ok: false; readonly error: string; readonly code: string | null; readonly typed: boolean; readonly cause?: string }

/** A batch of outcomes and when it ran (wall clock, epoch ms), to show that two sides overlapped. */
export interface Batch {
  readonly outcomes: Outcome[]
  readonly startedAt: number
  readonly finishedAt: number
}

function describeCause(error: unknown): string | undefined {
  const cause = error instanceof StoreError ? error.cause : error instanceof KeywardenError ? undefined : error
  if (cause === undefined) return undefined
  const code = typeof cause === 'object' && cause !== null ? ((cause as { code?: unknown }).code ?? (cause as { errno?: unknown }).errno) : undefined
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
  return `${code === undefined ? '' : `[${String(code)}] `}${text}`.slice(0, 300)
}

function failure(op: OpName, error: unknown): Outcome {
  return {
    op,
    ok: false,
    error: error instanceof Error ? error.name : typeof error,
    code: error instanceof KeywardenError ? error.code : null,
    typed: error instanceof KeywardenError,
    cause: describeCause(error),
  }
}

/** Runs one operation and reports what happened; never rejects. */
export async function runOp(keys: KeyManager, op: Op): Promise<Outcome> {
  try {
    switch (op.op) {
      case 'create': {
        const { key, token } = await keys.create(op.input)
        return { op: op.op, ok: true, keyId: key.id, token, name: key.name }
      }
      case 'rotate': {
        const options = { ...(op.gracePeriod === undefined ? {} : { gracePeriod: op.gracePeriod }), ...(op.idempotencyKey === undefined ? {} : { idempotencyKey: op.idempotencyKey }) }
        const { key, token } = await keys.rotate(op.id, options)
        return { op: op.op, ok: true, keyId: key.id, token }
      }
      case 'update':
        return { op: op.op, ok: true, keyId: (await keys.update(op.id, op.patch)).id }
      case 'revoke':
      case 'disable':
      case 'enable':
        return { op: op.op, ok: true, keyId: (await keys[op.op](op.id)).id }
      case 'delete':
        await keys.delete(op.id)
        return { op: op.op, ok: true, keyId: op.id }
      case 'verify': {
        const options = op.cost === undefined && op.consume === undefined ? undefined : { ...(op.cost === undefined ? {} : { cost: op.cost }), ...(op.consume === undefined ? {} : { consume: op.consume }) }
        const result = await keys.verify(op.token, options)
        // The usage a verify reports, when it has any: the limits after it and the balance it left.
        const limits = 'limits' in result && result.limits.length > 0 ? { remaining: result.limits.map((limit) => limit.remaining) } : {}
        const balance = 'credits' in result && result.credits != null ? { credits: result.credits.remaining } : {}
        return result.valid ? { op: op.op, ok: true, valid: true, ...limits, ...balance } : { op: op.op, ok: true, valid: false, reason: result.reason, ...limits, ...balance }
      }
      case 'flush':
        await keys.flush()
        return { op: op.op, ok: true }
      case 'notifyExpiring': {
        const { notified, failed } = await keys.notifyExpiring({ within: op.within, notify: () => {} })
        if (failed.length > 0) throw new Error('notify never throws here, yet notifyExpiring reported failures')
        return { op: op.op, ok: true, notified: notified.map((key) => key.id) }
      }
    }
  } catch (error) {
    return failure(op.op, error)
  }
}

/**
 * Starts every operation at once, spread round-robin over the managers, and waits for all of them.
 * All calls are issued before the first one can complete, so they really are in flight together.
 */
export async function runAll(managers: readonly KeyManager[], ops: readonly Op[]): Promise<Batch> {
  const startedAt = Date.now()
  const outcomes = await Promise.all(ops.map((op, i) => runOp(managers[i % managers.length]!, op)))
  return { outcomes, startedAt, finishedAt: Date.now() }
}

/**
 * Waits until the wall clock reads `at` (epoch ms): a timer to a few milliseconds before, then a short
 * spin, so two processes given the same instant start within about a millisecond of each other
 * (a timer alone fires several milliseconds late on a busy machine).
 */
export async function waitUntil(at: number): Promise<void> {
  const early = at - Date.now() - 4
  if (early > 0) await new Promise((resolve) => setTimeout(resolve, early))
  while (Date.now() < at) {
    // spin
  }
}

/** A deterministic shuffle (so a failure can be rerun as it was), mixing operations of different kinds. */
export function interleave<T>(items: readonly T[], seed = 1): T[] {
  const out = [...items]
  let state = seed
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
    const j = state % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** `count` copies of `make(i)`. */
export function times<T>(count: number, make: (i: number) => T): T[] {
  return Array.from({ length: count }, (_, i) => make(i))
}

export function fulfilled(outcomes: readonly Outcome[], op?: OpName): Extract<Outcome, { ok: true }>[] {
  return outcomes.filter((outcome): outcome is Extract<Outcome, { ok: true }> => outcome.ok && (op === undefined || outcome.op === op))
}

export function rejected(outcomes: readonly Outcome[], op?: OpName): Extract<Outcome, { ok: false }>[] {
  return outcomes.filter((outcome): outcome is Extract<Outcome, { ok: false }> => !outcome.ok && (op === undefined || outcome.op === op))
}

/** The tokens of fulfilled creates and rotations. */
export function tokensOf(outcomes: readonly Outcome[], op: 'create' | 'rotate'): string[] {
  return fulfilled(outcomes, op).map((outcome) => outcome.token!)
}

/**
 * The calls that failed otherwise than this race allows: with anything but a KeywardenError whose code
 * is listed for its operation. A raw driver error, a StoreError (a deadlock or busy database that
 * escaped the store's retries) or a code the race should not produce all count; so does any failed
 * verify. The caller expects the list to be empty.
 */
export function unexpectedErrors(outcomes: readonly Outcome[], allowed: Partial<Record<OpName, readonly string[]>>): Outcome[] {
  return rejected(outcomes).filter((outcome) => !outcome.typed || !(allowed[outcome.op] ?? []).includes(outcome.code ?? ''))
}

/** How many of `tokens` verify now, through `keys`. */
export async function countValid(keys: KeyManager, tokens: readonly string[]): Promise<number> {
  const results = await Promise.all(tokens.map((token) => keys.verify(token)))
  return results.filter((result) => result.valid).length
}

/** The stored version of a key (each successful change adds exactly one), or `null` when it is gone. */
export async function versionOf(store: KeyStore, id: string): Promise<number | null> {
  return (await store.get(id))?.version ?? null
}

/** Closes managers (flushing their buffered `lastUsedAt` writes) before the store goes away. */
export async function closeAll(managers: readonly KeyManager[]): Promise<void> {
  await Promise.all(managers.map((keys) => keys.close()))
}
