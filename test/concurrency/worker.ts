/**
 * The other process of the cross-process races (cross-process.test.ts): another app instance with, for
 * each backend, its own client and two KeyManagers on the same Redis namespace, table or SQLite file as
 * the test. One worker serves every backend, so the suite pays for loading it once.
 *
 * Protocol, one JSON object per line. Standard output carries answers only (tokens included: the test
 * needs them to check which secrets verify); nothing secret ever goes to standard error.
 *   worker → `{"type":"ready"}` once its clients are connected
 *   test   → `{"type":"arm","backend":"redis","ops":[...]}`    worker → `{"type":"armed"}`
 *   test   → `{"type":"go","at":<epoch ms>}`    the worker waits until `at`, runs every op at once,
 *                                               then → `{"type":"done","batch":{...}}`
 *   test   → `{"type":"quit"}`                  the worker closes its managers and clients and exits 0
 *
 * Usage: node --import tsx test/concurrency/worker.ts '<StoreLocation[] as JSON>' ['<ManagerConfig as JSON>']
 * The optional second argument configures the worker's managers as the test configured its own (the
 * limits policies, a running clock; see ManagerConfig); without it they take managerOptions as is.
 */
import { createInterface } from 'node:readline'
import type { KeyManager } from '../../src/index.js'
import { closeAll, managersOn, runAll, waitUntil, type ManagerConfig, type Op } from './harness.js'
import { openAt, type StoreLocation } from './shared-store.js'

type Command = { type: 'arm'; backend: StoreLocation['backend']; ops: Op[] } | { type: 'go'; at: number } | { type: 'quit' }

function send(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

const locations = JSON.parse(process.argv[2] ?? '[]') as StoreLocation[]
const config = JSON.parse(process.argv[3] ?? '{}') as ManagerConfig
const sides = new Map(
  await Promise.all(
    locations.map(async (location) => {
      const shared = await openAt(location)
      await shared.store.get('warm-up') // connect now, not in the middle of the first race
      return [location.backend, { shared, managers: managersOn([shared.store], 2, config) }] as const
    }),
  ),
)
send({ type: 'ready' })

let armed: { managers: KeyManager[]; ops: Op[] } | undefined
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue
  const command = JSON.parse(line) as Command
  if (command.type === 'arm') {
    const side = sides.get(command.backend)
    if (side === undefined) throw new Error(`the worker has no store for ${command.backend}`)
    armed = { managers: side.managers, ops: command.ops }
    send({ type: 'armed' })
  } else if (command.type === 'go') {
    if (armed === undefined) throw new Error("'go' before 'arm'")
    await waitUntil(command.at)
    const batch = await runAll(armed.managers, armed.ops)
    armed = undefined
    send({ type: 'done', batch })
  } else {
    break
  }
}
for (const { shared, managers } of sides.values()) {
  await closeAll(managers)
  await shared.close()
}
