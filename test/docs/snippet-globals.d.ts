// Names a documentation snippet may use without defining them, as if an earlier block on the page had.
// Every ```ts / ```js block in docs/ and README.md is type-checked as its own ES module with these in scope.
import type { KeyManager } from 'keywarden'

declare global {
  /** A configured KeyManager (see docs/getting-started.md and docs/concepts.md for how one is built). */
  const keys: KeyManager
  /** A key ID, e.g. from a route parameter of the host application. */
  const keyId: string
  /** A full token string, as a client sends it. */
  const token: string
  /** The signed-in user of the host application (its own session, not keywarden's). */
  const currentUser: { id: string; tenantId: string; role: 'admin' | 'member' }
}

export {}
