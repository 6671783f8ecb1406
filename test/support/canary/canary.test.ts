/**
 * Tests of the leak canary itself: the scanner finds every form of a leak and nothing else, the
 * end-of-run scan reports hits without the secret, and the hooks of setup.ts really see the library in
 * this very run (so a refactor that silently blinds the canary fails here).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { StoreError, ValidationError } from '../../../src/index.js'
import { encodeBase62 } from '../../../src/token/base62.js'
import { setup } from '../../helpers.js'
import { scanRun } from './global.js'
import { exposeOnPurpose, recordHttpResponse } from './index.js'
import { fingerprint, LeakIndex, redact, type Needle } from './scan.js'
import { recordedSoFar, sinkOpen, type Entry } from './sink.js'
import { errorText } from './text.js'

function randomSecret(): string {
  let secret = ''
  while (secret.length < 32) secret += encodeBase62(randomBytes(4).readUInt32BE(), 6)
  return secret.slice(0, 32)
}

/** A needle shaped like a real one; never issued, so the run-wide scan does not know it. */
function needle(secret = randomSecret()): Needle {
  return { secret, token: `acme_live_${'K'.repeat(16)}_${secret}Zz9Zz9`, issuedAt: 'canary.test.ts' }
}

describe('the leak scanner', () => {
  const n = needle('aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF')
  const index = new LeakIndex([n, needle(), needle()])
  const token = n.token
  const secret = n.secret

  it.each([
    ['the token', `Authorization: Bearer ${token}`, 'token'],
    ['the secret', `{"secret":"${secret}"}`, 'secret'],
    ['half the secret', `key ends in ${secret.slice(8, 24)}!`, 'fragment'],
    ['the secret lower-cased', `x-api-key: ${token.toLowerCase()}`, 'case-folded'],
    ['the secret upper-cased, in part', `ID ${secret.slice(3, 30).toUpperCase()}`, 'case-folded'],
    ['the token in hex', Buffer.from(token).toString('hex'), 'hex'],
    ['the token as node prints a Buffer', inspect(Buffer.from(token)), 'hex'],
    ['the token in a Basic credential', `Basic ${Buffer.from(`user:${token}`).toString('base64')}`, 'base64'],
    ['the secret in base64url at offset 1', Buffer.from(`x${secret}`).toString('base64url'), 'base64'],
    ['the secret in base64 at offset 2', Buffer.from(`xy${secret}`).toString('base64'), 'base64'],
  ])('finds %s', (_, text, form) => {
    const hits = index.scan(text)
    expect(hits.map((hit) => [hit.needle.secret, hit.form])).toEqual([[secret, form]])
  })

  it.each([
    ['the displayed start (8 characters)', `shown as ${secret.slice(0, 8)}…`],
    ['15 characters of the secret', secret.slice(10, 25)],
    ['the public parts of the token', token.slice(0, 27)],
    ['a forged token with another secret', `acme_live_${'K'.repeat(16)}_${'f'.repeat(32)}Zz9Zz9`],
  ])('ignores %s', (_, text) => {
    expect(index.scan(text)).toEqual([])
  })

  it('finds nothing in a megabyte of random base62, hex and base64', () => {
    const big = new LeakIndex(Array.from({ length: 200 }, () => needle()))
    const text = Array.from({ length: 4000 }, (_, i) => {
      const bytes = randomBytes(64)
      return [bytes.toString('hex'), bytes.toString('base64'), randomSecret() + randomSecret(), `line ${i}`][i % 4]
    }).join(' ')
    expect(big.scan(text)).toEqual([])
  })

  it('redacts every form it can read, and the fingerprint gives nothing away', () => {
    const text = `a ${token} b ${secret.toUpperCase()} c ${secret.slice(4, 22)} d`
    const redacted = redact(text, index)
    expect(redacted).toContain(`<token ${fingerprint(secret)}>`)
    expect(index.scan(redacted)).toEqual([])
    expect(fingerprint(secret)).toMatch(/^[0-9a-f]{12}$/)
    expect(secret.toLowerCase()).not.toContain(fingerprint(secret).slice(0, 6))
  })

  it('walks the whole cause chain of an error', () => {
    const error = new StoreError('get', { cause: new AggregateError([new Error('deep inner detail')], 'outer', { cause: new Error('cause of cause') }) })
    const text = errorText(error)
    for (const part of ["The key store failed during 'get'", 'deep inner detail', 'cause of cause', 'StoreError']) expect(text).toContain(part)
    const hostile = new Error('x')
    Object.defineProperty(hostile, 'message', { get: () => { throw new Error('no') } })
    expect(() => errorText(hostile)).not.toThrow()
  })
})

