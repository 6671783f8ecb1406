/**
 * Issue 16, the CLI: how the built bin is wired into the package, its help on every command, its
 * version, `migrate --sql`, and every kind of bad input: the documented exit code, nothing on stdout,
 * one line on stderr (`keywarden: …`), never a stack trace, never a store URL's password or the pepper.
 */
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { COMMANDS } from '../../src/cli/run.js'
import { expectOneLineError, root, useBuiltBin, cliEntry, type BinResult } from './support/bin.js'

const bin = useBuiltBin()
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> }
const HELP_PEPPER = 'keywarden-cli-usage-pepper-9d2b41e7a0c3f58e'

/** Runs several command lines at once (each its own process), in order of the results. */
function runAll(lines: readonly (readonly string[])[], env?: Record<string, string>): Promise<BinResult[]> {
  return Promise.all(lines.map((args) => bin.run(args, env ? { env } : {})))
}

describe('the bin in the package', () => {
  it('is dist/cli.js, built from the cli entry of tsup.config.ts, with a #! line, executable', async () => {
    expect(manifest.bin).toEqual({ keywarden: './dist/cli.js' })
    expect(cliEntry()).toBe('src/cli/main.ts')
    expect(readFileSync(bin.path(), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
    accessSync(bin.path(), constants.X_OK)
    // Run through its #! line, as a shell runs `keywarden` (node from PATH).
    const version = await new Promise<string>((resolve, reject) =>
      execFile(bin.path(), ['--version'], { env: { PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}` } }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
    )
    expect(version).toBe(`${manifest.version}\n`)
  })

  it('is not part of the library: no library entry imports src/cli', () => {
    for (const entry of ['src/index.ts', 'adapters/sql/index.ts', 'adapters/redis/index.ts', 'src/http/express.ts']) {
      expect(readFileSync(join(root, entry), 'utf8'), entry).not.toMatch(/from '\.\.?\/(?:\.\.\/)*(?:src\/)?cli\//)
    }
  })
})

describe('--help', () => {
  it('answers on every command and group, with -h too, on stdout with exit code 0', async () => {
    const lines: string[][] = [['--help'], ['-h'], ['keys', '--help'], ...COMMANDS.flatMap((command) => [[...command.path, '--help'], [...command.path, '-h']])]
    const results = await runAll(lines)
    results.forEach((result, index) => {
      const line = lines[index]!.join(' ')
      expect({ code: result.code, stderr: result.stderr }, line).toEqual({ code: 0, stderr: '' })
    })
    const [top, , group] = results
    for (const command of COMMANDS) expect(top!.stdout).toContain(`  ${command.path.join(' ')}  `)
    expect(top!.stdout).toMatch(/Exit codes:\n {2}0 +done/)
    for (const command of COMMANDS.filter((candidate) => candidate.path[0] === 'keys')) expect(group!.stdout).toContain(`  ${command.path[1]} `)
    COMMANDS.forEach((command, index) => {
      const { stdout } = results[3 + index * 2]!
      expect(stdout, command.path.join(' ')).toMatch(new RegExp(`^Usage: keywarden ${command.path.join(' ')} `))
      for (const option of [...Object.keys(command.options), 'help']) expect(stdout, `${command.path.join(' ')} --${option}`).toContain(`--${option}`)
      expect(results[4 + index * 2]!.stdout).toBe(stdout)
    })
  }, 60_000)

  it('wins over the other mistakes on the line, so people can find out what they got wrong', async () => {
    const [result] = await runAll([['keys', 'list', '--bogus', 'extra', '--help']])
    expect(result!.code).toBe(0)
    expect(result!.stdout).toMatch(/^Usage: keywarden keys list/)
  })

  it('is shown on stderr, with exit code 2, for a bare command line or group', async () => {
    const [bare, group] = await runAll([[], ['keys']])
    expect(bare).toMatchObject({ code: 2, stdout: '' })
    expect(bare!.stderr).toMatch(/^keywarden \S+: manage API keys/)
    expect(group).toMatchObject({ code: 2, stdout: '' })
    expect(group!.stderr).toMatch(/^Usage: keywarden keys <create\|list\|/)
  })
})

describe('bad input', () => {
  it('gives exit code 2 and one line for a bad command line', async () => {
    const cases: [string[], RegExp][] = [
      [['kyes', 'list'], /unknown command 'kyes' \(see keywarden --help\)/],
      [['keys', 'lst'], /unknown command 'keys lst' \(see keywarden keys --help\)/],
      [['keys', 'list', '--bogus'], /unknown option '--bogus' for 'keys list' \(see keywarden keys list --help\)/],
      [['keys', 'list', '-x'], /unknown option '-x'/],
      [['keys', 'get'], /'keys get' needs <id>/],
      [['keys', 'get', 'a', 'b'], /unexpected argument 'b'/],
      [['keys', 'list', '--store'], /--store needs a value <url>/],
      [['keys', 'list', '--json=yes'], /--json takes no value/],
      [['--json'], /'--json' needs a command first/],
      [['scan'], /'scan' needs <paths…>/],
      [['keys', 'list'], /no store: pass --store <url> or set KEYWARDEN_STORE/],
      [['keys', 'list', '--store', 'not a url'], /--store: not a store URL: use redis:\/\/…, postgres:\/\/…, mysql:\/\/… or sqlite:<file>/],
      [['keys', 'list', '--store', 'http://admin:hunter2secret@db.example.com/keys'], /--store: unsupported scheme 'http:'/],
      [['keys', 'list', '--store', 'sqlite:'], /--store: sqlite: needs a file/],
      [['keys', 'list', '--store', 'redis://127.0.0.1:6379', '--table', 'keys'], /--table is for SQL stores; a Redis store takes --namespace/],
      [['keys', 'list', '--store', 'sqlite:x.db', '--namespace', 'app'], /--namespace is for Redis/],
      [['keys', 'list', '--store', 'sqlite:x.db', '--table', 'bad-name'], /--table: must be 1-48 letters/],
      [['keys', 'list', '--store', 'sqlite:x.db', '--limit', 'ten'], /--limit: must be a whole number/],
      [['keys', 'list', '--store', 'sqlite:x.db', '--status', 'sleeping'], /--status: must be one of active, disabled, expired, revoked/],
      [['keys', 'create', '--env', 'live', '--store', 'sqlite:x.db'], /--name: is required/],
      [['keys', 'create', '--name', 'x', '--metadata', '[1]', '--store', 'sqlite:x.db'], /--metadata: must be a JSON object/],
      [['keys', 'create', '--name', 'x', '--expires-in', '1d', '--never-expires', '--store', 'sqlite:x.db'], /give one of --expires-in, --expires-at and --never-expires/],
      [['keys', 'update', 'Ab3dEf6hIj9kLm2n', '--store', 'sqlite:x.db'], /nothing to change: give one of --name/],
      [['keys', 'update', 'Ab3dEf6hIj9kLm2n', '--scope', 'a', '--clear-scopes', '--store', 'sqlite:x.db'], /give --scope or --clear-scopes, not both/],
      [['audit', '--action', 'exploded', '--store', 'sqlite:x.db'], /--action: must be one of created, /],
      [['audit', '--from', 'yesterday', '--store', 'sqlite:x.db'], /--from: must be a date/],
      [['migrate', '--sql', 'oracle'], /--sql: must be one of postgres, mysql, sqlite/],
      [['--version', '--json'], /--version takes no other option/],
    ]
    const results = await runAll(cases.map(([args]) => args), { KEYWARDEN_PEPPER: HELP_PEPPER })
    results.forEach((result, index) => expectOneLineError(result, 2, cases[index]![1]))
    for (const result of results) expect(result.stderr).not.toMatch(/hunter2|admin:|keywarden-cli-usage-pepper/)
  }, 60_000)

  it('names a token-shaped argument without repeating it', async () => {
    const token = `acme_live_${'A1b2C3d4E5f6G7h8'}_${'Z'.repeat(32)}${'0abcde'}`
    const [result] = await runAll([['keys', 'list', token]])
    expectOneLineError(result!, 2, /unexpected argument '<token>'/)
    expect(result!.stderr).not.toContain('A1b2C3d4E5f6G7h8')
  })

  it('gives exit code 2 and one line for a bad configuration file, never quoting its contents', async () => {
    const dir = bin.workDir()
    const files: Record<string, string> = {
      'broken.json': `{ "prefix": "acme", "note": ${HELP_PEPPER} }`,
      'unknown.json': JSON.stringify({ prefx: 'acme' }),
      'prefix.json': JSON.stringify({ prefix: 'Acme!' }),
      'pepper.json': JSON.stringify({ prefix: 'acme', pepper: HELP_PEPPER }),
      'groups.json': JSON.stringify({ roles: { reader: ['data:read'] }, groups: { support: ['writer'] } }),
    }
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
    const migrated = await bin.run(['migrate', '--store', 'sqlite:config.db'])
    expect(migrated.code, migrated.stderr).toBe(0)
    const cases: [string, RegExp][] = [
      ['broken.json', /'broken\.json': not valid JSON/],
      ['unknown.json', /'unknown\.json': unknown setting 'prefx' \(known: prefix, environments, roles/],
      ['prefix.json', /'prefix\.json': prefix: must be 1-16 lower-case letters or digits/],
      ['pepper.json', /'pepper\.json': pepper: never put the pepper in a file; set KEYWARDEN_PEPPER/],
      ['groups.json', /'groups\.json': groups\.support\[0\]: names a role that is not configured/],
      ['missing.json', /'missing\.json': cannot read the configuration file \(ENOENT\)/],
    ]
    const results = await runAll(cases.map(([file]) => ['keys', 'list', '--store', 'sqlite:config.db', '--config', file]))
    results.forEach((result, index) => {
      expectOneLineError(result, 2, cases[index]![1])
      expect(result.stderr).not.toContain(HELP_PEPPER)
    })
  }, 60_000)

  it('gives exit code 3 and one line when the store cannot be reached or was never migrated', async () => {
    writeFileSync(join(bin.workDir(), 'empty.db'), '')
    const cases: [string[], RegExp][] = [
      [['keys', 'list', '--store', 'sqlite:empty.db'], /The key store failed during 'list' \(.*no such table.*\); has the store been migrated\? \(keywarden migrate\)$/m],
      [['keys', 'list', '--store', 'sqlite:missing.db'], /the SQLite file 'missing\.db' does not exist \(create it with keywarden migrate\)/],
      [['keys', 'list', '--store', 'sqlite:no/such/dir/keys.db'], /does not exist/],
      [['migrate', '--store', 'sqlite:no/such/dir/keys.db'], /cannot open the SQLite file 'no\/such\/dir\/keys\.db'/],
      [['keys', 'list', '--store', 'redis://:s3cretpass@127.0.0.1:1'], /cannot connect to Redis \(.*ECONNREFUSED/],
      [['keys', 'list', '--store', 'postgres://postgres:s3cretpass@127.0.0.1:1/test'], /The key store failed during 'list' \(.*ECONNREFUSED/],
      [['keys', 'list', '--store', 'mysql://root:s3cretpass@127.0.0.1:1/test'], /The key store failed during 'list' \(.*ECONNREFUSED/],
    ]
    const results = await runAll(cases.map(([args]) => args))
    results.forEach((result, index) => {
      expectOneLineError(result, 3, cases[index]![1])
      expect(result.stderr).not.toContain('s3cretpass')
    })
  }, 60_000)
})

describe('keywarden --version and migrate --sql', () => {
  it('prints the version and the schema, connecting to nothing', async () => {
    const [version, postgres, mysql, sqlite] = await runAll([
      ['--version'],
      ['migrate', '--sql', 'postgres', '--table', 'api_keys'],
      ['migrate', '--sql', 'mysql'],
      ['migrate', '--sql', 'sqlite'],
    ])
    expect(version).toEqual({ code: 0, stdout: `${manifest.version}\n`, stderr: '' })
    for (const result of [postgres, mysql, sqlite]) expect({ code: result!.code, stderr: result!.stderr }).toEqual({ code: 0, stderr: '' })
    expect(postgres!.stdout).toContain('CREATE TABLE IF NOT EXISTS "api_keys" (')
    expect(postgres!.stdout).not.toContain('keywarden_keys')
    expect(mysql!.stdout).toContain('CREATE TABLE IF NOT EXISTS `keywarden_keys`')
    expect(sqlite!.stdout).toContain('-- Fails with "duplicate column name" where the column exists: ignore that error.')
  })
})
