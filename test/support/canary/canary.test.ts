/**
 * Tests of the leak canary itself: the scanners (secrets, stored hashes, peppers) find every form of a
 * leak and nothing else, the end-of-run scan reports hits without the value, and the hooks of setup.ts
 * really see the library in this very run (so a refactor that silently blinds the canary fails here).
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
import { MemoryStore } from '../../../adapters/memory/index.js'
import { StoreError, ValidationError, type InvalidationChannel, type KeyStore } from '../../../src/index.js'
import { encodeBase62 } from '../../../src/token/base62.js'
import { PEPPER, setup } from '../../helpers.js'
import { rawDump } from './dump.js'
import { scanRun } from './global.js'
import { HashIndex, redactHashes, storedHashesIn, type HashNeedle } from './hash-scan.js'
import { exposeOnPurpose, recordHttpResponse } from './index.js'
import { PepperIndex, pepperFingerprint, weakPepper, type PepperNeedle } from './pepper-scan.js'
import { fingerprint, LeakIndex, redact, type Needle } from './scan.js'
import { recordedSoFar, sinkOpen, type Entry } from './sink.js'
import { collectTestPeppers, pepperLiteralsIn } from './test-peppers.js'
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

/** A stored hash shaped like a real one; never written to a hooked store, so the run-wide scan does not know it. */
function hashNeedle(digest = randomBytes(32).toString('hex')): HashNeedle {
  return { digest, stored: `kw1$hmac-sha256$default$${digest}`, writtenAt: 'a.test.ts > writes' }
}

