/**
 * The in-memory key store: `import { MemoryStore } from 'keywarden/adapters/memory'`.
 *
 * @packageDocumentation
 */
export { MemoryStore } from './memory-store.js'
