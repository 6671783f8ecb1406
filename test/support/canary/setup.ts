/**
 * The leak canary's hooks, loaded by vitest (`setupFiles`) before every test file. They record, into
 * this process's canary file (sink.ts):
 *
 * - every secret issued: `KeyManager.create` and `rotate` are wrapped, the token parsed with the
 *   manager's own TokenParser;
 * - what every KeyManager method returns (an issued key without its token) and every error it throws,
 *   with stack and `cause` chain, plus errors handed to `usage.onError` and, through the manager's
 *   invalidation channel, to `cache.onError`;
 * - every event payload (`KeyEventEmitter.emit`) and every error handed to `onListenerError`;
 * - every record handed to a store (`insert`, `update` of the memory, SQL and Redis stores) and every
 *   error a store throws;
 * - console output (also calls swallowed by a test's `vi.spyOn(console, ...)` mock), and direct
 *   writes to process.stdout and process.stderr;
 * - every HTTP response a node server in this process sends (status line, headers, body).
 *
 * The hooks never change what they wrap: same arguments, same return values, same exceptions. The global
 * teardown (global.ts) scans it all at the end of the run.
 */
import http from 'node:http'
import { relative } from 'node:path'
import { afterAll, afterEach, beforeAll, expect, inject, vi } from 'vitest'
import { MemoryStore } from '../../../adapters/memory/index.js'
import { RedisStore } from '../../../adapters/redis/index.js'
import { SqlStore } from '../../../adapters/sql/index.js'
import { KeyEventEmitter } from '../../../src/events.js'
import { KeyManager } from '../../../src/key-manager.js'
import { TokenParser } from '../../../src/token/format.js'
import { UsageBuffer } from '../../../src/usage.js'
import { errorText, safeInspect, safeJson } from './text.js'
import { currentWhere, flushSink, openSink, record, setWhere } from './sink.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** The leak canary's run directory, made by test/support/canary/global.ts. */
    keywardenCanary: string
  }
}

const MARK = Symbol.for('keywarden.canary.wrapped')
type Fn = (this: unknown, ...args: unknown[]) => unknown
type Marked = Fn & { [MARK]?: true }

function recordError(error: unknown, detail: string): void {
  record('error', currentWhere(), detail, errorText(error))
}

/** Replaces `target[name]` with `make(original)` once per function (a second setup run finds it marked). */
function wrapMethod(target: object, name: string, make: (original: Fn) => Fn): void {
  const holder = target as Record<string, Marked>
  const original = holder[name]
  if (typeof original !== 'function' || original[MARK]) return
  const wrapped = make(original) as Marked
  wrapped[MARK] = true
  holder[name] = wrapped
}

/** Runs a recording step; whatever goes wrong in it must not change the test's outcome. */
function quietly(step: () => void): void {
  try {
    step()
  } catch {
    // Recording is best effort.
  }
}

/** Calls `original`, reporting its value or error (sync or async) without changing either. */
function observe(original: Fn, self: unknown, args: unknown[], onValue: (value: unknown) => void, onError: (error: unknown) => void): unknown {
  let result: unknown
  try {
    result = original.apply(self, args)
  } catch (error) {
    quietly(() => onError(error))
    throw error
  }
  if (!(result instanceof Promise)) {
    quietly(() => onValue(result))
    return result
  }
  return result.then(
    (value: unknown) => {
      quietly(() => onValue(value))
      return value
    },
    (error: unknown) => {
      quietly(() => onError(error))
      throw error
    },
  )
}

// ---------------------------------------------------------------------------------------------------
// KeyManager: secrets, results, errors

type ChannelLike = Record<string, Marked>
type ManagerInternals = {
  options: { prefix: string; environments: readonly string[]; cache?: { channel?: ChannelLike } | null }
  events: { has(name: string): boolean }
}
const parsers = new WeakMap<object, TokenParser>()
const instrumented = new WeakSet<object>()

function parserOf(manager: ManagerInternals): TokenParser {
  let parser = parsers.get(manager)
  if (parser === undefined) parsers.set(manager, (parser = new TokenParser(manager.options.prefix, manager.options.environments)))
  return parser
}

function recordIssued(manager: ManagerInternals, issued: unknown, operation: string): void {
  const token = (issued as { token?: unknown } | null)?.token
  if (typeof token !== 'string') return
  const secret = parserOf(manager).parse(token)?.secret
  if (secret === undefined) {
    // Not this manager's format: keep the secret's position, and say so in the summary.
    record('secret', currentWhere(), `${operation} (token did not parse)`, token.slice(-38, -6), token)
    return
  }
  record('secret', currentWhere(), operation, secret, token)
}

/** Calls `original`; a rejection it returns is recorded as an error handed to `cache.onError`. */
function reportRejection(original: Fn, self: unknown, args: unknown[], source: string): unknown {
  return observe(original, self, args, () => undefined, (error) => recordError(error, `error handed to cache.onError (${source} rejected)`))
}