/** A pepper shaped like the suite's; the canary's own files are not read for peppers, so the run-wide scan does not know it. */
function pepperNeedle(text = `canary-self-test-${randomBytes(12).toString('base64url')}`): PepperNeedle {
  return { bytes: Buffer.from(text, 'utf8'), source: 'test/x.test.ts:1' }
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

describe('the hash scanner', () => {
  const n = hashNeedle()
  const index = new HashIndex([n, hashNeedle(), hashNeedle()])

  it('collects every stored hash of a store write, previous hashes included', () => {
    const previous = hashNeedle()
    const write = JSON.stringify({ id: 'K', hash: n.stored, previousHash: previous.stored, metadata: { note: 'kw1$not-a-hash' } })
    expect(storedHashesIn(write)).toEqual([
      { stored: n.stored, digest: n.digest },
      { stored: previous.stored, digest: previous.digest },
    ])
    expect(storedHashesIn(`'kw1$sha256$-$${n.digest.toUpperCase()}'`)).toEqual([{ stored: `kw1$sha256$-$${n.digest.toUpperCase()}`, digest: n.digest }])
  })

  it.each([
    ['the stored form', () => `Failing row contains (K, CI, ${n.stored}, null).`, 'hash'],
    ['the bare digest', () => `Key (hash)=(${n.digest}) already exists.`, 'digest'],
    ['the digest upper-cased', () => `digest ${n.digest.toUpperCase()}`, 'digest'],
    ['39 hex digits of the digest', () => `truncated ${n.digest.slice(1, 40)}…`, 'digest fragment'],
    ['the stored form as node prints a Buffer', () => inspect(Buffer.from(n.stored)), 'hex-encoded'],
    ['the digest as hex of its characters', () => Buffer.from(n.digest).toString('hex'), 'hex-encoded'],
  ])('finds %s', (_, text, form) => {
    expect(index.scan(text()).map((hit) => [hit.needle.digest, hit.form])).toEqual([[n.digest, form]])
  })

  it.each([
    ['24 hex digits of the digest', () => n.digest.slice(0, 24)],
    ['the tag of the stored form', () => n.stored.slice(0, 24)],
    ['a digest never written', () => hashNeedle().stored],
    ['a masked hash', () => "The key store failed during 'insert': [redacted hash]"],
  ])('ignores %s', (_, text) => {
    expect(index.scan(text())).toEqual([])
  })

  it('finds nothing in a megabyte of random hex, base64 and UUIDs', () => {
    const big = new HashIndex(Array.from({ length: 2000 }, () => hashNeedle()))
    const text = Array.from({ length: 4000 }, (_, i) => {
      const bytes = randomBytes(96)
      return [bytes.toString('hex'), bytes.toString('base64'), crypto.randomUUID(), inspect(bytes)][i % 4]
    }).join(' ')
    expect(big.scan(text)).toEqual([])
  })

  it('redacts every form, by fingerprint', () => {
    const redacted = redactHashes(`a ${n.stored} b ${n.digest.toUpperCase()} c ${inspect(Buffer.from(n.digest))}`, index)
    expect(index.scan(redacted)).toEqual([])
    expect(redacted).toContain(`kw1$hmac-sha256$default$<hash ${fingerprint(n.digest)}>`)
    expect(redacted.split(`<hash ${fingerprint(n.digest)}>`)).toHaveLength(4)
  })
})

describe('the pepper scanner', () => {
  const n = pepperNeedle()
  const index = new PepperIndex([n, pepperNeedle(), pepperNeedle()])
  const pepper = n.bytes.toString('utf8')

  it.each([
    ['the pepper', () => `options: { pepper: '${pepper}' }`, 'pepper'],
    ['the pepper in hex', () => n.bytes.toString('hex').toUpperCase(), 'hex'],
    ['the pepper as node prints a Buffer', () => inspect(n.bytes), 'hex'],
    ['the pepper in base64 at offset 0', () => n.bytes.toString('base64'), 'base64'],
    ['the pepper in base64 at offset 1', () => Buffer.concat([Buffer.from('x'), n.bytes]).toString('base64'), 'base64'],
    ['the pepper in base64url at offset 2', () => Buffer.concat([Buffer.from('xy'), n.bytes, Buffer.from('z')]).toString('base64url'), 'base64'],
  ])('finds %s', (_, text, form) => {
    expect(index.scan(text()).map((hit) => [hit.needle, hit.form])).toEqual([[n, form]])
  })

  it.each([
    ['its first half', () => pepper.slice(0, pepper.length / 2)],
    ['another pepper', () => pepperNeedle().bytes.toString('utf8')],
    ['its ID and fingerprint', () => `pepper default (${pepperFingerprint(n)})`],
  ])('ignores %s', (_, text) => {
    expect(index.scan(text())).toEqual([])
  })

  it('skips peppers too short or too regular to look for', () => {
    expect(weakPepper(Buffer.from('x'.repeat(32)))).toBe(true)
    expect(weakPepper(Buffer.from('short-pepper'))).toBe(true)
    expect(weakPepper(n.bytes)).toBe(false)
  })

  it('redacts every form, by fingerprint', () => {
    const redacted = index.redact(`a ${pepper} b ${inspect(n.bytes)} c ${n.bytes.toString('base64')}`)
    expect(index.scan(redacted)).toEqual([])
    expect(redacted.split(`<pepper ${pepperFingerprint(n)}>`)).toHaveLength(4)
  })

  it("reads the suite's pepper literals from source, not its environment variables or templates", () => {
    const source = [
      "const keys = new KeyManager({ store, pepper: 'direct-pepper-0123456789abcdef' })",
      'export const FAULT_PEPPER = "constant-pepper-0123456789abcdef"',
      "setup({ pepper: [{ id: 'v2', secret: 'listed-pepper-0123456789abcdef' }, { id: 'v1', secret: PEPPER }] })",
      "new SecretHasher([{ id: 'p', secret: 'hasher-pepper-0123456789abcdef' }])",
      'setup({ pepper: process.env.KEY_PEPPER })',
      'setup({ pepper: `template-${suffix}` })',
      "const other = { secret: 'not-a-pepper-0123456789abcdef' }",
    ].join('\n')
    expect(pepperLiteralsIn(source).map((literal) => literal.value).sort()).toEqual(
      ['constant-pepper-0123456789abcdef', 'direct-pepper-0123456789abcdef', 'hasher-pepper-0123456789abcdef', 'listed-pepper-0123456789abcdef'],
    )
    const helpers = collectTestPeppers(new URL('../../../', import.meta.url).pathname).find((found) => found.bytes.toString('utf8') === PEPPER)
    expect(helpers?.source).toMatch(/^test\/helpers\.ts:\d+$/)
  })
})

describe('the end-of-run scan', () => {
  const directories: string[] = []
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
  })

  const p = pepperNeedle()

  function run(entries: Entry[]): ReturnType<typeof scanRun> {
    const directory = mkdtempSync(join(tmpdir(), 'keywarden-canary-test-'))
    directories.push(directory)
    writeFileSync(join(directory, 'process-1-0.ndjson'), entries.map((entry) => JSON.stringify(entry)).join('\n') + '\n')
    return scanRun(directory, { peppers: [p] })
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

  const h = hashNeedle()
  const written: Entry = { k: 'write', w: 'a.test.ts > writes', d: 'PostgresStore.insert', x: JSON.stringify({ id: 'K', hash: h.stored, previousHash: null }) }

  it('looks for stored hashes everywhere but in storage, and reports them by fingerprint', () => {
    const dump: Entry = { k: 'dump', w: 'a.test.ts', d: 'postgres table', x: `[{"hash":"${h.stored}"}]` }
    const clean = run([...normal, written, dump])
    expect(clean.problems).toEqual([])
    expect(clean.summary).toMatch(/, 1 stored hashes \(1 scanned, 0 exposed on purpose, 0 low-entropy skipped\), 1 test peppers \(1 scanned/)

    const leak: Entry = { k: 'error', w: 'b.test.ts > fails', d: 'KeyManager.create threw', x: `StoreError: ...\ncause: error: new row violates check constraint\n  detail: 'Failing row contains (K, ${h.stored}).'` }
    const report = run([...normal, written, leak])
    expect(report.problems).toHaveLength(1)
    const [problem] = report.problems
    expect(problem).toContain(`hash ${fingerprint(h.digest)} (first written by a.test.ts > writes) found as hash in error "KeyManager.create threw"`)
    expect(problem).toContain(`<hash ${fingerprint(h.digest)}>`)
    expect(problem).not.toContain(h.digest.slice(0, 16))
    expect(report.summary).toContain('1 LEAKS')
  })

  it('looks for peppers everywhere, storage included, and reports them by fingerprint and source line', () => {
    const pepper = p.bytes.toString('utf8')
    const report = run([...normal, { k: 'dump', w: 'b.test.ts', d: 'redis namespace', x: `{"config":"${pepper}"}` }, { k: 'log', w: 'c.test.ts', d: 'console.log', x: inspect(p.bytes) }])
    expect(report.problems).toHaveLength(2)
    expect(report.problems[0]).toContain(`pepper ${pepperFingerprint(p)} (defined at test/x.test.ts:1) found as pepper in dump "redis namespace"`)
    expect(report.problems[1]).toContain(`found as hex in log "console.log"`)
    for (const problem of report.problems) {
      expect(problem).not.toContain(pepper)
      expect(problem).not.toContain(p.bytes.toString('hex').slice(0, 32))
    }
  })

  it('leaves out a hash exposed on purpose, but not one never written', () => {
    const leak: Entry = { k: 'log', w: 'b.test.ts', d: 'console.log', x: `row ${h.stored}` }
    expect(run([...normal, written, leak, { k: 'allow', w: 'b.test.ts', d: 'prints a row', x: h.digest }]).problems).toEqual([])
    const stray = run([...normal, written, { k: 'allow', w: 'b.test.ts', d: 'typo', x: hashNeedle().digest }]).problems
    expect(stray).toEqual([expect.stringContaining('exposeOnPurpose was given something that was never written to a store')])
  })

  it('fails when secrets were issued but the hooks saw no events or writes', () => {
    expect(run([issued]).problems).toEqual([expect.stringContaining('setup.ts no longer sees the library')])
  })
})

describe('the storage dump', () => {
  it('holds the audit trail, so a secret planted in an entry\'s reason or changes is found', async () => {
    const { keys, store } = setup()
    const inReason = needle()
    const inMetadata = needle()
    const { key } = await keys.create({ name: 'canary', environment: 'live' }, { reason: `pasted by mistake: ${inReason.token}` })
    await keys.update(key.id, { metadata: { note: inMetadata.secret } })
    const dump = (await rawDump(store))!
    expect(dump).toContain('"action":"created"')
    const hits = new LeakIndex([inReason, inMetadata]).scan(dump)
    expect(new Set(hits.map((hit) => hit.needle.secret))).toEqual(new Set([inReason.secret, inMetadata.secret]))
    // The same needles in what keys.audit() returns, which the method-result hook scans.
    const listed = JSON.stringify((await keys.audit()).items)
    expect(new LeakIndex([inReason, inMetadata]).scan(listed).length).toBeGreaterThanOrEqual(2)
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

  it('record the stored hashes of every write, for the end-of-run scan', async () => {
    const recorded = since()
    const { keys } = setup()
    const { key } = await keys.create({ name: 'hashes', environment: 'live' })
    await keys.rotate(key.id, { gracePeriod: '1h' })
    const writes = recorded().filter((entry) => entry.k === 'write')
    const [created, rotated] = writes.map((entry) => storedHashesIn(entry.x).map((found) => found.digest))
    expect(created).toHaveLength(1)
    // The rotation writes the new hash and keeps the old one as previousHash.
    expect(rotated).toEqual([expect.not.stringMatching(created![0]!), created![0]])
  })

  it('record what the manager hands to usage.onError and, from its invalidation channel, to cache.onError', async () => {
    const recorded = since()
    const inner = new MemoryStore()
    const failingTouch: KeyStore = {
      insert: (record, quota) => inner.insert(record, quota),
      get: (id) => inner.get(id),
      update: (record, version) => inner.update(record, version),
      delete: (id) => inner.delete(id),
      list: (query) => inner.list(query),
      touch: async () => Promise.reject(new Error('touch refused')),
    }
    const channel: InvalidationChannel = { publish: async () => Promise.reject(new Error('publish refused')), subscribe: async () => async () => {} }
    const reported: unknown[] = []
    const { keys } = setup({ store: failingTouch, usage: { onError: (error) => void reported.push(error) }, cache: { channel, onError: (error) => void reported.push(error) } })
    const { token } = await keys.create({ name: 'reports', environment: 'live' })
    await keys.verify(token)
    await keys.flush()
    await new Promise((resolve) => setImmediate(resolve))
    expect(reported).toHaveLength(2)
    const errors = recorded().filter((entry) => entry.k === 'error')
    expect(errors.find((entry) => entry.d === 'error handed to usage.onError')?.x).toContain("The key store failed during 'touch'")
    expect(errors.find((entry) => entry.d === 'error handed to cache.onError (channel.publish rejected)')?.x).toContain('publish refused')
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
