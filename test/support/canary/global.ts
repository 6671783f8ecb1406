/**
 * The leak canary's global setup: makes the run directory every test process records into (setup.ts),
 * and at the end of the run scans everything recorded for every secret issued, every stored hash
 * written (outside storage) and every pepper the test suite uses (everywhere). Any hit fails the run
 * (non-zero exit), listing where each was found by a fingerprint, never the value.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { HashIndex, lowEntropyDigest, redactHashes, storedHashesIn, type HashNeedle } from './hash-scan.js'
import { PepperIndex, pepperFingerprint, weakPepper, type PepperNeedle } from './pepper-scan.js'
import type { Entry, EntryKind } from './sink.js'
import { fingerprint, LeakIndex, lowEntropy, redact, type Needle } from './scan.js'
import { collectTestPeppers } from './test-peppers.js'

/** What one run recorded and what the scan found. */
export interface CanaryReport {
  readonly summary: string
  readonly problems: readonly string[]
}

const CORPUS_KINDS: readonly EntryKind[] = ['log', 'event', 'error', 'http', 'dump', 'write', 'result']
/** Where stored hashes belong: they are collected there, and looked for everywhere else. */
const STORAGE_KINDS: readonly EntryKind[] = ['dump', 'write']
const MAX_LISTED = 40
const PROJECT_ROOT = new URL('../../../', import.meta.url).pathname

/** What the scan looks for besides the secrets the run issued. */
export interface ScanOptions {
  /** The peppers to look for; default: every pepper literal of the test sources (test-peppers.ts). */
  readonly peppers?: readonly PepperNeedle[]
}

/** A value a test exposed on purpose: a secret (32 base62 characters) or a stored hash's digest (64 hex). */
function isDigest(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value)
}

/** The entries of every process's file; with `kinds`, only those (checked before parsing: `k` comes first). */
function* entries(directory: string, kinds?: readonly EntryKind[]): Generator<Entry> {
  const prefixes = kinds?.map((kind) => `{"k":"${kind}"`)
  for (const name of readdirSync(directory).filter((file) => file.endsWith('.ndjson')).sort()) {
    for (const line of readFileSync(join(directory, name), 'utf8').split('\n')) {
      if (line.length === 0 || (prefixes && !prefixes.some((prefix) => line.startsWith(prefix)))) continue
      yield JSON.parse(line) as Entry
    }
  }
}

/** Characters a secret's encodings are made of: a window never starts or ends inside a run of them. */
const RUN_CHARACTER = /[0-9A-Za-z+/=_-]/

/** Everything the run knows, made unreadable in what a report prints. */
interface Redactor {
  readonly secrets: LeakIndex
  readonly hashes: HashIndex
  readonly peppers: PepperIndex
}

function redactAll(text: string, all: Redactor): string {
  return redactHashes(redact(all.peppers.redact(text), all.secrets), all.hashes)
}

/** Some 160 characters around `offset`, widened to whole runs (so no part of a secret is cut loose), redacted. */
function context(text: string, offset: number, all: Redactor): string {
  let start = Math.max(0, offset - 60)
  let end = Math.min(text.length, offset + 100)
  while (start > 0 && RUN_CHARACTER.test(text[start - 1]!)) start--
  while (end < text.length && RUN_CHARACTER.test(text[end]!)) end++
  const snippet = redactAll(text.slice(start, end), all).replace(/\s+/g, ' ')
  return `${start > 0 ? '…' : ''}${snippet}${end < text.length ? '…' : ''}`
}

/** One reported hit: what was found (by fingerprint), as what, in which entry, and around it. */
interface Finding {
  readonly what: string
  readonly form: string
  readonly offset: number
  readonly entry: Entry
}

/**
 * Scans a run directory: every corpus entry against every secret not exposed on purpose and every
 * pepper, and every entry outside storage against every stored hash not exposed on purpose.
 */
