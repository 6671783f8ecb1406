// The README's quick start, line by line: start each example server and run every curl line it prints.
import { afterEach, describe, expect, it } from 'vitest'
import { exampleServers, runCurl, startExample, type RunningExample } from './example-process.js'

const running: RunningExample[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()))
})

describe.each(exampleServers)('the %s example server', (_, file) => {
  it('answers every curl line it prints as documented', async () => {
    const server = await startExample(file)
    running.push(server)
    const lines = server.curlLines
    expect(lines).toHaveLength(11)
    const results = lines.map((line) => runCurl(line))
    const [health, read, readerWrites, writerWrites, anonymous, created, listed, rotated, disabled, enabled, revoked] = results
    expect(health).toEqual({ status: 200, body: { ok: true } })
    expect(read).toMatchObject({ status: 200, body: { owner: 'demo-user', key: 'demo reader' } })
    expect(readerWrites).toMatchObject({ status: 403, body: { code: 'insufficient_scope' } })
    expect(writerWrites).toMatchObject({ status: 201, body: { created: true } })
    expect(anonymous).toMatchObject({ status: 401, body: { code: 'missing_credentials' } })
    expect(created).toMatchObject({ status: 201, body: { key: { name: 'my script', ownerId: 'u1', roles: ['readonly'] }, token: expect.stringMatching(/^acme_live_/) } })
    expect(listed).toMatchObject({ status: 200, body: { items: [expect.anything(), expect.anything()], nextCursor: null } })
    expect(rotated).toMatchObject({ status: 200, body: { token: expect.stringMatching(/^acme_live_/) } })
    expect(disabled).toMatchObject({ status: 200, body: { enabled: false } })
    expect(enabled).toMatchObject({ status: 200, body: { enabled: true } })
    expect(revoked).toMatchObject({ status: 200, body: { revokedAt: expect.any(String) } })
    // After the revoke, the reader's rotated token no longer opens /reports.
    const after = runCurl(lines[1]!.replace(/acme_live_\w+/, (rotated!.body.token as string)))
    expect(after).toMatchObject({ status: 401, body: { code: 'invalid_token' } })
    // The management routes are the host's own: without its admin token they refuse.
    expect(runCurl(lines[6]!.replace(/-H "X-Admin-Token: [^"]+"/, ''))).toMatchObject({ status: 401, body: { code: 'unauthorized' } })
  }, 60_000)
})