describe('the end-of-run scan', () => {
  const directories: string[] = []
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
  })

  function run(entries: Entry[]): ReturnType<typeof scanRun> {
    const directory = mkdtempSync(join(tmpdir(), 'keywarden-canary-test-'))
    directories.push(directory)
    writeFileSync(join(directory, 'process-1-0.ndjson'), entries.map((entry) => JSON.stringify(entry)).join('\n') + '\n')
    return scanRun(directory)
  }

  const n = needle()
  const issued: Entry = { k: 'secret', w: 'a.test.ts > issues', d: 'KeyManager.create', x: n.secret, t: n.token }
  const normal: Entry[] = [
    issued,
    { k: 'event', w: 'a.test.ts > issues', d: 'event created', x: '{"type":"created"}' },
    { k: 'write', w: 'a.test.ts > issues', d: 'MemoryStore.insert', x: '{"id":"K"}' },
    { k: 'result', w: 'a.test.ts > issues', d: 'KeyManager.create returned', x: '{"key":{}}' },
  ]

  it('passes a clean run and counts what it scanned', () => {
    const report = run([...normal, { k: 'log', w: 'b.test.ts', d: 'console.log', x: 'hello' }])
    expect(report.problems).toEqual([])
    expect(report.summary).toMatch(/1 secrets \(1 scanned.* 1 log lines, 1 events.* 1 store writes, 1 method results.*no leak/)
  })

  it('reports a leak with where it was issued and found, by fingerprint only', () => {
    const report = run([...normal, { k: 'log', w: `b.test.ts > logs ${n.token}`, d: 'console.error', x: `oops: request had ${n.token}` }])
    expect(report.problems).toHaveLength(1)
    const [problem] = report.problems
    expect(problem).toContain(`secret ${fingerprint(n.secret)} (issued by a.test.ts > issues) found as token in log "console.error"`)
    expect(problem).toContain(`<token ${fingerprint(n.secret)}>`)
    expect(problem).not.toContain(n.secret.slice(0, 16))
    expect(report.summary).toContain('1 LEAKS')
  })

  it('leaves out what a test exposed on purpose, but not what it never issued', () => {
    const leak: Entry = { k: 'http', w: 'b.test.ts', d: 'response', x: `echo ${n.token}` }
    expect(run([...normal, leak, { k: 'allow', w: 'b.test.ts', d: 'echo test', x: n.secret }]).problems).toEqual([])
    const stray = run([...normal, { k: 'allow', w: 'b.test.ts', d: 'typo', x: needle().secret }]).problems
    expect(stray).toEqual([expect.stringContaining('exposeOnPurpose was given something that was never issued')])
  })

  it('fails when secrets were issued but the hooks saw no events or writes', () => {
    expect(run([issued]).problems).toEqual([expect.stringContaining('setup.ts no longer sees the library')])
  })
})

describe.runIf(sinkOpen())('the hooks in this run', () => {
  const since = () => {
    const start = recordedSoFar().length
    return () => recordedSoFar().slice(start)
  }

  it('record the secret of every issued token, and the events, writes and results around it', async () => {
    const recorded = since()
    const { keys } = setup()
    const { key, token } = await keys.create({ name: 'canary', environment: 'live' })
    const rotated = await keys.rotate(key.id)
    const entries = recorded()
    const secrets = entries.filter((entry) => entry.k === 'secret')
    expect(secrets.map((entry) => [entry.x, entry.t])).toEqual([
      [token.slice(-38, -6), token],
      [rotated.token.slice(-38, -6), rotated.token],
    ])
    expect(entries.filter((entry) => entry.k === 'event').map((entry) => entry.d)).toEqual(['event created', 'event rotated'])
    expect(entries.filter((entry) => entry.k === 'write').map((entry) => entry.d)).toEqual(['MemoryStore.insert', 'MemoryStore.update'])
    const results = entries.filter((entry) => entry.k === 'result')
    expect(results.map((entry) => entry.d)).toEqual(['KeyManager.create returned', 'KeyManager.rotate returned'])
    // The issued token itself is not corpus: returning it is the method's job.
    expect(results.some((entry) => entry.x.includes(token.slice(-38, -6)))).toBe(false)
  })

  it('record errors thrown by the KeyManager with their message', async () => {
    const recorded = since()
    const { keys } = setup()
    await expect(keys.create({ name: '' })).rejects.toBeInstanceOf(ValidationError)
    const [error] = recorded().filter((entry) => entry.k === 'error')
    expect(error?.d).toBe('KeyManager.create threw')
    expect(error?.x).toContain('Invalid input: name')
  })

  it('record console output and HTTP responses sent by a server in this process', async () => {
    const recorded = since()
    const marker = `canary-self-test-${randomSecret().slice(0, 8)}`
    console.info(`[leak canary self-test] ${marker}`)
    const server = createServer((_req, res) => res.writeHead(418, { 'X-Marker': marker }).end(`body ${marker}`)).listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x?q=1`)
      expect(response.status).toBe(418)
      await response.text()
    } finally {
      server.close()
    }
    const entries = recorded()
    expect(entries.find((entry) => entry.k === 'log' && entry.x.includes(marker))?.d).toBe('console.info')
    const http = entries.find((entry) => entry.k === 'http')
    expect(http?.d).toBe('server response GET /x -> 418')
    expect(http?.x).toMatch(new RegExp(`^HTTP/1.1 418 .*x-marker: ${marker}.*body ${marker}$`, 'is'))
  })

  it('lets a test expose a token on purpose, explicitly', async () => {
    const { keys } = setup()
    const { token } = await keys.create({ name: 'exposed', environment: 'test' })
    // This response is scanned at the end of the run; the exposure keeps it from failing the run.
    exposeOnPurpose(token, 'canary self-test: an HTTP echo of the token, to prove the opt-out works')
    recordHttpResponse(`HTTP/1.1 200 OK\r\n\r\n{"echo":"${token}"}`, 'self-test echo')
    expect(recordedSoFar().filter((entry) => entry.k === 'allow').at(-1)?.x).toBe(token.slice(-38, -6))
  })
})
