import { KeyManager, type KeyEvent, type KeyEventName, type KeyManagerOptions, type KeyStore } from '../src/index.js'
import { MemoryStore } from '../adapters/memory/index.js'
import { formatToken } from '../src/token/format.js'

export const START = Date.UTC(2026, 0, 1, 12, 0, 0)
export const DAY = 86_400_000
export const PEPPER = 'test-pepper-0123456789-abcdefghij'

/** A clock the test moves by hand. */
export function manualClock(start = START) {
  let now = start
  return {
    clock: () => now,
    get now() {
      return now
    },
    advance(ms: number) {
      now += ms
    },
    set(ms: number) {
      now = ms
    },
  }
}

/**
 * Wraps a real store and counts calls per method (a spy, not a mock: every call reaches the store).
 * `reads()` counts reads of one key, whichever way they went: `get`, or `getSync` (verify's read where
 * the store has it).
 */
export function countingStore(inner: KeyStore = new MemoryStore()) {
  const calls: Record<string, number> = {}
  const reads = () => (calls['get'] ?? 0) + (calls['getSync'] ?? 0)
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls[String(property)] = (calls[String(property)] ?? 0) + 1
        return value.apply(target, args)
      }
    },
  })
  return { store, calls, reads }
}

/**
 * A memory store without the synchronous read (`getSync`), so verify reads through `get` and a test
 * can slow or break that read after creating keys.
 */
export function asyncReadStore(): MemoryStore {
  const store = new MemoryStore()
  Object.defineProperty(store, 'getSync', { value: undefined })
  return store
}

/** A KeyManager on a fresh memory store with a manual clock, and the options used. */
export function setup(overrides: Partial<KeyManagerOptions> = {}) {
  const time = manualClock()
  const store = overrides.store ?? new MemoryStore()
  const keys = new KeyManager({
    prefix: 'acme',
    environments: ['live', 'test'],
    roles: { admin: ['*'], readonly: ['data:read'], writer: ['data:read', 'data:write'] },
    groups: { support: ['readonly'], engineering: ['writer'] },
    pepper: PEPPER,
    expiry: { default: '90d', max: '365d' },
    clock: time.clock,
    ...overrides,
    store,
  })
  return { keys, time, store }
}

/** Records every event of the given names, in order. */
export function recordEvents(keys: KeyManager, names: KeyEventName[]) {
  const events: KeyEvent[] = []
  for (const name of names) keys.on(name, (event) => void events.push(event))
  return events
}

export const ALL_EVENTS: KeyEventName[] = [
  'created',
  'updated',
  'enabled',
  'disabled',
  'revoked',
  'deleted',
  'rotated',
  'verified',
  'rejected',
  'expiring',
  'rehashed',
]

/** Awaits a promise expected to reject and returns the rejection. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the promise to reject')
}

/** A well-formed token (valid checksum) for any key ID, with a secret that was never issued. */
export function forgeToken(keyId: string, environment = 'live', secret = 'f'.repeat(32), prefix = 'acme'): string {
  return formatToken({ prefix, environment, keyId, secret })
}

/**
 * Starts `run` with the store's next read held after it has read, as a slow answer would be: the read
 * sees the store as it is now, its answer arrives when `release()` is called. Later reads are not held.
 * Holds `get` only: give verify a store that reads through it ({@link asyncReadStore}).
 */
export async function withHeldRead<T>(store: KeyStore, run: () => Promise<T>): Promise<{ pending: Promise<T>; release: () => void }> {
  const get = store.get.bind(store)
  let release: () => void = () => undefined
  store.get = async (id) => {
    const record = await get(id)
    await new Promise<void>((resolve) => (release = resolve))
    return record
  }
  const pending = run()
  await new Promise((resolve) => setImmediate(resolve))
  store.get = get
  return { pending, release: () => release() }
}
