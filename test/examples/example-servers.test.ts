import { afterEach, describe, expect, it } from 'vitest'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGTERM')
})

/** Starts an example server as the README does (tsx, PORT=0) and returns the curl lines it prints. */
async function startExample(file: string): Promise<string[]> {
  const child = spawn(process.execPath, [`${root}/node_modules/tsx/dist/cli.mjs`, file], {
    cwd: root,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not start:\n${output}`)), 30_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('/revoke')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('exit', (code) => reject(new Error(`example exited with ${code}:\n${output}`)))
  })
  return output.split('\n').filter((line) => line.startsWith('curl '))
}

/** Runs a printed curl line in a shell, as a reader would, and returns status and parsed body. */
function runCurl(line: string): { status: number; body: Record<string, unknown> } {
  const output = execFileSync('bash', ['-c', `${line} -w '\\n%{http_code}'`], { encoding: 'utf8' })
  const split = output.lastIndexOf('\n')
  return { status: Number(output.slice(split + 1)), body: JSON.parse(output.slice(0, split) || '{}') }
}

describe.each([
  ['Express', 'examples/express-server.ts'],
  ['Koa', 'examples/koa-server.ts'],
])('the %s example server', (_, file) => {
  it('answers every curl line it prints as documented', async () => {
    const lines = await startExample(file)
    expect(lines).toHaveLength(11)
    const results = lines.map(runCurl)
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
    expect(runCurl(lines[6]!.replace(/-H "X-Admin-Token: [^"]+"/, ''))).toMatchObject({ status: 401, body: { code: 'admin_required' } })
  }, 60_000)
})
