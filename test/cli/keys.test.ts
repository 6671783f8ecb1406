/**
 * Issue 16, the CLI: the built bin against every real store. One scenario per store, all with --json:
 * migrate, create, list, get, update, disable, enable, rotate, expiring, revoke, audit, delete, and a
 * get of the deleted key (exit 4). The tokens it prints verify in an app (an in-process KeyManager with
 * the same pepper on the same store); nothing else it prints holds a secret or the pepper. Then, on
 * SQLite: the text for people, the pepper rules and a configuration file.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { RedisStore } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresStore, SqliteStore } from '../../adapters/sql/index.js'
import { KeyManager, type KeyStore } from '../../src/index.js'
import { mariadbGate, postgresGate, redisGate } from '../support/gates.js'
import { deleteRedisNamespace, SERVICES, uniqueSuffix, type ServiceGate } from '../support/services.js'
import { Database } from '../support/sqlite.js'
import { expectNoSecretOf, expectOneLineError, useBuiltBin, type BinResult } from './support/bin.js'

const bin = useBuiltBin()

const CLI_PEPPER = 'keywarden-cli-test-pepper-5c1e9a7f30b2d684'
const ACTOR = 'service:cli-test'
const ENV = { KEYWARDEN_PEPPER: CLI_PEPPER, KEYWARDEN_ACTOR: ACTOR }
const TOKEN = /^kw_live_[0-9A-Za-z]{16}_[0-9A-Za-z]{38}$/

/** A store for one scenario: the bin's arguments for it, the app's view of it, and its removal. */
interface Target {
  readonly args: readonly string[]
  readonly appStore: () => Promise<{ store: KeyStore; close: () => Promise<void> }>
  readonly cleanup: () => Promise<void>
}

interface Backend {
  readonly name: string
  readonly gate: () => Promise<ServiceGate>
  readonly target: () => Target
}

const ALWAYS = async (): Promise<ServiceGate> => ({ available: true, version: 'in process' })

const BACKENDS: readonly Backend[] = [
  {
    name: 'sqlite',
    gate: ALWAYS,
    target: () => {
      const file = join(bin.workDir(), `keys-${uniqueSuffix()}.db`)
      return {
        args: ['--store', `sqlite:${file}`],
        appStore: async () => {
          const database = new Database(file)
          return { store: new SqliteStore({ database }), close: async () => void database.close() }
        },
        cleanup: async () => {
          for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true })
        },
      }
    },
  },
  {
    name: 'redis',
    gate: redisGate,
    target: () => {
      const namespace = `kwcli${uniqueSuffix()}`
      const { host, port } = SERVICES.redis
      return {
        args: ['--store', `redis://${host}:${port}`, '--namespace', namespace],
        appStore: async () => {
          const client = new Redis(SERVICES.redis)
          return { store: new RedisStore({ client, namespace }), close: async () => void client.disconnect() }
        },
        cleanup: async () => {
          const client = new Redis(SERVICES.redis)
          try {
            await deleteRedisNamespace(client, namespace)
          } finally {
            client.disconnect()
          }
        },
      }
    },
  },
  {
    name: 'postgres',
    gate: postgresGate,
    target: () => {
      const table = `kwcli_${uniqueSuffix()}`
      const { host, port, user, database } = SERVICES.postgres
      return {
        args: ['--store', `postgres://${user}@${host}:${port}/${database}`, '--table', table],
        appStore: async () => {
          const pool = new pg.Pool({ ...SERVICES.postgres, max: 2 })
          return { store: new PostgresStore({ pool, table }), close: () => pool.end() }
        },
        cleanup: async () => {
          const client = new pg.Client(SERVICES.postgres)
          await client.connect()
          try {
            await client.query(`DROP TABLE IF EXISTS "${table}", "${table}_usage", "${table}_audit"; DROP FUNCTION IF EXISTS "${table}_consume"`)
          } finally {
            await client.end()
          }
        },
      }
    },
  },
  {
    name: 'mariadb',
    gate: mariadbGate,
    target: () => {
      const table = `kwcli_${uniqueSuffix()}`
      const { host, port, user, database } = SERVICES.mariadb
      const password = SERVICES.mariadb.password === '' ? '' : `:${encodeURIComponent(SERVICES.mariadb.password)}`
      return {
        args: ['--store', `mysql://${user}${password}@${host}:${port}/${database}`, '--table', table],
        appStore: async () => {
          const pool = mysql.createPool({ ...SERVICES.mariadb, connectionLimit: 2 })
          return { store: new MySqlStore({ pool, table }), close: () => pool.end() }
        },
        cleanup: async () => {
          const connection = await mysql.createConnection(SERVICES.mariadb)
          try {
            await connection.query(`DROP TABLE IF EXISTS \`${table}\`, \`${table}_locks\`, \`${table}_usage\`, \`${table}_audit\``)
          } finally {
            await connection.end()
          }
        },
      }
    },
  },
]

