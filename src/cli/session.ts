/**
 * Everything a store command runs with: the configuration, the store (from `--store`, then
 * `KEYWARDEN_STORE`, then the config file), the pepper, and a KeyManager over them; closed at the end
 * whatever happens.
 */
import { formatPath, ConfigError } from '../errors.js'
import { KeyManager } from '../key-manager.js'
import type { KeyManagerOptions } from '../options.js'
import type { Invocation } from './command.js'
import { loadConfig, type LoadedConfig } from './config.js'
import { UsageError } from './exit-codes.js'
import { openStore, type OpenedStore } from './open-store.js'
import { quoteInput } from './output.js'
import { checkStoreHashes, readPepper, requirePepperChoice, type PepperSetting } from './pepper.js'
import { parseStoreUrl, type StoreTarget } from './store-url.js'

/** An open store and the KeyManager over it. */
export interface Session {
  /** The KeyManager, configured from the config file and the pepper. */
  readonly keys: KeyManager
  /** The store and its label. */
  readonly opened: OpenedStore
  /** The configuration in use. */
  readonly config: LoadedConfig
}

/** What a command needs of its session. */
export interface SessionNeeds {
  /** The command hashes a new secret (create, rotate): the pepper rules apply. */
  readonly newSecret?: boolean
  /** Let a SQLite file be created (migrate). */
  readonly create?: boolean
}

function stringValue(invocation: Invocation, name: string): string | undefined {
  const value = invocation.values[name]
  return typeof value === 'string' ? value : undefined
}

/** The store URL and where it came from, for messages. */
function storeTarget(invocation: Invocation, config: LoadedConfig): StoreTarget {
  const flag = stringValue(invocation, 'store')
  if (flag !== undefined) return parseStoreUrl(flag, '--store')
  const env = invocation.io.env['KEYWARDEN_STORE']
  if (env !== undefined && env !== '') return parseStoreUrl(env, 'KEYWARDEN_STORE')
  if (config.settings.store !== undefined) return parseStoreUrl(config.settings.store, `${quoteInput(config.file!)}: store`)
  throw new UsageError('no store: pass --store <url> or set KEYWARDEN_STORE (see keywarden --help)')
}

function managerOptions(config: LoadedConfig, pepper: PepperSetting | null): Omit<KeyManagerOptions, 'store'> {
  const { prefix, environments, roles, groups, scopeWildcards, expiry, rotation, maxKeysPerOwner, startLength } = config.settings
  const given = { prefix, environments, roles, groups, scopeWildcards, expiry, rotation, maxKeysPerOwner, startLength }
  // Only what the file sets: a present `undefined` would read as a setting to the KeyManager.
  const options = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)) as Omit<KeyManagerOptions, 'store'>
  // `null` without a pepper: deliberate, as the commands that hash a secret made sure it is.
  return { ...options, pepper: pepper === null ? null : [{ id: pepper.id, secret: pepper.secret }] }
}

/** The configuration file the command line names (or the default one), for commands without a session. */
export function configOf(invocation: Invocation): LoadedConfig {
  return loadConfig(invocation.io, stringValue(invocation, 'config'))
}

/** Opens the store named by the command line (or environment, or config file). */
export async function openConfiguredStore(invocation: Invocation, config: LoadedConfig, needs: SessionNeeds = {}): Promise<OpenedStore> {
  const target = storeTarget(invocation, config)
  const sql = target.kind !== 'redis'
  const location = {
    table: stringValue(invocation, 'table') ?? (sql ? config.settings.table : undefined),
    namespace: stringValue(invocation, 'namespace') ?? (sql ? undefined : config.settings.namespace),
  }
  return openStore(target, location, { create: needs.create === true, cwd: invocation.io.cwd })
}

/**
 * Runs `body` with a session, and closes it afterwards.
 *
 * @throws {@link UsageError} for a bad configuration or pepper; what `body` throws.
 */
export async function withSession<T>(invocation: Invocation, needs: SessionNeeds, body: (session: Session) => Promise<T>): Promise<T> {
  // Settings and pepper first: a mistake there is reported before any connection is made.
  const config = configOf(invocation)
  const pepper = readPepper(invocation.io, config.settings.pepperId)
  if (needs.newSecret) requirePepperChoice(pepper, invocation.values['no-pepper'] === true)
  const opened = await openConfiguredStore(invocation, config, needs)
  let keys: KeyManager | undefined
  try {
    try {
      keys = new KeyManager({ store: opened.store, ...managerOptions(config, pepper) })
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      const where = config.file === null ? 'the configuration' : quoteInput(config.file)
      throw new UsageError(`${where}: ${error.issues.slice(0, 3).map((issue) => `${formatPath(issue.path) || 'options'}: ${issue.message}`).join('; ')}`)
    }
    if (needs.newSecret) await checkStoreHashes(invocation.io, opened.store, pepper)
    return await body({ keys, opened, config })
  } finally {
    await keys?.close()
    await opened.close()
  }
}
