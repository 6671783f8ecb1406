/**
 * `RedisStore.migrate()`: moves the tenant keys of 0.1.0 owner sets into their tenant sets, walking the
 * all-records index in small batches so Redis is never blocked for long. Each batch is one atomic
 * script that also records where the walk got to, so an interrupted migration resumes there; once the
 * walk is complete the namespace is marked layout 2, and later calls return after one read.
 */
import type { SendCommand } from './client.js'
import { idOfMember, type KeyLayout } from './keys.js'
import { readTexts } from './replies.js'
import { fetchFixedFields } from './scripts/fetch.js'
import { MIGRATE_BATCH, migrateBatchCall, type MigrationCandidate } from './scripts/migrate-batch.js'
import { runScript } from './scripts/run-script.js'

// At most 300 keys per script: a few hundred set operations, well under a millisecond of server time.
const MIGRATION_BATCH = 100

/** Runs the migration of one namespace to the end (see the module comment). */
export async function migrateNamespace(send: SendCommand, layout: KeyLayout): Promise<void> {
  const [current, reached] = readTexts(await send(['HMGET', layout.meta, 'layout', 'migrationCursor']))
  if (current === '2') return
  let bound = reached == null ? '-' : `(${reached}`
  for (;;) {
    const members = readTexts(await send(['ZRANGEBYLEX', layout.allIndex, bound, '+', 'LIMIT', '0', String(MIGRATION_BATCH)])).filter(
      (member) => member !== null,
    )
    const ids = members.map(idOfMember)
    const fixedFields = await fetchFixedFields(send, ids.map((id) => layout.record(id)))
    const candidates: MigrationCandidate[] = []
    for (const [i, id] of ids.entries()) {
      const fixed = fixedFields[i]
      // A record deleted since the range read has nothing left to move.
      if (fixed != null) candidates.push({ id, fixed })
    }
    const last = members.at(-1)
    const complete = members.length < MIGRATION_BATCH || last === undefined
    await runScript(send, MIGRATE_BATCH, migrateBatchCall(layout, candidates, complete ? '' : last))
    if (complete) return
    bound = `(${last}`
  }
}
