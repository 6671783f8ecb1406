// V8 puts String.prototype in dictionary mode when a library subclasses String (ioredis does, at load),
// which makes every string method call on the verify path several times slower. Building a KeyManager
// turns it back. Checked in a child process, where `%HasFastProperties` (a V8 native) can be called.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

const SCRIPT = `
const fast = new Function('return %HasFastProperties(String.prototype)')
const before = fast()
class VerbatimString extends String {} // what ioredis and node-redis declare when they load
const poisoned = !fast()
const { KeyManager } = await import('./src/index.ts')
const { MemoryStore } = await import('./adapters/memory/index.ts')
new KeyManager({ store: new MemoryStore() })
const afterKeyManager = fast()
class LoadedLater extends String {}
Object.create(String.prototype)
console.log(JSON.stringify({ before, poisoned, afterKeyManager, afterMore: fast(), verbatim: new VerbatimString('x').length + new LoadedLater('yz').length }))
`

describe('string methods stay on V8 fast path', () => {
  it('a KeyManager turns String.prototype back into fast mode after a String subclass made it slow, and it stays so', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', SCRIPT], { cwd: root })
    const seen = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
    expect(seen).toMatchObject({ before: true, afterKeyManager: true, afterMore: true, verbatim: 3 })
    // Where this V8 no longer slows String.prototype down, the repair has nothing to do; here it did.
    if (process.versions.node.startsWith('20.')) expect(seen['poisoned']).toBe(true)
  })
})
