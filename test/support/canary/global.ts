/**
 * The leak canary's global setup: makes the run directory every test process records into (setup.ts),
 * and at the end of the run scans everything recorded for every secret issued. Any hit fails the run
 * (non-zero exit), listing where each was found by the secret's fingerprint, never the secret.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import type { Entry, EntryKind } from './sink.js'
import { fingerprint, LeakIndex, lowEntropy, redact, type Hit, type Needle } from './scan.js'

/** What one run recorded and what the scan found. */
export interface CanaryReport {
  readonly summary: string
  readonly problems: readonly string[]
}

const CORPUS_KINDS: readonly EntryKind[] = ['log', 'event', 'error', 'http', 'dump', 'write', 'result']
const MAX_LISTED = 40

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

/** Some 160 characters around `offset`, widened to whole runs (so no part of a secret is cut loose), redacted. */
function context(text: string, offset: number, all: LeakIndex): string {
  let start = Math.max(0, offset - 60)
  let end = Math.min(text.length, offset + 100)
  while (start > 0 && RUN_CHARACTER.test(text[start - 1]!)) start--
  while (end < text.length && RUN_CHARACTER.test(text[end]!)) end++
  const snippet = redact(text.slice(start, end), all).replace(/\s+/g, ' ')
  return `${start > 0 ? '…' : ''}${snippet}${end < text.length ? '…' : ''}`
}

/** Scans a run directory: every corpus entry against every secret not exposed on purpose. */
export function scanRun(directory: string): CanaryReport {
  const started = Date.now()
  const needles = new Map<string, Needle>()
  const allowed = new Map<string, string[]>()
  const counts = Object.fromEntries(CORPUS_KINDS.map((kind) => [kind, 0])) as Record<EntryKind, number>
  const notes: string[] = []
  const unparsed: string[] = []
  let processes = 0
  let characters = 0

  // First pass: the needles (secrets arrive from every process, in any order relative to the corpus).
  for (const entry of entries(directory, ['secret', 'allow'])) {
    if (entry.k === 'secret' && !needles.has(entry.x)) {
      needles.set(entry.x, { secret: entry.x, token: entry.t ?? entry.x, issuedAt: entry.w })
      if (entry.d.includes('did not parse')) unparsed.push(entry.w)
    }
    if (entry.k === 'allow') allowed.set(entry.x, [...(allowed.get(entry.x) ?? []), `${entry.w}: ${entry.d}`])
  }
  const weak = [...needles.values()].filter((needle) => lowEntropy(needle.secret))
  const scanned = [...needles.values()].filter((needle) => !allowed.has(needle.secret) && !lowEntropy(needle.secret))
  const index = new LeakIndex(scanned)
  const everything = new LeakIndex([...needles.values(), ...[...allowed.keys()].filter((secret) => !needles.has(secret)).map((secret) => ({ secret, token: secret, issuedAt: '(exposed on purpose)' }))])

  const hits: { hit: Hit; entry: Entry }[] = []
  for (const entry of entries(directory)) {
    if (entry.k === 'note') notes.push(`${entry.w}: ${entry.d}`)
    if (!CORPUS_KINDS.includes(entry.k)) continue
    counts[entry.k]++
    characters += entry.x.length
    for (const hit of index.scan(entry.x)) hits.push({ hit, entry })
  }
  processes = readdirSync(directory).filter((file) => file.endsWith('.ndjson')).length

  const summary =
    `[leak canary] ${needles.size} secrets (${scanned.length} scanned, ${allowed.size} exposed on purpose, ${weak.length} low-entropy skipped) ` +
    `against ${counts.log} log lines, ${counts.event} events, ${counts.error} errors, ${counts.http} HTTP responses, ` +
    `${counts.dump} storage dumps, ${counts.write} store writes, ${counts.result} method results ` +
    `(${(characters / 1e6).toFixed(1)} MB from ${processes} test processes, ${Date.now() - started} ms): ` +
    `${hits.length === 0 ? 'no leak' : `${hits.length} LEAKS`}` +
    (notes.length > 0 ? `; ${notes.length} stores could not be dumped` : '')

  const problems: string[] = []
  for (const { hit, entry } of hits.slice(0, MAX_LISTED)) {
    const fp = fingerprint(hit.needle.secret)
    problems.push(
      `secret ${fp} (issued by ${redact(hit.needle.issuedAt, everything)}) found as ${hit.form} in ${entry.k} "${redact(entry.d, everything)}"\n` +
        `    at ${redact(entry.w, everything)}\n` +
        `    ${context(entry.x, hit.offset, everything)}`,
    )
  }
  if (hits.length > MAX_LISTED) problems.push(`... and ${hits.length - MAX_LISTED} more`)
  // A canary that sees nothing proves nothing: issued secrets must come with the events and writes they cause.
  if (needles.size > 0 && (counts.event === 0 || counts.write === 0 || counts.result === 0)) {
    problems.push(`the hooks recorded ${needles.size} secrets but ${counts.event} events, ${counts.write} store writes, ${counts.result} results: setup.ts no longer sees the library`)
  }
  if (unparsed.length > 0) problems.push(`${unparsed.length} issued tokens did not parse with their manager's TokenParser, first at ${redact(unparsed[0]!, everything)}`)
  for (const [secret, reasons] of allowed) {
    if (!needles.has(secret)) problems.push(`exposeOnPurpose was given something that was never issued (at ${redact(reasons[0]!, everything)})`)
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
