// An example server with an empty or guessable ADMIN_TOKEN must not start: with an empty one, every
// request without the header used to pass the admin check and could mint admin keys.
import { describe, expect, it } from 'vitest'
import { exampleServers, runUntilExit } from './example-process.js'

const refusedTokens = [
  ['empty', ''],
  ['5 characters', 'short'],
  ['15 characters', 'Kq7xW2mP9vL4tR8'],
  ['16 characters with a space', 'Kq7xW2mP 9vL4tR8'],
] as const

describe.each(exampleServers)('the %s example server', (_, file) => {
  it.each(refusedTokens)('refuses to start with an ADMIN_TOKEN that is %s, saying why without the value', async (_label, token) => {
    const run = await runUntilExit(file, { ADMIN_TOKEN: token })
    expect(run.started).toBe(false)
    expect(run.code).not.toBe(0)
    expect(run.code).not.toBeNull()
    expect(run.stderr).toMatch(/Refusing to start: ADMIN_TOKEN must be at least 16 visible ASCII characters/)
    if (token) expect(run.stderr + run.stdout).not.toContain(token)
    expect(run.stdout).not.toContain('listening on')
  }, 60_000)
})
