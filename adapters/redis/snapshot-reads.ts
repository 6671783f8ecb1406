/**
 * Record reads from the verify snapshots (record-codec.ts). The reads asked for in one turn of the
 * event loop go out as one `MGET` (every snapshot of a namespace shares its hash tag, so this holds on
 * Cluster too): under concurrency, one command, one reply and one socket write serve many verifies, where
 * a read per call spent most of its time in the client's command encoding and the write.
 *
 * A record without a snapshot is either absent or written by 0.1.0 and not yet migrated; until the
 * namespace says every record has one (`migrate()`, or a namespace this version created), such a read
 * looks at the hash in a second round trip. Once it does, a missing snapshot is a missing record.
 */
import type { StoredKey } from '../../src/store.js'
import type { SendCommand } from './client.js'
import type { KeyLayout } from './keys.js'
import { decodeSnapshot } from './record-codec.js'
import { readArray, readText } from './replies.js'
import { readUnsnapshotted } from './scripts/read-unsnapshotted.js'

/** Snapshots per `MGET`: a reply of a few hundred kilobytes at most. */
const MAX_BATCH = 256

interface PendingRead {
  readonly key: string
  readonly resolve: (text: string | null) => void
  readonly reject: (error: unknown) => void
}

export class SnapshotReads {
  readonly #send: SendCommand
  readonly #layout: KeyLayout
  #pending: PendingRead[] = []
  /** Learned once from the meta hash: it never goes back. */
  #snapshotsComplete = false

  constructor(send: SendCommand, layout: KeyLayout) {
    this.#send = send
    this.#layout = layout
  }

  /** The record with ID `id`, or `null`; a failed read rejects with the client's error. */
  async read(id: string): Promise<StoredKey | null> {
    const text = await this.#snapshot(this.#layout.snapshot(id))
    if (text !== null) return decodeSnapshot(text)
    if (this.#snapshotsComplete) return null
    const found = await readUnsnapshotted(this.#send, this.#layout, id)
    if (found.snapshotsComplete) this.#snapshotsComplete = true
    return found.record
  }

  #snapshot(key: string): Promise<string | null> {
    return new Promise((resolve, reject) => {
      // nextTick runs after every promise callback of this turn, so the verifies a reply set going
      // (one socket read often settles dozens) all join the batch.
      if (this.#pending.length === 0) process.nextTick(this.#flush)
      this.#pending.push({ key, resolve, reject })
    })
  }

  readonly #flush = (): void => {
    const all = this.#pending
    this.#pending = []
    for (let start = 0; start < all.length; start += MAX_BATCH) this.#sendBatch(all.slice(start, start + MAX_BATCH))
  }

  #sendBatch(batch: readonly PendingRead[]): void {
    const single = batch.length === 1
    const command = single ? ['GET', batch[0]!.key] : ['MGET', ...batch.map((read) => read.key)]
    let reply: Promise<unknown>
    try {
      reply = this.#send(command)
    } catch (error) {
      reply = Promise.reject(error)
    }
    reply.then(
      (value) => {
        if (single) return settle(batch[0]!, value)
        const values = readArray(value)
        if (values.length !== batch.length) throw new Error('Unexpected Redis reply: expected one value per key')
        for (let i = 0; i < batch.length; i++) settle(batch[i]!, values[i])
      },
    ).catch((error: unknown) => {
      for (const read of batch) read.reject(error)
    })
  }
}

/** One read's answer; a reply of another shape rejects that read only. */
function settle(read: PendingRead, value: unknown): void {
  try {
    read.resolve(readText(value))
  } catch (error) {
    read.reject(error)
  }
}
