/**
 * The model-based property, shared by every store's run (test/model/key-manager-model.test.ts) and the
 * Redis Cluster's (test/adapters/redis-cluster.test.ts): random command sequences against a real
 * KeyManager on a fresh store and against the reference model.
 */
import fc from 'fast-check'
import type { KeyManagerOptions, KeyStore } from '../../src/index.js'
import { setup, START } from '../helpers.js'
import { COMMANDS, LIMITS, QUOTAS } from './commands.js'
import { DAY, KeyModel } from './reference-model.js'

/** Roles as configured by `setup()` in test/helpers.ts; the model needs them to resolve scopes. */
export const MODEL_ROLES = { admin: ['*'], readonly: ['data:read'], writer: ['data:read', 'data:write'] }
export const MAX_COMMANDS = 30

/** A fresh store for one run, and how to clean it up afterwards. */
export interface ModelStore {
  readonly store: KeyStore
  cleanup(): Promise<void>
}

/** The property: each run opens a store, runs the commands against it and the model, then cleans up. */
export function modelRunProperty(open: () => Promise<ModelStore>, options: Partial<KeyManagerOptions>, replayPath?: string) {
  return fc.asyncProperty(fc.commands(COMMANDS, { maxCommands: MAX_COMMANDS, size: 'max', ...(replayPath === undefined ? {} : { replayPath }) }), async (commands) => {
    const handle = await open()
    const { keys, time } = setup({
      store: handle.store,
      maxKeysPerOwner: (owner) => QUOTAS[String(owner.id)] ?? Infinity,
      limits: LIMITS,
      ...options,
    })
    const model = new KeyModel({ start: START, quotas: QUOTAS, roles: MODEL_ROLES, defaultExpiryMs: 90 * DAY, limits: LIMITS })
    try {
      await fc.asyncModelRun(() => ({ model, real: { keys, time } }), commands)
    } finally {
      await keys.close()
      await handle.cleanup()
    }
  })
}