/** Runs the bin on the target with --json and the pepper; expects success and silence on stderr. */
async function json(target: Target, transcript: BinResult[], args: readonly string[]): Promise<Record<string, unknown>> {
  const result = await bin.run([...args, ...target.args, '--json'], { env: ENV })
  transcript.push(result)
  expect({ code: result.code, stderr: result.stderr }, args.join(' ')).toEqual({ code: 0, stderr: '' })
  return JSON.parse(result.stdout) as Record<string, unknown>
}

async function withApp<T>(target: Target, body: (keys: KeyManager) => Promise<T>): Promise<T> {
  const { store, close } = await target.appStore()
  const keys = new KeyManager({ store, pepper: CLI_PEPPER })
  try {
    return await body(keys)
  } finally {
    await keys.close()
    await close()
  }
}

async function scenario(target: Target): Promise<void> {
  const transcript: BinResult[] = []
  expect(await json(target, transcript, ['migrate'])).toMatchObject({ migrated: true })

  const created = await json(target, transcript, ['keys', 'create', '--name', 'CI', '--env', 'live', '--owner', 'u1', '--scope', 'data:read', '--expires-in', '30d'])
  const first = created['token'] as string
  const key = created['key'] as Record<string, unknown>
  const id = key['id'] as string
  expect(first).toMatch(TOKEN)
  expect(key).toMatchObject({ name: 'CI', environment: 'live', ownerId: 'u1', scopes: ['data:read'], status: 'active', createdBy: { type: 'service', id: 'cli-test' } })
  expect(key).not.toHaveProperty('hash')
  await withApp(target, async (keys) => expect(await keys.verify(first, { scopes: ['data:read'] })).toMatchObject({ valid: true }))

  const listed = await json(target, transcript, ['keys', 'list', '--owner', 'u1'])
  expect((listed['items'] as { id: string }[]).map((item) => item.id)).toEqual([id])
  expect(listed['nextCursor']).toBeNull()
  expect(await json(target, transcript, ['keys', 'get', id])).toMatchObject({ id, name: 'CI', version: 1 })

  const updated = await json(target, transcript, ['keys', 'update', id, '--name', 'CI (main)', '--scope', 'data:read,data:write', '--reason', 'Ticket 812'])
  expect(updated).toMatchObject({ name: 'CI (main)', scopes: ['data:read', 'data:write'], version: 2 })
  expect(await json(target, transcript, ['keys', 'disable', id, '--reason', 'Suspicious traffic'])).toMatchObject({ status: 'disabled', enabled: false, disabledReason: 'Suspicious traffic' })
  expect(await json(target, transcript, ['keys', 'enable', id, '--expected-version', '3'])).toMatchObject({ status: 'active', enabled: true })

  const rotated = await json(target, transcript, ['keys', 'rotate', id, '--grace-period', '1h'])
  const second = rotated['token'] as string
  expect(second).toMatch(TOKEN)
  expect(second).not.toBe(first)
  expect(second.slice(8, 24)).toBe(id)
  expect(typeof rotated['previousSecretValidUntil']).toBe('string')
  await withApp(target, async (keys) => {
    expect(await keys.verify(second)).toMatchObject({ valid: true })
    expect(await keys.verify(first)).toMatchObject({ valid: true }) // within the grace period
  })

  const expiring = await json(target, transcript, ['keys', 'expiring', '--within', '60d'])
  expect(expiring).toMatchObject({ within: '60d', nextCursor: null })
  expect((expiring['items'] as { id: string }[]).map((item) => item.id)).toEqual([id])

  expect(await json(target, transcript, ['keys', 'revoke', id, '--reason', 'Found on a pastebin'])).toMatchObject({ status: 'revoked' })
  await withApp(target, async (keys) => {
    expect(await keys.verify(second)).toMatchObject({ valid: false, reason: 'revoked' })
  })

  const audit = await json(target, transcript, ['audit', '--key', id])
  const entries = audit['items'] as { action: string; actor: unknown; reason: string | null }[]
  expect(entries.map((entry) => entry.action)).toEqual(['revoked', 'rotated', 'enabled', 'disabled', 'updated', 'created'])
  expect(entries.every((entry) => JSON.stringify(entry.actor) === JSON.stringify({ type: 'service', id: 'cli-test' }))).toBe(true)
  expect(entries.find((entry) => entry.action === 'updated')?.reason).toBe('Ticket 812')

  expect(await json(target, transcript, ['keys', 'delete', id])).toEqual({ id, deleted: true })
  const gone = await bin.run(['keys', 'get', id, ...target.args], { env: ENV })
  expectOneLineError(gone, 4, new RegExp(`no key with ID '${id}'`))

  // The token of create and rotate is in their own stdout; nowhere else, and the pepper nowhere at all.
  const everything = transcript.map((result) => result.stdout + result.stderr).join('\n') + gone.stderr
  expect(everything).not.toContain(CLI_PEPPER)
  expect(everything).not.toMatch(/kw1\$/)
  const elsewhere = transcript.filter((result) => result.stdout !== JSON.stringify(created, null, 2) + '\n' && result.stdout !== JSON.stringify(rotated, null, 2) + '\n')
  expect(elsewhere).toHaveLength(transcript.length - 2)
  expectNoSecretOf(elsewhere.map((result) => result.stdout + result.stderr).join('\n'), [first, second], 'the other commands')
}

