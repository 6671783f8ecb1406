/**
 * The built `keywarden` bin for test/cli: built once per test file from tsup.config.ts's own `cli`
 * entry (same options; ESM only, no types) into node_modules/.cache, so packages resolve as from
 * dist/ and a parallel `npm run build` elsewhere (whose `clean` empties dist/) cannot pull it away
 * mid-run; package.test.ts checks that package.json's `bin` names that entry's output. Spawned with a
 * clean environment, so a developer's KEYWARDEN_* variables never leak into a test.
 *
 * @example
 * ```ts
 * const bin = useBuiltBin()
 * it('prints its version', async () => {
 *   const result = await bin.run(['--version'])
 *   expect(result.code).toBe(0)
 * })
 * ```
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'tsup'
import { afterAll, beforeAll, expect } from 'vitest'
import config from '../../../tsup.config.js'

export const root = fileURLToPath(new URL('../../..', import.meta.url))

/** What one run of the bin did. */
export interface BinResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Options of one run. */
export interface RunOptions {
  /** Variables added to the clean environment. */
  readonly env?: Readonly<Record<string, string>>
  /** The working directory. Default: a fresh empty one per file. */
  readonly cwd?: string
}

/** The bin, once built: its path, and a runner. */
export interface BuiltBin {
  /** The built file (dist/cli.js's twin). */
  readonly path: () => string
  /** An empty directory for this file's runs (and its files). */
  readonly workDir: () => string
  /** Runs `node <bin> ...args`; never rejects for a non-zero exit. */
  readonly run: (args: readonly string[], options?: RunOptions) => Promise<BinResult>
}

/** The `cli` entry of tsup.config.ts: what `npm run build` turns into dist/cli.js. */
export function cliEntry(): string {
  const entry = (config as { entry?: Record<string, string> }).entry?.['cli']
  if (entry === undefined) throw new Error('tsup.config.ts has no `cli` entry')
  return entry
}

// Only what node and the drivers need: never the caller's KEYWARDEN_*, PG*, or NODE_OPTIONS.
const PASSED_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'KEYWARDEN_SQLITE_MODULE'] as const

/** Registers beforeAll (build) and afterAll (remove) in the calling test file. */
export function useBuiltBin(): BuiltBin {
  let dir: string | undefined
  let work: string | undefined
  beforeAll(async () => {
    const cache = join(root, 'node_modules/.cache')
    mkdirSync(cache, { recursive: true })
    dir = mkdtempSync(join(cache, 'keywarden-cli-'))
    work = mkdtempSync(join(dir, 'work-'))
    const options = config as Record<string, unknown>
    await build({ ...options, entry: { cli: cliEntry() }, format: ['esm'], dts: false, sourcemap: false, clean: false, outDir: dir, silent: true, config: false })
  }, 60_000)
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })
  const path = () => join(dir!, 'cli.js')
  return {
    path,
    workDir: () => work!,
    run: (args, options = {}) =>
      new Promise((resolve) => {
        const env: Record<string, string> = {}
        for (const name of PASSED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!
        Object.assign(env, options.env)
        const hook = process.env['KEYWARDEN_SQLITE_MODULE'] ? ['--import', join(root, 'test/cli/support/sqlite-driver.mjs')] : []
        execFile(process.execPath, [...hook, path(), ...args], { cwd: options.cwd ?? work!, env, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
          resolve({ code, stdout, stderr })
        })
      }),
  }
}

/**
 * Checks a failed run: the exit code, nothing on stdout, and exactly one line on stderr, starting
 * `keywarden: ` and matching `message`, with no stack trace.
 */
export function expectOneLineError(result: BinResult, code: number, message: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }, result.stderr).toEqual({ code, stdout: '' })
  expect(result.stderr).toMatch(/^keywarden: [^\n]+\n$/)
  expect(result.stderr).not.toMatch(/\n\s+at /)
  expect(result.stderr).toMatch(message)
}

/**
 * Checks that `text` shows nothing of these tokens but what may be shown: not the token, not its
 * secret, not 16 characters in a row of the secret (`ApiKey.start` shows 4).
 */
export function expectNoSecretOf(text: string, tokens: readonly string[], what: string): void {
  for (const token of tokens) {
    const secret = token.slice(-38, -6)
    const leaked = token.length > 0 && (text.includes(token) || Array.from({ length: secret.length - 15 }, (_, i) => secret.slice(i, i + 16)).some((run) => text.includes(run)))
    expect(leaked, `${what} shows a secret`).toBe(false)
  }
}
