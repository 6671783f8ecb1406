/**
 * Every timer-backed option goes through one validator: a duration beyond what a timer keeps
 * (2^31 − 1 ms, about 24.8 days) is a ConfigError, not a 1 ms timer in a re-arm loop (security
 * review, finding 10).
 */
import { Redis } from 'ioredis'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../adapters/memory/index.js'
import { RedisInvalidationChannel } from '../../adapters/redis/index.js'
import { MySqlStore, PostgresInvalidationChannel, withQueryTimeout } from '../../adapters/sql/index.js'
import { ConfigError, createRequestVerifier, KeyManager } from '../../src/index.js'
import { apiKeyAuth as expressAuth } from '../../src/http/express.js'
import { apiKeyAuth as koaAuth } from '../../src/http/koa.js'

const LONGEST = 2_147_483_647
const TOO_LONG: readonly (string | number)[] = ['25d', '4w', LONGEST + 1, '2147483648ms']

function configErrorOf(build: () => unknown): ConfigError {
  try {
    build()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError')
}

const keys = new KeyManager({ store: new MemoryStore(), pepper: null })
// Clients that are never connected: the options are checked before any I/O.
const redis = new Redis({ lazyConnect: true })
const pool = new pg.Pool()

const OPTIONS: [string, string, (value: string | number) => unknown][] = [
  ['KeyManager usage.flushInterval', 'usage.flushInterval', (value) => new KeyManager({ store: new MemoryStore(), usage: { flushInterval: value as never } })],
  ['createRequestVerifier timeout', 'timeout', (value) => createRequestVerifier(keys, { timeout: value as never })],
  ['Express apiKeyAuth timeout', 'timeout', (value) => expressAuth(keys, { timeout: value as never })],
  ['Koa apiKeyAuth timeout', 'timeout', (value) => koaAuth(keys, { timeout: value as never })],
  ['RedisInvalidationChannel subscribeTimeout', 'subscribeTimeout', (value) => new RedisInvalidationChannel({ client: redis, subscribeTimeout: value as never })],
  ['PostgresInvalidationChannel subscribeTimeout', 'subscribeTimeout', (value) => new PostgresInvalidationChannel({ pool, subscribeTimeout: value as never })],
  ['withQueryTimeout timeout', 'timeout', (value) => withQueryTimeout({ getConnection: async () => { throw new Error('unused') } }, value as never)],
]

describe.each(OPTIONS)('%s', (_, path, build) => {
  it.each(TOO_LONG)('refuses %s, naming the option', (value) => {
    const error = configErrorOf(() => build(value))
    expect(error.issues.map((issue) => issue.path.join('.'))).toContain(path)
    expect(error.message).toContain('24.8 days')
  })

  it('accepts the longest delay a timer keeps', () => {
    expect(() => build(LONGEST)).not.toThrow()
  })
})

describe('MySqlStore.connect queryTimeout', () => {
  it.each(TOO_LONG)('refuses %s before connecting', async (value) => {
    const error = await MySqlStore.connect('mysql://nobody@127.0.0.1:1/none', { queryTimeout: value as never }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).issues[0]!.path).toEqual(['queryTimeout'])
  })
})
