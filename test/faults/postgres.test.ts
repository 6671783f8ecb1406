import { afterAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { PostgresStore } from '../../adapters/sql/index.js'
import { StoreError } from '../../src/index.js'
import { makeRecord } from '../conformance/records.js'
import { SERVICES, uniqueSuffix } from '../support/services.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { describeNetworkFaults, failure } from './describe-network-faults.js'
import { NETWORK_BACKENDS } from './network-backends.js'

await describeNetworkFaults(NETWORK_BACKENDS.postgres)

const gate = await NETWORK_BACKENDS.postgres.gate()

describe.skipIf(!gate.available)('PostgresStore on a pg.Pool, connection reset inside a transaction', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step()
  })

  // Regression: pg reports the lost connection twice, by failing the statement and by an 'error' event
  // on the checked-out client. The pool does not listen while the client is out, so before the store
  // listened, that event was unhandled: an uncaught exception that stops a server process.
  it('is a StoreError from insert, and no unhandled error event', async () => {
    const proxy = await TcpProxy.start(SERVICES.postgres)
    cleanup.push(() => proxy.close())
    const pool = new pg.Pool({ ...SERVICES.postgres, host: '127.0.0.1', port: proxy.port, max: 1 })
    pool.on('error', () => undefined)
    cleanup.push(() => pool.end())
    const admin = new pg.Pool({ ...SERVICES.postgres, max: 1 })
    const table = `kwf_${uniqueSuffix()}`
    cleanup.push(async () => {
      await admin.query(`DROP TABLE IF EXISTS "${table}"`)
      await admin.end()
    })
    await new PostgresStore({ pool: admin, table }).migrate()
    const store = new PostgresStore({ pool, table })

    const uncaught: unknown[] = []
    const onUncaught = (error: unknown) => void uncaught.push(error)
    process.on('uncaughtException', onUncaught)
    cleanup.push(async () => void process.off('uncaughtException', onUncaught))

    // The quota insert runs in a transaction on a checked-out client; its COMMIT is reset mid-flight.
    proxy.on('chunk', ({ direction, chunk }: { direction: string; chunk: Buffer }) => {
      if (direction === 'request' && chunk.includes('COMMIT')) proxy.holdReplies()
    })
    const record = makeRecord({ ownerId: 'owner-reset' })
    const pending = failure(() => store.insert(record, { ownerId: 'owner-reset', tenantId: null, limit: 5 }))
    await proxy.nextHeld('reply')
    proxy.reset()
    const { error } = await pending
    expect(error).toBeInstanceOf(StoreError)
    await proxy.restore()
    // A later statement on the same pool runs on a fresh connection and sees the committed row.
    expect((await store.get(record.id))?.id).toBe(record.id)
    expect(uncaught).toEqual([])
  })
})
