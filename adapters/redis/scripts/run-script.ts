/**
 * Sends a script by its SHA-1 with EVALSHA, falling back to EVAL with the source when the server does
 * not have it cached.
 */
import type { SendCommand } from '../client.js'
import type { Script, ScriptCall } from './script.js'

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOSCRIPT')
}

/**
 * Runs `script` by its SHA-1; on NOSCRIPT (a restarted server, or a Cluster node that has not seen
 * it yet) sends the source with EVAL, which also caches it for the next EVALSHA.
 */
export async function runScript(send: SendCommand, script: Script, { keys, args }: ScriptCall): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args]
  try {
    return await send(['EVALSHA', script.sha, ...tail])
  } catch (error) {
    if (!isNoScript(error)) throw error
    return await send(['EVAL', script.source, ...tail])
  }
}
