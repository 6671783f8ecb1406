/**
 * Issue 16, the CLI: `keywarden scan <paths…>` as a pre-commit hook or CI step runs it. It finds tokens
 * of any prefix and environment without a configuration (the checksum confirming each), only the
 * configured prefix with one, in any file under the paths but .git and node_modules; names each by
 * file and line, never printing a whole token or its secret; exits 1 when it found one, 0 when not, 2
 * when a path cannot be read.
 */
import { randomInt } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { BASE62_ALPHABET } from '../../src/token/base62.js'
import { formatToken } from '../../src/token/format.js'
import { expectNoSecretOf, expectOneLineError, useBuiltBin, type BinResult } from './support/bin.js'

const bin = useBuiltBin()

function base62(length: number): string {
  return Array.from({ length }, () => BASE62_ALPHABET[randomInt(62)]).join('')
}

/** A well-formed token (valid checksum) of no store: the scanner needs nothing more. */
function makeToken(prefix: string, environment: string): string {
  return formatToken({ prefix, environment, keyId: base62(16), secret: base62(32) })
}

/** The same token with its last checksum character changed: same shape, wrong checksum. */
function corrupt(token: string): string {
  const last = token.at(-1)!
  return token.slice(0, -1) + (last === 'a' ? 'b' : 'a')
}

const acme = makeToken('acme', 'live')
const acmeTest = makeToken('acme', 'test')
const shop = makeToken('shop', 'prod')
const encoded = makeToken('acme', 'live')
const glued = makeToken('acme', 'live')
const ignored = makeToken('acme', 'live')
const pairA = makeToken('kw', 'live')
const pairB = makeToken('kw', 'test')
const big = makeToken('big', 'live')
const escaped = makeToken('kw', 'live')
const ALL = [acme, acmeTest, shop, encoded, glued, ignored, pairA, pairB, big, escaped]

const short = (token: string) => `${token.split('_').slice(0, 2).join('_')}_…${token.slice(-4)}`

let repo: string
/** Line of `big` in big/huge.log, a file large enough to be read in blocks. */
let bigLine: number

beforeAll(() => {
  repo = mkdtempSync(join(bin.workDir(), 'repo-'))
  const files: Record<string, string> = {
    '.env': `# local settings\nDATABASE_URL=postgres://localhost/app\nACME_KEY=${acme}\n`,
    'config/app.json': `{\n  "key": "${shop}",\n  "other": "${acmeTest}"\n}\n`,
    'docs/guide.md': [
      'Tokens look like this (not real ones):',
      `- a typo: ${corrupt(acme)}`,
      `- glued to a word: x${glued}`,
      `- in a URL: https://example.com/?key%3D${encoded}`,
      '',
    ].join('\n'),
    // A JSON string escape right before the token: `\n`, whose `n` could pass for part of a prefix.
    'logs/app.log': `{"msg":"retrying with\\n${escaped}"}\n`,
    'src/two.ts': `const keys = [${JSON.stringify(pairA)},${JSON.stringify(pairB)}]\n`,
    'node_modules/pkg/index.js': `module.exports = '${ignored}'\n`,
    '.git/config': `[remote] token = ${ignored}\n`,
    'fixtures/sample.txt': `${ignored}\n`,
  }
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(repo, name, '..'), { recursive: true })
    writeFileSync(join(repo, name), text)
  }
  // 9 MiB of log lines, the token near the end: past the size read in one piece.
  const line = 'GET /health 200 0.4ms user-agent=kube-probe/1.29 '.padEnd(95, '.') + '\n'
  const count = Math.ceil((9 * 1024 * 1024) / line.length)
  bigLine = count + 1
  mkdirSync(join(repo, 'big'))
  writeFileSync(join(repo, 'big/huge.log'), line.repeat(count) + `Authorization: Bearer ${big}\n` + line.repeat(3))
})

function expectNoWholeToken(result: BinResult): void {
  expectNoSecretOf(result.stdout + result.stderr, ALL, 'scan output')
}

