/**
 * `RedisStore.migrate()`: brings a namespace written by an earlier version up to this one, walking the
 * all-records index in small batches so Redis is never blocked for long.
 *
 * - Layout 2 (0.1.0 had none): the tenant keys of 0.1.0 owner sets move into their tenant sets, so
 *   quotas count per tenant. Once done, the meta hash says `layout: 2`.
 * - Snapshots: every record gets its verify snapshot (record-codec.ts), so verify reads one string.
 *   Once done, the meta hash says `snapshots: complete`, and a missing snapshot means a missing record.
 *
 * Each batch is atomic scripts that also record where the walk got to, so an interrupted migration
 * resumes there; a migrated namespace costs one read.
 */
import type { SendCommand } from './client.js'
import { idOfMember, type KeyLayout } from './keys.js'
import { readTexts } from './replies.js'
import { fetchRecordsWithFixed, type FetchedRecord } from './scripts/fetch.js'
import { MIGRATE_BATCH, migrateBatchCall } from './scripts/migrate-batch.js'
import { runScript } from './scripts/run-script.js'
import { SNAPSHOT_BATCH, snapshotBatchCall } from './scripts/snapshot-batch.js'

// At most 300 keys per script: a few hundred set operations, well under a millisecond of server time.
const MIGRATION_BATCH = 100

/** Runs the migration of one namespace to the end (see the module comment). */
export async function migrateNamespace(send: SendCommand, layout: KeyLayout): Promise<void> {
  const [current, migrationCursor, snapshots, snapshotCursor] = readTexts(
    await send(['HMGET', layout.meta, 'layout', 'migrationCursor', 'snapshots', 'snapshotCursor']),
  )
  const movesSets = current !== '2'
  const writesSnapshots = snapshots !== 'complete'
  if (!movesSets && !writesSnapshots) return
  // The set walk runs first in each batch, so its cursor is never ahead of the snapshot walk's.
  const reached = movesSets ? migrationCursor : snapshotCursor
  let bound = reached == null ? '-' : `(${reached}`
  for (;;) {
    const members = readTexts(await send(['ZRANGEBYLEX', layout.allIndex, bound, '+', 'LIMIT', '0', String(MIGRATION_BATCH)])).filter(
      (member) => member !== null,
    )
    const ids = members.map(idOfMember)
    // A record deleted since the range read has nothing left to move or snapshot.
    const found = (await fetchRecordsWithFixed(send, ids.map((id) => layout.record(id)))).filter((entry): entry is FetchedRecord => entry !== null)
    const last = members.at(-1)
    const complete = members.length < MIGRATION_BATCH || last === undefined
    const reachedNow = complete ? '' : last
    if (movesSets) {
      await runScript(send, MIGRATE_BATCH, migrateBatchCall(layout, found.map(({ record, fixed }) => ({ id: record.id, fixed })), reachedNow))
    }
    if (writesSnapshots) {
      await runScript(send, SNAPSHOT_BATCH, snapshotBatchCall(layout, found.map(({ record }) => record), reachedNow))
    }
    if (complete) return
    bound = `(${last}`
  }
}
