// @ts-check
// keywarden/testing from the tarball, outside the repository, under a runner that is not vitest: the
// conformance suite passes a Map-based store of this project's own under node:test with jest's expect,
// skips what it is told to, fails a deliberately broken store exactly where it is broken, and says
// what to pass when no runner is given. Both module systems resolve the entry.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { ConfigError } from 'keywarden'
import { describeKeyStore } from 'keywarden/testing'
import { MapStore } from './map-store.js'

/**
 * Runs one test file with node:test and reads its TAP report: the cases that passed, failed, were skipped.
 * @param {string} file
 */
function runTests(file) {
  const result = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { encoding: 'utf8' })
  /** @type {{ passed: string[], failed: string[], skipped: string[] }} */
  const outcome = { passed: [], failed: [], skipped: [] }
  for (const line of result.stdout.split('\n')) {
    const match = /^\s*(not ok|ok) \d+ - (.+?)(?: # (SKIP).*)?$/.exec(line)
    // The suite's group and (on some Node versions) the file itself are reported as tests too.
    if (!match || match[2]?.startsWith('KeyStore conformance:') || match[2]?.endsWith('.test.js')) continue
    const name = /** @type {string} */ (match[2])
    if (match[3] === 'SKIP') outcome.skipped.push(name)
    else (match[1] === 'ok' ? outcome.passed : outcome.failed).push(name)
  }
  return { ...outcome, status: result.status, output: `${result.stdout}\n${result.stderr}` }
}

const good = runTests('map-store.test.js')
assert.equal(good.status, 0, `the Map store must pass the suite:\n${good.output.slice(-4000)}`)
assert.deepEqual(good.failed, [])
assert.deepEqual(good.skipped, ['touch: parallel touches keep the latest instant'])
assert.ok(good.passed.length >= 80, `only ${good.passed.length} cases ran`)

const broken = runTests('tenant-blind-store.test.js')
assert.notEqual(broken.status, 0, 'a store whose quota ignores the tenant must fail the suite')
assert.deepEqual(broken.failed.sort(), [
  'manager: the same owner has a quota of its own in each tenant',
  'quota: of 48 parallel inserts for one owner in two tenants and in none, against a limit of 2, exactly 2 succeed in each',
  'quota: revoking a key in one tenant frees a slot only in that tenant',
  'quota: the same owner in two tenants and in no tenant has three independent quotas',
])

// No describe/it/expect passed, no global ones, no vitest: a ConfigError that says what to pass.
const refused = (() => {
  try {
    describeKeyStore('no runner', () => new MapStore())
  } catch (error) {
    return error
  }
})()
assert.ok(refused instanceof ConfigError, `expected a ConfigError, got ${String(refused)}`)
assert.equal(refused.code, 'config_invalid')
assert.match(refused.message, /describe: not passed.*\{ describe, it, expect \}/)

const require = createRequire(import.meta.url)
assert.equal(typeof require('keywarden/testing').describeKeyStore, 'function')

console.log(
  `node:test + expect: a Map store passes ${good.passed.length} cases (1 skipped); a tenant-blind one fails exactly the ${broken.failed.length} tenant-quota cases; no runner gives a ConfigError; ESM and CJS resolve`,
)
