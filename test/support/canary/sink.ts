/**
 * The leak canary's recorder, shared by everything in one test process: the hooks of setup.ts and the
 * helpers tests call (index.ts) append entries here, and they go, in batches, to this process's file in
 * the run directory. The global teardown (global.ts) scans every process's file at the end of the run.
 *
 * State lives on `globalThis`, not in this module: with `isolate` the module is evaluated again for
 * every test file, while the process (and its buffer) stays.
 */
import { createHash } from 'node:crypto'
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'

/**
 * What an entry is. `secret` and `allow` are needles; the rest is corpus, scanned for them.
 * `write` is a record handed to a store (insert/update), `dump` a raw copy of what a store holds,
 * `result` a value a KeyManager method returned (the token of an issued key excepted).
 */
export type EntryKind = 'secret' | 'allow' | 'log' | 'event' | 'error' | 'http' | 'dump' | 'write' | 'result' | 'note'

/** One line of a process's canary file. */
export interface Entry {
  /** Kind. */
  readonly k: EntryKind
  /** Where: test file and test name (or the file alone, outside a test). */
  readonly w: string
  /** What produced it, e.g. `console.error`, `event rotated`, `KeyManager.update threw`. */
  readonly d: string
  /** The text: the secret for `secret`, the token in `t`; the scanned text otherwise. */
  readonly x: string
  /** For `secret`: the full token. */
  readonly t?: string
}

interface SinkState {
  directory: string | undefined
  file: string | undefined
  buffer: string[]
  bufferedChars: number
  /**
   * Digests of the texts already recorded by this process: the same text (a page listed again, an
   * idempotent replay's token) is scanned once, where it first appeared.
   */
  seen: Set<string>
  exitHook: boolean
  /** Names the running test; set by setup.ts, which runs inside vitest (this module must not import it). */
  where: (() => string) | undefined
}

const STATE = Symbol.for('keywarden.canary.sink')
const FLUSH_AT_CHARS = 4 * 1024 * 1024
/** Longest text kept per entry; a longer one is kept as head and tail (a leak is rarely in the middle of 1 MB). */
const MAX_ENTRY_CHARS = 2 * 1024 * 1024

function state(): SinkState {
  const holder = globalThis as { [STATE]?: SinkState }
  return (holder[STATE] ??= { directory: undefined, file: undefined, buffer: [], bufferedChars: 0, seen: new Set(), exitHook: false, where: undefined })
}

/** Points this process's recorder at the run directory (from the global setup); idempotent. */
export function openSink(directory: string): void {
  const current = state()
  if (current.directory === directory) return
  current.directory = directory
  current.file = join(directory, `process-${process.pid}-${threadId}.ndjson`)
  writeFileSync(current.file, '', { flag: 'a' })
  if (!current.exitHook) {
    current.exitHook = true
    // Stragglers after the last afterAll (a late console.error from a timer) still get written.
    process.on('exit', flushSink)
  }
}

/** Sets how entries name the running test. */
export function setWhere(where: () => string): void {
  state().where = where
}

/** The running test, as the setup module names it. */
export function currentWhere(): string {
  try {
    return state().where?.() ?? '(outside a test)'
  } catch {
    return '(outside a test)'
  }
}

/** Whether a run directory is set: outside the canary run (e.g. a config without it) recording is a no-op. */
export function sinkOpen(): boolean {
  return state().file !== undefined
}

/** Appends one entry. Never throws: the canary must not change a test's outcome. */
export function record(kind: EntryKind, where: string, detail: string, text: string, token?: string): void {
  const current = state()
  if (current.file === undefined) return
  if (kind !== 'note') {
    const digest = createHash('sha1').update(kind).update('\0').update(text).digest('base64')
    if (current.seen.has(digest)) return
    // Bounded: past a million texts, forgetting only costs a duplicate scan.
    if (current.seen.size >= 1_000_000) current.seen.clear()
    current.seen.add(digest)
  }
  const kept = text.length > MAX_ENTRY_CHARS ? `${text.slice(0, MAX_ENTRY_CHARS / 2)}\n[...]\n${text.slice(-MAX_ENTRY_CHARS / 2)}` : text
  const entry: Entry = token === undefined ? { k: kind, w: where, d: detail, x: kept } : { k: kind, w: where, d: detail, x: kept, t: token }
  const line = JSON.stringify(entry)
  current.buffer.push(line)
  current.bufferedChars += line.length
  if (current.bufferedChars >= FLUSH_AT_CHARS) flushSink()
}

/** Writes the buffered entries to this process's file (synchronously, so it also works at exit). */
export function flushSink(): void {
  const current = state()
  if (current.file === undefined || current.buffer.length === 0) return
  const lines = current.buffer.join('\n') + '\n'
  current.buffer = []
  current.bufferedChars = 0
  try {
    appendFileSync(current.file, lines)
  } catch {
    // The run directory is gone (the run is over): nothing left to scan.
  }
}

/** What this process recorded so far (its file and the buffer), for tests of the canary itself. */
export function recordedSoFar(): Entry[] {
  const current = state()
  if (current.file === undefined) return []
  flushSink()
  return readFileSync(current.file, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Entry)
}
