/**
 * The in-memory key store: `import { MemoryStore } from 'keywarden/adapters/memory'`. The reference
 * implementation of the {@link keywarden!KeyStore | KeyStore} contract, for tests, demos and single-process tools.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * const keys = new KeyManager({ store: new MemoryStore() })
 * ```
 *
 * @module keywarden/adapters/memory
 */
export { MemoryStore } from './memory-store.js'