describe('keywarden scan', () => {
  it('finds tokens of any prefix and environment without a config, by file and line, exit code 1', async () => {
    const result = await bin.run(['scan', '.'], { cwd: repo })
    expect(result.code, result.stderr).toBe(1)
    expect(result.stdout.split('\n')).toEqual([
      `.env:3: ${short(acme)}`,
      `big/huge.log:${bigLine}: ${short(big)}`,
      `config/app.json:2: ${short(shop)}`,
      `config/app.json:3: ${short(acmeTest)}`,
      `docs/guide.md:4: ${short(encoded)}`,
      `fixtures/sample.txt:1: ${short(ignored)}`,
      `logs/app.log:1: ${short(escaped)}`,
      `src/two.ts:1: ${short(pairA)}`,
      `src/two.ts:1: ${short(pairB)}`,
      '',
    ])
    expect(result.stderr).toMatch(/^Found 9 tokens in 7 files \(7 files scanned\)\./)
    expectNoWholeToken(result)
  }, 60_000)

  it('gives columns and key IDs with --json, and skips --exclude names', async () => {
    const result = await bin.run(['scan', '--json', '--exclude', 'fixtures,big', '--exclude', 'config', '.'], { cwd: repo })
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: '' })
    const report = JSON.parse(result.stdout) as { findings: Record<string, unknown>[]; filesScanned: number; unreadable: unknown[] }
    expect(report.filesScanned).toBe(4)
    expect(report.unreadable).toEqual([])
    expect(report.findings).toEqual([
      { file: '.env', line: 3, column: 10, prefix: 'acme', environment: 'live', keyId: acme.slice(10, 26), redacted: short(acme) },
      { file: 'docs/guide.md', line: 4, column: 40, prefix: 'acme', environment: 'live', keyId: encoded.slice(10, 26), redacted: short(encoded) },
      { file: 'logs/app.log', line: 1, column: 24, prefix: 'kw', environment: 'live', keyId: escaped.slice(8, 24), redacted: short(escaped) },
      { file: 'src/two.ts', line: 1, column: 16, prefix: 'kw', environment: 'live', keyId: pairA.slice(8, 24), redacted: short(pairA) },
      { file: 'src/two.ts', line: 1, column: 82, prefix: 'kw', environment: 'test', keyId: pairB.slice(8, 24), redacted: short(pairB) },
    ])
    expectNoWholeToken(result)
  })

  it('looks only for the configured prefix (and environments) with a config file', async () => {
    const dir = mkdtempSync(join(bin.workDir(), 'configured-'))
    writeFileSync(join(dir, 'keywarden.config.json'), JSON.stringify({ prefix: 'acme', environments: ['test'] }))
    writeFileSync(join(dir, 'shop.json'), JSON.stringify({ prefix: 'shop' }))
    const [byDefault, byOption] = await Promise.all([
      bin.run(['scan', join(repo, 'config'), join(repo, '.env')], { cwd: dir }),
      bin.run(['scan', '--config', 'shop.json', join(repo, 'config')], { cwd: dir }),
    ])
    expect(byDefault.code).toBe(1)
    expect(byDefault.stdout).toBe(`${join(repo, 'config/app.json')}:3: ${short(acmeTest)}\n`)
    expect(byOption.code).toBe(1)
    expect(byOption.stdout).toBe(`${join(repo, 'config/app.json')}:2: ${short(shop)}\n`)
    expectNoWholeToken(byDefault)
    expectNoWholeToken(byOption)
  })

  it('exits 0 when it finds none (typos, tokens glued to words, skipped directories), 2 for a path it cannot read', async () => {
    const clean = mkdtempSync(join(bin.workDir(), 'clean-'))
    writeFileSync(join(clean, 'notes.md'), `a typo: ${corrupt(acme)}\nglued: x${glued}\nfollowed: ${shop}x\n`)
    for (const skipped of ['node_modules', '.git']) {
      mkdirSync(join(clean, skipped))
      writeFileSync(join(clean, skipped, 'file'), `${ignored}\n`)
    }
    const [none, named, missing] = await Promise.all([
      bin.run(['scan', '.'], { cwd: clean }),
      bin.run(['scan', 'node_modules/file'], { cwd: clean }),
      bin.run(['scan', 'no-such-file'], { cwd: clean }),
    ])
    expect(none).toEqual({ code: 0, stdout: '', stderr: 'No tokens found (1 file scanned).\n' })
    // A path given by name is scanned even where a walk would skip it.
    expect(named).toMatchObject({ code: 1, stdout: `node_modules/file:1: ${short(ignored)}\n` })
    expectOneLineError(missing, 2, /^keywarden: cannot read 'no-such-file' \(ENOENT\)$/m)
    expectNoWholeToken(named)
  })
})
