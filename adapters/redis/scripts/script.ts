/**
 * What every script module shares: the {@link Script} itself (its Lua and the SHA-1 EVALSHA runs it by),
 * the {@link ScriptCall} its builder returns, and {@link DeclaredKeys}, which lists every key a script
 * touches in KEYS, as Redis Cluster and Redis-compatible servers that lock declared keys require.
 */
import { createHash } from 'node:crypto'
import { LUA_CHECKS } from './lua-checks.js'

/** A Lua script and the SHA-1 that EVALSHA runs it by. */
export interface Script {
  readonly source: string
  readonly sha: string
}

/** The KEYS and ARGV of one run of a script. */
export interface ScriptCall {
  readonly keys: readonly string[]
  readonly args: readonly string[]
}

/** A script whose body can use the input checks of lua-checks.ts. */
export function defineScript(body: string): Script {
  const source = `${LUA_CHECKS}\n${body}`
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * The KEYS of one call. Scripts find optional keys at 1-based positions passed in ARGV, `'0'` meaning
 * absent; a key declared twice (the record's live set is also the quota's) gets one position.
 */
export class DeclaredKeys {
  readonly keys: string[]

  constructor(fixed: readonly string[]) {
    this.keys = [...fixed]
  }

  /** The position of `key` as an ARGV string, declaring it if needed; `'0'` for `null`. */
  position(key: string | null): string {
    if (key === null) return '0'
    const index = this.keys.indexOf(key)
    return String(index >= 0 ? index + 1 : this.keys.push(key))
  }
}