/**
 * What the manager hands to `cache.onError` is exactly what its invalidation channel rejects with
 * (publish, subscribe, the unsubscribe function), and the channel is the one object of that path the
 * hooks can reach (`options.cache.channel`): its methods are wrapped on the instance, once. The
 * unsubscribe function the manager gets back is a wrapper that calls the channel's own.
 */
function instrumentManager(manager: ManagerInternals): void {
  if (instrumented.has(manager)) return
  instrumented.add(manager)
  const channel = manager.options.cache?.channel
  if (typeof channel !== 'object' || channel === null) return
  quietly(() => {
    wrapMethod(channel, 'publish', (original) => function (this: unknown, ...args: unknown[]) {
      return reportRejection(original, this, args, 'channel.publish')
    })
    wrapMethod(channel, 'subscribe', (original) => function (this: unknown, ...args: unknown[]) {
      const subscribed = reportRejection(original, this, args, 'channel.subscribe')
      if (!(subscribed instanceof Promise)) return subscribed
      return subscribed.then((unsubscribe: unknown) =>
        typeof unsubscribe !== 'function'
          ? unsubscribe
          : function (this: unknown, ...unsubscribeArgs: unknown[]) {
              return reportRejection(unsubscribe as Fn, this, unsubscribeArgs, 'channel unsubscribe')
            },
      )
    })
  })
}

const MANAGER_METHODS = ['get', 'list', 'expiring', 'notifyExpiring', 'update', 'enable', 'disable', 'revoke', 'delete', 'reportLeak', 'flush', 'close'] as const

function hookKeyManager(): void {
  const proto = KeyManager.prototype as unknown as Record<string, Fn>
  for (const name of ['create', 'rotate'] as const) {
    wrapMethod(proto, name, (original) =>
      function (this: unknown, ...args: unknown[]) {
        const manager = this as ManagerInternals
        instrumentManager(manager)
        return observe(
          original,
          this,
          args,
          (issued) => {
            recordIssued(manager, issued, `KeyManager.${name}`)
            record('result', currentWhere(), `KeyManager.${name} returned`, safeJson({ key: (issued as { key?: unknown } | null)?.key }))
          },
          (error) => recordError(error, `KeyManager.${name} threw`),
        )
      },
    )
  }
  for (const name of MANAGER_METHODS) {
    wrapMethod(proto, name, (original) =>
      function (this: unknown, ...args: unknown[]) {
        instrumentManager(this as ManagerInternals)
        return observe(
          original,
          this,
          args,
          (value) => {
            if (value === undefined) return
            record('result', currentWhere(), `KeyManager.${name} returned`, name === 'notifyExpiring' ? safeInspect(value) : safeJson(value))
          },
          (error) => recordError(error, `KeyManager.${name} threw`),
        )
      },
    )
  }
  wrapMethod(proto, 'verify', (original) =>
    function (this: unknown, ...args: unknown[]) {
      const manager = this as ManagerInternals
      instrumentManager(manager)
      // A token that does not parse gets one shared, settled promise: hand that very promise back.
      let shared = false
      quietly(() => (shared = !manager.events.has('rejected') && parserOf(manager).parse(args[0]) === null))
      if (shared) return original.apply(this, args)
      return observe(
        original,
        this,
        args,
        (value) => record('result', currentWhere(), 'KeyManager.verify returned', safeJson(value)),
        (error) => recordError(error, 'KeyManager.verify threw'),
      )
    },
  )
}

// ---------------------------------------------------------------------------------------------------
// Events, usage write-behind errors

function hookEvents(): void {
  const proto = KeyEventEmitter.prototype as unknown as Record<string, Fn>
  wrapMethod(proto, 'emit', (original) =>
    function (this: unknown, ...args: unknown[]) {
      const event = args[0] as { type?: string }
      quietly(() => record('event', currentWhere(), `event ${String(event?.type)}`, safeJson(event)))
      const emitter = this as { onListenerError?: Marked }
      const report = emitter.onListenerError
      if (typeof report === 'function' && !report[MARK]) {
        const wrapped: Marked = function (this: unknown, ...reportArgs: unknown[]) {
          quietly(() => recordError(reportArgs[0], 'error handed to onListenerError'))
          return report.apply(this, reportArgs)
        }
        wrapped[MARK] = true
        emitter.onListenerError = wrapped
      }
      return original.apply(this, args)
    },
  )
  wrapMethod(UsageBuffer.prototype as unknown as Record<string, Fn>, 'flush', (original) =>
    function (this: unknown, ...args: unknown[]) {
      const options = (this as { options?: { onError?: Marked } }).options
      const report = options?.onError
      if (options !== undefined && typeof report === 'function' && !report[MARK]) {
        const wrapped: Marked = function (this: unknown, error: unknown) {
          quietly(() => recordError(error, 'error handed to usage.onError'))
          return report.call(this, error)
        }
        wrapped[MARK] = true
        options.onError = wrapped
      }
      return original.apply(this, args)
    },
  )
}

// ---------------------------------------------------------------------------------------------------
// Stores: what is written, what is thrown

