/**
 * The pepper: read from `KEYWARDEN_PEPPER` only (never a flag, which shell history and `ps` keep, nor
 * a file, which gets committed), and the rules for the commands that hash a new secret (create,
 * rotate): a key hashed without the app's pepper, or with another one, never verifies in the app.
 */
import type { KeyStore } from '../store.js'
import { callStore } from '../store-failure.js'
import type { CliIo } from './command.js'
import { UsageError } from './exit-codes.js'
import { quoteInput } from './output.js'

/** The pepper the bin hashes with: the bytes stay here and in the KeyManager, nowhere else. */
export interface PepperSetting {
  /** The pepper ID written into each hash; `default` unless `KEYWARDEN_PEPPER_ID` or the config says. */
  readonly id: string
  /** The secret, from `KEYWARDEN_PEPPER`. */
  readonly secret: string
}

const PEPPER_ID = /^[A-Za-z0-9_-]{1,32}$/

/**
 * The pepper from the environment, or `null` when `KEYWARDEN_PEPPER` is unset.
 *
 * @throws {@link UsageError} for an empty pepper or a malformed pepper ID.
 */
export function readPepper(io: CliIo, configuredId: string | undefined): PepperSetting | null {
  const secret = io.env['KEYWARDEN_PEPPER']
  if (secret === undefined) return null
  if (secret === '') throw new UsageError('KEYWARDEN_PEPPER is set but empty')
  const id = io.env['KEYWARDEN_PEPPER_ID'] ?? configuredId ?? 'default'
  if (!PEPPER_ID.test(id)) throw new UsageError('KEYWARDEN_PEPPER_ID: must be 1-32 letters, digits, - or _')
  return { id, secret }
}

/** Where the stored hashes come from: pepper IDs, and whether some have no pepper. */
interface HashOrigins {
  readonly pepperIds: ReadonlySet<string>
  readonly unpeppered: boolean
}

/** How many of the newest keys are looked at: enough to see what the app hashes with. */
const SAMPLE = 100

async function hashOrigins(store: KeyStore): Promise<HashOrigins> {
  const records = await callStore('list', () => store.list({ now: Date.now(), order: 'desc', limit: SAMPLE }))
  const pepperIds = new Set<string>()
  let unpeppered = false
  // Self-describing hashes: kw1$hmac-sha256$<pepper id>$<hex>, or kw1$sha256$-$<hex> without a pepper.
  for (const { hash } of records) {
    const [, scheme, id] = hash.split('$')
    if (scheme === 'sha256') unpeppered = true
    else if (scheme === 'hmac-sha256' && id !== undefined) pepperIds.add(id)
  }
  return { pepperIds, unpeppered }
}

/**
 * For the commands that hash a new secret, before the store is opened: without `KEYWARDEN_PEPPER` it
 * takes `--no-pepper` to hash without one, deliberately (as `pepper: null` does for a KeyManager).
 *
 * @throws {@link UsageError} when the pepper is missing or contradicted.
 */
export function requirePepperChoice(pepper: PepperSetting | null, noPepper: boolean): void {
  if (pepper !== null && noPepper) throw new UsageError('--no-pepper and KEYWARDEN_PEPPER contradict each other: drop one')
  if (pepper === null && !noPepper) {
    throw new UsageError(
      "KEYWARDEN_PEPPER is not set: a key hashed without the app's pepper does not verify there. Set it, or pass --no-pepper if the app runs without one",
    )
  }
}

/**
 * Checks, before a new secret is hashed, that the key will verify where the store's other keys do:
 * refuses to hash without a pepper when the store holds peppered keys, and warns when the store's keys
 * use another pepper ID, or none.
 *
 * @throws {@link UsageError} when the store holds peppered keys and there is no pepper.
 */
export async function checkStoreHashes(io: CliIo, store: KeyStore, pepper: PepperSetting | null): Promise<void> {
  const origins = await hashOrigins(store)
  if (pepper === null) {
    if (origins.pepperIds.size > 0) throw new UsageError('the store holds keys hashed with a pepper: set KEYWARDEN_PEPPER (a key made with --no-pepper would not verify)')
    return
  }
  if (origins.pepperIds.size > 0 && !origins.pepperIds.has(pepper.id)) {
    const ids = [...origins.pepperIds].map((id) => quoteInput(id)).join(', ')
    io.stderr(`keywarden: warning: the store's keys use pepper ID ${ids}, not ${quoteInput(pepper.id)}; set KEYWARDEN_PEPPER_ID if the app names its pepper\n`)
  } else if (origins.pepperIds.size === 0 && origins.unpeppered) {
    io.stderr("keywarden: warning: the store's keys have no pepper; an app that runs without one cannot verify this key\n")
  }
}
