/**
 * The lag guard of a PostgresStore with a read replica: it decides, per verify read, whether the
 * replica is fresh enough to answer, from periodic comparisons of WAL positions.
 *
 * Each check asks the primary for `pg_current_wal_lsn()`, noting the instant just before it asked,
 * then the replica for `pg_last_wal_replay_lsn()`. Once the replica has replayed a position the
 * primary reported, every transaction acknowledged before that position was asked for is visible on
 * the replica (its commit record lies at or before it). So the guard keeps `caughtUpTo`: the instant
 * of the newest such sample. A read at instant `now` may use the replica only while
 * `now - caughtUpTo <= maxLagMs`: its answer then reflects every write acknowledged more than
 * `maxLagMs` before the read began. Comparing positions (not `pg_last_xact_replay_timestamp()`) keeps
 * an idle primary from looking like lag: with no new WAL, the replica has replayed the latest sample.
 *
 * Instants come from `performance.now()`: monotonic, and never compared with another process's clock.
 */
import { asStoreError } from '../../../src/store-failure.js'
import { within } from '../../invalidation.js'
import type { SqlDriver } from '../shared/seams.js'
import type { PgQueryable } from './store.js'

/** More key IDs than this written since the replica last caught up: count every key as written. */
const MAX_TRACKED_WRITES = 10_000

export interface ReplicaGuardSettings {
  readonly maxLagMs: number
  readonly checkIntervalMs: number
  readonly onError: (error: unknown) => void
}

/** One answer of the primary: every transaction acknowledged before `at` has its commit at or before `lsn`. */
interface Sample {
  /** performance.now() just before the primary was asked. */
  readonly at: number
  readonly lsn: bigint
}

