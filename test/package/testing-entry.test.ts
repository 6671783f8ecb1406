/**
 * The built `keywarden/testing` entry: it resolves from ESM and CommonJS through the exports map, registers
 * the same cases as the sources with whatever runner it is given, skips by exact name, refuses unknown
 * names and a missing runner with a ConfigError, finds vitest on its own, and fails a broken store.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { CreditAdjustment, CreditsAdjusted, InsertResult, KeyQuery, KeyStore, QuotaCheck, StoredKey, UpdateResult, UsageOutcome, UsageRequest } from '../../src/index.js'
import type * as Testing from '../../src/testing/index.js'
import type * as Memory from '../../adapters/memory/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

// .ci/run builds before testing; a plain local `npm test` builds once if dist/ is missing.
if (!existsSync(`${root}/dist/testing/index.js`)) execFileSync('npx', ['tsup', '--silent'], { cwd: root, stdio: 'inherit' })

const built = (await import(pathToFileURL(`${root}/dist/testing/index.js`).href)) as typeof Testing
const { MemoryStore } = (await import(pathToFileURL(`${root}/dist/adapters/memory/index.js`).href)) as typeof Memory

/** vitest's expect, refusing a second argument as jest's does ("Expect takes at most one argument"). */
const oneArgumentExpect: Testing.RunnerExpect = (...args: unknown[]) => {
  if (args.length > 1) throw new Error('Expect takes at most one argument.')
  return expect(args[0])
}

/** A runner that records what the suite registers and keeps each test's body to run it later. */
function recordingRunner(assert: Testing.RunnerExpect = oneArgumentExpect) {
  const groups: string[] = []
  const tests: { name: string; body: () => Promise<void> }[] = []
  const skipped: string[] = []
  const it = Object.assign((name: string, body: () => Promise<void>) => void tests.push({ name, body }), {
    skip: (name: string) => void skipped.push(name),
  })
  const describe = (name: string, body: () => void) => {
    groups.push(name)
    body()
  }
  return { groups, tests, skipped, runner: { describe, it, expect: assert } }
}

/** The same recorder for a child process, which prints what it recorded as JSON. */
const RECORDER = `
  function recorder() {
    const recorded = { groups: [], tests: [], skipped: [] }
    const it = Object.assign((name) => recorded.tests.push(name), { skip: (name) => recorded.skipped.push(name) })
    const runner = { describe: (name, body) => { recorded.groups.push(name); body() }, it, expect: () => { throw new Error('not run') } }
    return { recorded, runner }
  }
  function caught(run) {
    try { run() } catch (error) { return { config: error instanceof ConfigError, code: error.code, issues: error.issues, message: error.message } }
    return null
  }
  const good = recorder()
  describeKeyStore('memory', () => new MemoryStore(), { ...good.runner, skip: ['list: status active'] })
  const typo = recorder()
  const unknownSkip = caught(() => describeKeyStore('typo', () => new MemoryStore(), { ...typo.runner, skip: ['list: status active', 'list: staus active'] }))
  const noRunner = caught(() => describeKeyStore('alone', () => new MemoryStore()))
  console.log(JSON.stringify({ recorded: good.recorded, unknownSkip, noRunner }))
`

