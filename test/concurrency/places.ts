/**
 * The test process's side of a cross-process race: one namespace, table or SQLite file per backend,
 * opened through test/support, with the location its workers open a second client on (shared-store.ts).
 * Kept apart from shared-store.ts, which the worker loads: this one pulls in the backends (and their
 * leak-canary hooks), which only the test process needs.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteStore } from '../../adapters/sql/index.js'
import type { KeyStore } from '../../src/index.js'
import type { Backend } from '../support/backends.js'
import { uniqueSuffix } from '../support/services.js'
import { Database } from '../support/sqlite.js'
import { locationOf, type StoreLocation } from './shared-store.js'

/** One namespace, table or file of a backend, for a whole test file. */
export interface Place {
  readonly location: StoreLocation
  readonly store: KeyStore
  readonly dump: () => Promise<string>
  readonly cleanup: () => Promise<void>
}

/**
 * Opens a fresh place on `backend`, migrated. SQLite gets a file of its own in WAL mode (the backend's
 * handle does not tell its file, and another process needs one to open).
 */
export async function openPlace(backend: Backend): Promise<Place> {
  if (backend.name === 'sqlite') {
    const directory = mkdtempSync(join(tmpdir(), 'keywarden-race-'))
    const file = join(directory, 'keys.db')
    const database = new Database(file)
    database.pragma('journal_mode = WAL')
    const store = new SqliteStore({ database, table: `kwt_${uniqueSuffix()}` })
    await store.migrate()
    return {
      location: { backend: 'sqlite', file, table: store.table },
      store,
      dump: async () => JSON.stringify(database.prepare(`SELECT * FROM "${store.table}"`).all()),
      cleanup: async () => {
        database.close()
        rmSync(directory, { recursive: true, force: true })
      },
    }
  }
  const handle = await backend.open()
  return { location: locationOf(backend.name, handle.store)!, store: handle.store, dump: handle.dump, cleanup: handle.cleanup }
}
