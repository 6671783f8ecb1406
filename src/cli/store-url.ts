/**
 * `--store` URLs: which store a URL names. The URL itself is never repeated in a message, since it
 * may carry a password; only its scheme is.
 */
import { UsageError } from './exit-codes.js'
import { quoteInput } from './output.js'

/** The store a `--store` URL names. */
export type StoreTarget =
  | { readonly kind: 'redis'; readonly url: string }
  | { readonly kind: 'postgres'; readonly url: string }
  | { readonly kind: 'mysql'; readonly url: string }
  | { readonly kind: 'sqlite'; readonly file: string }

const SCHEMES: Readonly<Record<string, 'redis' | 'postgres' | 'mysql'>> = {
  'redis:': 'redis',
  'rediss:': 'redis',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
}

const FORMS = 'use redis://…, postgres://…, mysql://… or sqlite:<file>'

/**
 * Reads a store URL. `source` names where it came from (`--store`, `KEYWARDEN_STORE`, the config
 * file) in the error.
 *
 * @throws {@link UsageError} for anything that is not one of the four forms.
 * @example
 * ```ts
 * import { parseStoreUrl } from './store-url.js'
 *
 * parseStoreUrl('sqlite:keys.db', '--store') // { kind: 'sqlite', file: 'keys.db' }
 * parseStoreUrl('postgres://app@db.internal:5432/app', '--store') // { kind: 'postgres', url: … }
 * ```
 */
export function parseStoreUrl(text: string, source: string): StoreTarget {
  if (text.startsWith('sqlite:')) {
    // sqlite:keys.db, sqlite:/var/lib/keys.db and the URL-like sqlite:///var/lib/keys.db alike.
    const rest = text.slice('sqlite:'.length)
    const file = rest.startsWith('//') ? rest.slice(2) : rest
    if (file.length === 0) throw new UsageError(`${source}: sqlite: needs a file, as in sqlite:keys.db`)
    return { kind: 'sqlite', file }
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UsageError(`${source}: not a store URL: ${FORMS}`)
  }
  const kind = Object.hasOwn(SCHEMES, url.protocol) ? SCHEMES[url.protocol] : undefined
  if (kind === undefined) throw new UsageError(`${source}: unsupported scheme ${quoteInput(url.protocol)}: ${FORMS}`)
  return { kind, url: text }
}