function runNode(args: string[]): ChildReport {
  return JSON.parse(execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as ChildReport
}

interface ChildReport {
  recorded: { groups: string[]; tests: string[]; skipped: string[] }
  unknownSkip: { config: boolean; code: string; issues: unknown; message: string } | null
  noRunner: { config: boolean; code: string; issues: { path: string[] }[]; message: string } | null
}

/** Every case name, as the sources register them. */
function sourceCaseNames(): string[] {
  const { tests, skipped, runner } = recordingRunner()
  built.describeKeyStore('names', () => new MemoryStore(), runner)
  return [...tests.map((test) => test.name), ...skipped].sort()
}

describe('keywarden/testing, built', () => {
  const names = sourceCaseNames()

  it.each([
    ['ESM', ['--input-type=module', '-e', `import { ConfigError } from 'keywarden'; import { MemoryStore } from 'keywarden/adapters/memory'; import { describeKeyStore } from 'keywarden/testing'; ${RECORDER}`]],
    ['CommonJS', ['--input-type=commonjs', '-e', `const { ConfigError } = require('keywarden'); const { MemoryStore } = require('keywarden/adapters/memory'); const { describeKeyStore } = require('keywarden/testing'); ${RECORDER}`]],
  ])('resolves from %s and registers every case with the runner it is passed, skipping by exact name', (_, args) => {
    const { recorded, unknownSkip, noRunner } = runNode(args)
    expect(recorded.groups).toEqual(['KeyStore conformance: memory'])
    expect(recorded.skipped).toEqual(['list: status active'])
    expect([...recorded.tests, ...recorded.skipped].sort()).toEqual(names)
    // A misspelt skip fails the suite, naming its position, not its text.
    expect(unknownSkip).toEqual({
      config: true,
      code: 'config_invalid',
      issues: [{ path: ['skip', 1], message: 'names no conformance test' }],
      message: 'Invalid keywarden options: skip[1]: names no conformance test',
    })
    // Outside any runner: a ConfigError that says what to pass.
    expect(noRunner).toMatchObject({ config: true, code: 'config_invalid' })
    expect(noRunner?.issues.map((issue) => issue.path)).toEqual([['describe'], ['it'], ['expect']])
    expect(noRunner?.message).toContain('describeKeyStore(name, createStore, { describe, it, expect })')
  })

  it('names every case once, among them the tenant quota cases', () => {
    expect(new Set(names).size).toBe(names.length)
    expect(names).toContain('quota: the same owner in two tenants and in no tenant has three independent quotas')
    expect(names).toContain('quota: revoking a key in one tenant frees a slot only in that tenant')
  })

  it('uses global describe, it and expect (jest, vitest globals) when none are passed, and passed ones first', () => {
    const globals = recordingRunner()
    const passed = recordingRunner()
    const holder = globalThis as Record<string, unknown>
    Object.assign(holder, globals.runner)
    try {
      built.describeKeyStore('from globals', () => new MemoryStore())
      built.describeKeyStore('passed', () => new MemoryStore(), { describe: passed.runner.describe, it: passed.runner.it })
    } finally {
      for (const name of ['describe', 'it', 'expect']) delete holder[name]
    }
    expect(globals.groups).toEqual(['KeyStore conformance: from globals'])
    expect(globals.tests.map((test) => test.name).sort()).toEqual(names)
    expect(passed.groups).toEqual(['KeyStore conformance: passed'])
    expect(passed.tests).toHaveLength(names.length)
  })

  it('refuses arguments that cannot work, naming each', () => {
    const { runner } = recordingRunner()
    const call = () => built.describeKeyStore('', 42 as never, { ...runner, skip: 'all' as never, teardown: true as never })
    expect(call).toThrow(expect.objectContaining({ code: 'config_invalid' }))
    expect(() => call()).toThrow('name: must be a non-empty string; createStore: must be a function that returns a fresh store; skip: must be an array of test names; teardown: must be a function')
  })

  it('runs beforeTeardown with the store and the case name, then the teardown, even when beforeTeardown throws', async () => {
    const { tests, runner } = recordingRunner()
    const calls: string[] = []
    built.describeKeyStore('hooks', () => new MemoryStore(), {
      ...runner,
      beforeTeardown: (store, testName) => {
        calls.push(`before ${testName} ${store instanceof MemoryStore}`)
        throw new Error('dump failed')
      },
      teardown: () => void calls.push('teardown'),
    })
    const first = tests[0]!
    await expect(first.body()).rejects.toThrow('dump failed')
    expect(calls).toEqual([`before ${first.name} true`, 'teardown'])
  })

  it('passes the memory store with an expect that takes one argument, as jest\'s', async () => {
    const { tests, runner } = recordingRunner()
    built.describeKeyStore('memory', () => new MemoryStore(), runner)
    const failed: string[] = []
    for (const test of tests) await test.body().catch((error: unknown) => failed.push(`${test.name}: ${String(error)}`))
    expect(failed).toEqual([])
    expect(tests).toHaveLength(names.length)
  })

  it('fails a store whose quota ignores the tenant, in the tenant cases and nowhere else', async () => {
    const { tests, runner } = recordingRunner()
    built.describeKeyStore('tenant-blind', () => new TenantBlindStore(new MemoryStore()), { ...runner, audit: false })
    const failed: string[] = []
    for (const test of tests) await test.body().catch(() => failed.push(test.name))
    expect(failed.sort()).toEqual([
      'manager: the same owner has a quota of its own in each tenant',
      'quota: of 48 parallel inserts for one owner in two tenants and in none, against a limit of 2, exactly 2 succeed in each',
      'quota: revoking a key in one tenant frees a slot only in that tenant',
      'quota: the same owner in two tenants and in no tenant has three independent quotas',
    ])
  })
})

// Registered with no runner passed: the suite finds vitest's own module (this config has no globals).
describe('keywarden/testing, built, inside vitest', () => {
  it('has no global describe: what follows found vitest through its module', () => {
    expect('describe' in globalThis).toBe(false)
  })
})
built.describeKeyStore('memory (built entry, vitest found on its own)', () => new MemoryStore())

/**
 * A broken store, as 0.1.0-era stores were: its quota counts the owner's keys in every tenant. Inserts
 * take turns, so it is wrong only about tenants, not about races.
 */
class TenantBlindStore implements KeyStore {
  private turn: Promise<unknown> = Promise.resolve()

  constructor(private readonly inner: Memory.MemoryStore) {}

  // Its counters are the memory store's, and right: only the tenant cases may fail.
  consumeUsage(request: UsageRequest): Promise<UsageOutcome> {
    return this.inner.consumeUsage(request)
  }
  adjustCredits(change: CreditAdjustment): Promise<CreditsAdjusted> {
    return this.inner.adjustCredits(change)
  }

  insert(record: StoredKey, quota: QuotaCheck | null): Promise<InsertResult> {
    const next = this.turn.then(async () => {
      if (quota === null) return this.inner.insert(record, null)
      if ((await this.inner.get(record.id)) !== null) return 'id_taken'
      const held = await this.inner.list({ ownerId: quota.ownerId, now: 0, order: 'asc', limit: 1_000_000 })
      if (held.filter((key) => key.revokedAt === null).length >= quota.limit) return 'quota_exceeded'
      return this.inner.insert(record, null)
    })
    this.turn = next.catch(() => undefined)
    return next
  }
  get(id: string): Promise<StoredKey | null> {
    return this.inner.get(id)
  }
  update(record: StoredKey, expectedVersion: number): Promise<UpdateResult> {
    return this.inner.update(record, expectedVersion)
  }
  delete(id: string): Promise<boolean> {
    return this.inner.delete(id)
  }
  list(query: KeyQuery): Promise<StoredKey[]> {
    return this.inner.list(query)
  }
  touch(id: string, at: number): Promise<void> {
    return this.inner.touch(id, at)
  }
}