export function scanRun(directory: string, options: ScanOptions = {}): CanaryReport {
  const started = Date.now()
  const needles = new Map<string, Needle>()
  const hashNeedles = new Map<string, HashNeedle>()
  const allowed = new Map<string, string[]>()
  const counts = Object.fromEntries(CORPUS_KINDS.map((kind) => [kind, 0])) as Record<EntryKind, number>
  const notes: string[] = []
  const unparsed: string[] = []
  let processes = 0
  let characters = 0

  // First pass: the needles (secrets and stored hashes arrive from every process, in any order relative
  // to the corpus that might leak them).
  for (const entry of entries(directory, ['secret', 'allow', ...STORAGE_KINDS])) {
    if (entry.k === 'secret' && !needles.has(entry.x)) {
      needles.set(entry.x, { secret: entry.x, token: entry.t ?? entry.x, issuedAt: entry.w })
      if (entry.d.includes('did not parse')) unparsed.push(entry.w)
    }
    if (entry.k === 'allow') allowed.set(entry.x, [...(allowed.get(entry.x) ?? []), `${entry.w}: ${entry.d}`])
    if (STORAGE_KINDS.includes(entry.k)) {
      for (const { stored, digest } of storedHashesIn(entry.x)) if (!hashNeedles.has(digest)) hashNeedles.set(digest, { digest, stored, writtenAt: entry.w })
    }
  }
  const weak = [...needles.values()].filter((needle) => lowEntropy(needle.secret))
  const scanned = [...needles.values()].filter((needle) => !allowed.has(needle.secret) && !lowEntropy(needle.secret))
  const index = new LeakIndex(scanned)
  const weakHashes = [...hashNeedles.values()].filter((needle) => lowEntropyDigest(needle.digest))
  const scannedHashes = [...hashNeedles.values()].filter((needle) => !allowed.has(needle.digest) && !lowEntropyDigest(needle.digest))
  const hashIndex = new HashIndex(scannedHashes)
  const pepperNeedles = options.peppers ?? collectTestPeppers(PROJECT_ROOT)
  const scannedPeppers = pepperNeedles.filter((needle) => !weakPepper(needle.bytes))
  const pepperIndex = new PepperIndex(scannedPeppers)
  const allowedHashes = [...allowed.keys()].filter(isDigest).length
  const strays = [...allowed.keys()].filter((value) => !isDigest(value) && !needles.has(value))
  const everything: Redactor = {
    secrets: new LeakIndex([...needles.values(), ...strays.map((secret) => ({ secret, token: secret, issuedAt: '(exposed on purpose)' }))]),
    hashes: new HashIndex(hashNeedles.values()),
    peppers: pepperIndex,
  }

  const findings: Finding[] = []
  for (const entry of entries(directory)) {
    if (entry.k === 'note') notes.push(`${entry.w}: ${entry.d}`)
    if (!CORPUS_KINDS.includes(entry.k)) continue
    counts[entry.k]++
    characters += entry.x.length
    for (const hit of index.scan(entry.x)) {
      findings.push({ what: `secret ${fingerprint(hit.needle.secret)} (issued by ${redactAll(hit.needle.issuedAt, everything)})`, form: hit.form, offset: hit.offset, entry })
    }
    if (!STORAGE_KINDS.includes(entry.k)) {
      for (const hit of hashIndex.scan(entry.x)) {
        findings.push({ what: `hash ${fingerprint(hit.needle.digest)} (first written by ${redactAll(hit.needle.writtenAt, everything)})`, form: hit.form, offset: hit.offset, entry })
      }
    }
    for (const hit of pepperIndex.scan(entry.x)) {
      findings.push({ what: `pepper ${pepperFingerprint(hit.needle)} (defined at ${hit.needle.source})`, form: hit.form, offset: hit.offset, entry })
    }
  }
  processes = readdirSync(directory).filter((file) => file.endsWith('.ndjson')).length

  const summary =
    `[leak canary] ${needles.size} secrets (${scanned.length} scanned, ${allowed.size - allowedHashes} exposed on purpose, ${weak.length} low-entropy skipped), ` +
    `${hashNeedles.size} stored hashes (${scannedHashes.length} scanned, ${allowedHashes} exposed on purpose, ${weakHashes.length} low-entropy skipped), ` +
    `${pepperNeedles.length} test peppers (${scannedPeppers.length} scanned, ${pepperNeedles.length - scannedPeppers.length} too short skipped) ` +
    `against ${counts.log} log lines, ${counts.event} events, ${counts.error} errors, ${counts.http} HTTP responses, ` +
    `${counts.dump} storage dumps, ${counts.write} store writes, ${counts.result} method results ` +
    `(${(characters / 1e6).toFixed(1)} MB from ${processes} test processes, ${Date.now() - started} ms): ` +
    `${findings.length === 0 ? 'no leak' : `${findings.length} LEAKS`}` +
    (notes.length > 0 ? `; ${notes.length} stores could not be dumped` : '')

  const problems: string[] = []
  for (const { what, form, offset, entry } of findings.slice(0, MAX_LISTED)) {
    problems.push(
      `${what} found as ${form} in ${entry.k} "${redactAll(entry.d, everything)}"\n` +
        `    at ${redactAll(entry.w, everything)}\n` +
        `    ${context(entry.x, offset, everything)}`,
    )
  }
  if (findings.length > MAX_LISTED) problems.push(`... and ${findings.length - MAX_LISTED} more`)
  // A canary that sees nothing proves nothing: issued secrets must come with the events and writes they cause.
  if (needles.size > 0 && (counts.event === 0 || counts.write === 0 || counts.result === 0)) {
    problems.push(`the hooks recorded ${needles.size} secrets but ${counts.event} events, ${counts.write} store writes, ${counts.result} results: setup.ts no longer sees the library`)
  }
  if (unparsed.length > 0) problems.push(`${unparsed.length} issued tokens did not parse with their manager's TokenParser, first at ${redactAll(unparsed[0]!, everything)}`)
  for (const [value, reasons] of allowed) {
    if (isDigest(value) ? !hashNeedles.has(value) : !needles.has(value)) {
      problems.push(`exposeOnPurpose was given something that was never ${isDigest(value) ? 'written to a store' : 'issued'} (at ${redactAll(reasons[0]!, everything)})`)
    }
  }
  return { summary, problems }
}

/**
 * vitest global setup: creates the run directory and hands it to every test process; the returned
 * teardown scans it and fails the run on any leak.
 */
export default function setup(project: TestProject): () => void {
  const directory = mkdtempSync(join(tmpdir(), 'keywarden-canary-'))
  project.provide('keywardenCanary', directory)
  return () => {
    let report: CanaryReport
    try {
      report = scanRun(directory)
    } finally {
      if (!process.env.KEYWARDEN_CANARY_KEEP) rmSync(directory, { recursive: true, force: true })
    }
    console.log(report.summary)
    if (report.problems.length === 0) return
    console.error(`[leak canary] FAILED:\n  ${report.problems.join('\n  ')}`)
    process.exitCode = 1
    throw new Error(`[leak canary] ${report.problems.length} problems, listed above`)
  }
}