const STORE_METHODS = ['insert', 'get', 'update', 'delete', 'list', 'touch', 'migrate'] as const

function hookStores(): void {
  for (const [label, proto] of [
    ['MemoryStore', MemoryStore.prototype],
    ['SqlStore', SqlStore.prototype],
    ['RedisStore', RedisStore.prototype],
  ] as const) {
    for (const name of STORE_METHODS) {
      wrapMethod(proto, name, (original) =>
        function (this: unknown, ...args: unknown[]) {
          const store = (this as { constructor?: { name?: string } })?.constructor?.name ?? label
          if (name === 'insert' || name === 'update') quietly(() => record('write', currentWhere(), `${store}.${name}`, safeJson(args[0])))
          return observe(original, this, args, () => undefined, (error) => recordError(error, `${store}.${name} threw`))
        },
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Process-wide: console, stdout/stderr, HTTP responses (patched once per process)

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir'] as const
const harvested = new WeakMap<object, number>()

function hookConsole(): void {
  for (const level of CONSOLE_METHODS) {
    wrapMethod(console, level, (original) =>
      function (this: unknown, ...args: unknown[]) {
        quietly(() => record('log', currentWhere(), `console.${level}`, args.map((arg) => (typeof arg === 'string' ? arg : safeInspect(arg))).join(' ')))
        return original.apply(this, args)
      },
    )
  }
}

/** Console calls a test's own mock swallowed (they never reached the wrapper): scanned all the same. */
function harvestMockedConsole(): void {
  for (const level of CONSOLE_METHODS) {
    const method = console[level]
    if (!vi.isMockFunction(method)) continue
    const calls = method.mock.calls
    for (const args of calls.slice(harvested.get(method) ?? 0)) {
      record('log', currentWhere(), `console.${level} (mocked by the test)`, (args as unknown[]).map((arg) => (typeof arg === 'string' ? arg : safeInspect(arg))).join(' '))
    }
    harvested.set(method, calls.length)
  }
}

function hookStreams(): void {
  for (const [label, stream] of [
    ['process.stdout', process.stdout],
    ['process.stderr', process.stderr],
  ] as const) {
    wrapMethod(stream, 'write', (original) =>
      function (this: unknown, ...args: unknown[]) {
        quietly(() => {
          const chunk = args[0]
          const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : ''
          if (text) record('log', currentWhere(), label, text)
        })
        return original.apply(this, args)
      },
    )
  }
}

const bodies = new WeakMap<object, string[]>()

function collectBody(response: object, chunk: unknown, encoding: unknown): void {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return
  const text =
    typeof chunk === 'string'
      ? Buffer.from(chunk, typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8').toString('utf8')
      : chunk instanceof Uint8Array
        ? Buffer.from(chunk).toString('utf8')
        : ''
  let parts = bodies.get(response)
  if (parts === undefined) bodies.set(response, (parts = []))
  parts.push(text)
}

function hookHttp(): void {
  const proto = http.ServerResponse.prototype as unknown as Record<string, Fn>
  const sent = new WeakSet<object>()
  wrapMethod(proto, 'write', (original) =>
    function (this: unknown, ...args: unknown[]) {
      quietly(() => collectBody(this as object, args[0], args[1]))
      return original.apply(this, args)
    },
  )
  wrapMethod(proto, 'end', (original) =>
    function (this: unknown, ...args: unknown[]) {
      const response = this as http.ServerResponse & { _header?: string | null }
      quietly(() => collectBody(response, args[0], args[1]))
      const result = original.apply(this, args)
      quietly(() => {
        if (sent.has(response)) return
        sent.add(response)
        // The query string is left out of the label on purpose: some tests put tokens there.
        const path = (response.req?.url ?? '').split('?')[0]
        record('http', currentWhere(), `server response ${response.req?.method ?? ''} ${path} -> ${response.statusCode}`, `${response._header ?? ''}${(bodies.get(response) ?? []).join('')}`)
      })
      return result
    },
  )
}

// ---------------------------------------------------------------------------------------------------

const root = new URL('../../../', import.meta.url).pathname

/** The running test, as `test/file.test.ts > suite > test`, or the file alone in hooks. */
function where(): string {
  const { testPath, currentTestName } = expect.getState()
  const file = testPath ? relative(root, testPath) : '(unknown file)'
  return currentTestName ? `${file} > ${currentTestName}` : file
}

const directory = inject('keywardenCanary')
if (directory) {
  openSink(directory)
  setWhere(where)
  hookKeyManager()
  hookEvents()
  hookStores()
  hookConsole()
  hookStreams()
  hookHttp()
  // Leftovers of the previous file in this process (late timers) go out first.
  beforeAll(() => flushSink())
  afterEach(() => {
    harvestMockedConsole()
    // vitest may give each file a fresh console: wrap it again (a marked method is left alone).
    hookConsole()
  })
  // Registered first, so it runs after the file's own afterAll hooks (they may log or dump).
  afterAll(() => {
    harvestMockedConsole()
    flushSink()
  })
}