/** `16/B374D848` (pg_lsn as text) as a number of bytes. */
export function parseLsn(text: unknown): bigint | null {
  if (typeof text !== 'string') return null
  const match = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(text)
  return match === null ? null : (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

export class ReplicaGuard {
  readonly #primary: SqlDriver
  readonly #replica: PgQueryable
  readonly #settings: ReplicaGuardSettings
  #started = false
  #closed = false
  #timer: ReturnType<typeof setTimeout> | undefined
  /** Bumped by close(): a check still running when it returns changes nothing. */
  #generation = 0
  /** Primary positions not yet replayed (or the newest replayed one), oldest first. */
  #samples: Sample[] = []
  /** Every write acknowledged before this instant is visible on the replica; `null`: not known. */
  #caughtUpTo: number | null = null
  /** Keys written through the store since the replica last caught up, with the instant each write returned. */
  readonly #written = new Map<string, number>()
  /** Every key counts as written at this instant (after a migration, or too many writes to track). */
  #allWrittenAt = Number.NEGATIVE_INFINITY
  /** Whether the last check or read failed: only the first failure of a run is reported. */
  #failing = false

  constructor(primary: SqlDriver, replica: PgQueryable, settings: ReplicaGuardSettings) {
    this.#primary = primary
    this.#replica = replica
    this.#settings = settings
  }

  /** Whether a verify read of `keyId` starting now may use the replica. Starts the checks on first use. */
  useReplica(keyId: string): boolean {
    this.#start()
    const caughtUpTo = this.#caughtUpTo
    if (caughtUpTo === null || this.#closed) return false
    if (performance.now() - caughtUpTo > this.#settings.maxLagMs) return false
    // A sample taken after a write returned covers it; one taken in the same instant may not.
    if (caughtUpTo <= this.#allWrittenAt) return false
    const written = this.#written.get(keyId)
    return written === undefined || caughtUpTo > written
  }

  /** A write of `keyId` through the store just returned (or failed, and may have committed). */
  noteWrite(keyId: string): void {
    // Before the first check nothing is known, and that check's sample comes after this write.
    if (!this.#started) return
    if (this.#written.size >= MAX_TRACKED_WRITES) {
      this.#written.clear()
      this.#allWrittenAt = performance.now()
      return
    }
    this.#written.delete(keyId)
    this.#written.set(keyId, performance.now())
  }

  /** Every key changed just now (a migration ran). */
  noteWriteOfAll(): void {
    this.#written.clear()
    this.#allWrittenAt = performance.now()
  }

  /** Verify was told `keyId` changed: from now on as if the store had written it. Starts the checks. */
  noteChange(keyId: string): void {
    this.#start()
    this.noteWrite(keyId)
  }

  /** A read on the replica failed: read the primary until a check succeeds. */
  replicaFailed(error: unknown): void {
    this.#caughtUpTo = null
    this.#report(error)
  }

  /** Stops the checks; later reads go to the primary. */
  close(): void {
    this.#closed = true
    this.#generation++
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#caughtUpTo = null
  }

  #start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    this.#schedule(0)
  }

  #schedule(delayMs: number): void {
    const generation = this.#generation
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#check(generation).finally(() => {
        if (!this.#closed && generation === this.#generation) this.#schedule(this.#settings.checkIntervalMs)
      })
    }, delayMs)
    // The checks never keep a process alive.
    this.#timer.unref?.()
  }

  async #check(generation: number): Promise<void> {
    try {
      // A check slower than the bound could never show the replica fresh enough: give up on it then.
      const replayed = await within(this.#compare(generation), this.#settings.maxLagMs, 'the read replica lag check')
      if (generation !== this.#generation) return
      this.#advance(replayed)
      this.#failing = false
    } catch (error) {
      if (generation !== this.#generation) return
      this.#caughtUpTo = null
      this.#report(asStoreError('replicaLagCheck', error))
    }
  }

  /** Samples the primary's position, then answers the replica's replayed position. */
  async #compare(generation: number): Promise<bigint> {
    const at = performance.now()
    const { rows } = await this.#primary.execute({ sql: 'SELECT pg_current_wal_lsn()::text AS lsn', params: [] })
    const lsn = parseLsn(rows[0]?.['lsn'])
    if (lsn === null) throw new Error('keywarden: the primary answered no WAL position (pg_current_wal_lsn())')
    if (generation === this.#generation) this.#samples.push({ at, lsn })
    const answer = await this.#replica.query('SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS replayed')
    const row = answer.rows[0]
    if (row?.['recovery'] !== true) throw new Error('keywarden: the readPool is not connected to a standby (pg_is_in_recovery() is false); verify reads go to the primary')
    const replayed = parseLsn(row['replayed'])
    if (replayed === null) throw new Error('keywarden: the standby has replayed no WAL yet (pg_last_wal_replay_lsn() is null)')
    return replayed
  }

  /**
   * Sets `caughtUpTo` to the newest sample this answer shows replayed (`null` if none), and forgets
   * the writes that covers. Recomputed from each answer alone, never kept from an earlier one, so a
   * replica that went back (rebuilt from an older backup) is not trusted for where it used to be. Each
   * sample is evidence on its own (checks may overlap, so instants and positions need not rise
   * together): the newest instant among the replayed ones wins.
   */
  #advance(replayed: bigint): void {
    let newest: Sample | undefined
    for (const sample of this.#samples) if (sample.lsn <= replayed && (newest === undefined || sample.at > newest.at)) newest = sample
    const oldestUseful = performance.now() - this.#settings.maxLagMs
    // Kept: the newest replayed sample, and the pending ones young enough to ever make the replica usable.
    this.#samples = this.#samples.filter((sample) => sample === newest || (sample.lsn > replayed && sample.at >= oldestUseful))
    this.#caughtUpTo = newest?.at ?? null
    if (newest === undefined) return
    for (const [keyId, at] of this.#written) if (at < newest.at) this.#written.delete(keyId)
  }

  #report(error: unknown): void {
    if (this.#failing) return
    this.#failing = true
    try {
      this.#settings.onError(error)
    } catch {
      // A throwing handler must not stop the checks.
    }
  }
}