for (const backend of BACKENDS) {
  const gate = await backend.gate()
  describe.skipIf(!gate.available)(`keywarden keys on ${backend.name}`, () => {
    it('runs create → list → get → update → disable → enable → rotate → expiring → revoke → audit → delete', async () => {
      const target = backend.target()
      try {
        await scenario(target)
      } finally {
        await target.cleanup()
      }
    }, 60_000)
  })
}

describe('keywarden keys for people, with the pepper rules and a config file (SQLite)', () => {
  it('prints the token alone on stdout, notes on stderr, and tables of keys', async () => {
    const target = BACKENDS[0]!.target()
    try {
      const migrated = await bin.run(['migrate', ...target.args])
      expect(migrated).toMatchObject({ code: 0, stdout: '' })
      expect(migrated.stderr).toMatch(/^Migrated: SQLite table keywarden_keys is ready\.\n$/)

      const created = await bin.run(['keys', 'create', '--name', 'Deploy bot', '--env', 'live', ...target.args], { env: ENV })
      expect(created.code).toBe(0)
      expect(created.stdout).toMatch(/^kw_live_[0-9A-Za-z]{16}_[0-9A-Za-z]{38}\n$/)
      const token = created.stdout.trim()
      const id = token.slice(8, 24)
      expect(created.stderr).toContain(`Created key ${id} (Deploy bot, live, never expires)`)
      expectNoSecretOf(created.stderr, [token], 'the note of create')

      const [listed, shown] = await Promise.all([bin.run(['keys', 'list', ...target.args]), bin.run(['keys', 'get', id, ...target.args])])
      expect(listed.code).toBe(0)
      expect(listed.stdout.split('\n')[0]).toMatch(/^ID +NAME +ENV +STATUS +OWNER +TENANT +EXPIRES +LAST USED$/)
      expect(listed.stdout).toMatch(new RegExp(`^${id}  Deploy bot +live +active `, 'm'))
      expect(shown.code).toBe(0)
      expect(shown.stdout).toMatch(/^status +active$/m)
      expect(shown.stdout).toMatch(/^created +\S+ by service:cli-test$/m)
      expectNoSecretOf(listed.stdout + listed.stderr + shown.stdout + shown.stderr, [token], 'list and get')
    } finally {
      await target.cleanup()
    }
  }, 60_000)

  it('refuses to hash a new secret without KEYWARDEN_PEPPER, and without a pepper on a peppered store', async () => {
    const target = BACKENDS[0]!.target()
    try {
      expect((await bin.run(['migrate', ...target.args])).code).toBe(0)
      const create = ['keys', 'create', '--name', 'CI', '--env', 'live', ...target.args]
      expectOneLineError(await bin.run(create), 2, /KEYWARDEN_PEPPER is not set/)

      // A store without a pepper takes --no-pepper, deliberately; and such keys verify in an app without one.
      const unpeppered = await bin.run([...create, '--no-pepper'])
      expect(unpeppered.code, unpeppered.stderr).toBe(0)
      await withAppWithout(target, async (keys) => expect(await keys.verify(unpeppered.stdout.trim())).toMatchObject({ valid: true }))

      // With a pepper over unpeppered keys: created, with a warning that an app without one cannot verify it.
      const peppered = await bin.run(create, { env: ENV })
      expect(peppered.code).toBe(0)
      expect(peppered.stderr).toMatch(/^keywarden: warning: the store's keys have no pepper/m)
      const id = peppered.stdout.trim().slice(8, 24)

      expectOneLineError(await bin.run([...create, '--no-pepper']), 2, /the store holds keys hashed with a pepper: set KEYWARDEN_PEPPER/)
      expectOneLineError(await bin.run(['keys', 'rotate', id, ...target.args]), 2, /KEYWARDEN_PEPPER is not set/)
      expectOneLineError(await bin.run([...create, '--no-pepper'], { env: ENV }), 2, /contradict/)
      const otherId = await bin.run(create, { env: { ...ENV, KEYWARDEN_PEPPER_ID: 'next' } })
      expect(otherId.stderr).toMatch(/warning: the store's keys use pepper ID 'default', not 'next'/)
      for (const result of [unpeppered, peppered, otherId]) expect(result.stdout + result.stderr).not.toContain(CLI_PEPPER)
    } finally {
      await target.cleanup()
    }
  }, 60_000)

  it('takes prefix, environments and roles from the config file, and names bad input by its option', async () => {
    const target = BACKENDS[0]!.target()
    const config = join(bin.workDir(), `config-${uniqueSuffix()}.json`)
    writeFileSync(config, JSON.stringify({ prefix: 'acme', environments: ['live', 'test'], roles: { reader: ['data:read'] }, expiry: { max: '90d' } }))
    try {
      const args = [...target.args, '--config', config]
      expect((await bin.run(['migrate', ...args])).code).toBe(0)
      const created = await bin.run(['keys', 'create', '--name', 'Reader', '--env', 'test', '--role', 'reader', '--json', ...args], { env: ENV })
      expect(created.code, created.stderr).toBe(0)
      const { token, key } = JSON.parse(created.stdout) as { token: string; key: { roles: string[]; expiresAt: string | null } }
      expect(token).toMatch(/^acme_test_/)
      expect(key.roles).toEqual(['reader'])
      expect(key.expiresAt).not.toBeNull() // the policy maximum is the default

      const [badRole, tooLong, noEnv, badDate] = await Promise.all([
        bin.run(['keys', 'create', '--name', 'X', '--env', 'live', '--role', 'writer', ...args], { env: ENV }),
        bin.run(['keys', 'create', '--name', 'X', '--env', 'live', '--expires-in', '400d', ...args], { env: ENV }),
        bin.run(['keys', 'create', '--name', 'X', ...args], { env: ENV }),
        bin.run(['keys', 'create', '--name', 'X', '--env', 'live', '--expires-at', 'tomorrow', ...args], { env: ENV }),
      ])
      expectOneLineError(badRole, 2, /^keywarden: --role #1: /)
      expectOneLineError(tooLong, 2, /^keywarden: --expires-in: /)
      expectOneLineError(noEnv, 2, /^keywarden: --env: /)
      expectOneLineError(badDate, 2, /^keywarden: --expires-at: must be a date/)
    } finally {
      rmSync(config, { force: true })
      await target.cleanup()
    }
  }, 60_000)
})

async function withAppWithout<T>(target: Target, body: (keys: KeyManager) => Promise<T>): Promise<T> {
  const { store, close } = await target.appStore()
  const keys = new KeyManager({ store, pepper: null })
  try {
    return await body(keys)
  } finally {
    await keys.close()
    await close()
  }
}
