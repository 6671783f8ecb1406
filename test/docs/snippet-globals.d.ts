// Names a documentation snippet may use without defining them, as if an earlier block on the page had.
// Every ```ts / ```js block in docs/ and README.md, and in the TSDoc comments of src/ and adapters/, is
// type-checked as its own ES module with these in scope. A block that defines one of these names itself
// (`const keys = new KeyManager(...)`) simply shadows it.
import type { KeyManager, KeyStore } from 'keywarden'

declare global {
  /** A configured KeyManager (see docs/getting-started.md and docs/concepts.md for how one is built). */
  const keys: KeyManager
  /** A key ID, e.g. from a route parameter of the host application. */
  const keyId: string
  /** A full token string, as a client sends it. */
  const token: string
  /** The signed-in user of the host application (its own session, not keywarden's). */
  const currentUser: { id: string; tenantId: string; role: 'admin' | 'member' }
  /** The key store the application configured (any adapter), for `new KeyManager({ store, ... })`. */
  const store: KeyStore
  /** The host application's Express app. */
  const app: import('express').Express
  /** The application's PostgreSQL pool (`pg`). */
  const pool: import('pg').Pool
  /** The application's Redis client (`ioredis`). */
  const redis: import('ioredis').Redis
}

export {}
