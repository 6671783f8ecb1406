/**
 * node's `crypto` where the platform has it (Node, Deno, Bun), loaded on demand: no entry point
 * imports `node:crypto` statically, so the same bundles load where it is absent.
 */
import type * as NodeCrypto from 'node:crypto'

/** node's `crypto` module, or `undefined` on a platform without it. */
export function nodeCrypto(): typeof NodeCrypto | undefined {
  const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  return process?.getBuiltinModule?.('node:crypto') as typeof NodeCrypto | undefined
}
