/**
 * The leak canary's scanner: finds issued secrets in text, also when a leak changed their form. A hit is
 * reported by a fingerprint (the first 12 hex digits of the secret's SHA-256), never by the secret.
 *
 * Forms found, for every secret (32 base62 characters, about 190 bits):
 * - `token`: the whole token; `secret`: the 32 characters; `fragment`: any 16 consecutive characters of it
 *   (`ApiKey.start` keeps at most 8, so 16 is never legitimate, and 95 bits never match by chance);
 * - `case-folded`: a fragment with its letters' case changed (e.g. a lower-cased header value);
 * - `hex`: 16 consecutive bytes of it hex-encoded (a Buffer printed as hex, with or without spaces);
 * - `base64`: 18 consecutive bytes of it in base64 or base64url (a Basic credential, an encoded cookie).
 *
 * Each form is a table of fixed-length windows of the secret, so the scan costs one table lookup per
 * character inside the long runs of the matching alphabet, whatever the number of secrets.
 */
import { createHash } from 'node:crypto'

/** A secret to look for, and where it was issued. */
export interface Needle {
  readonly secret: string
  readonly token: string
  /** Test file and test name of the create or rotate that issued it. */
  readonly issuedAt: string
}

export type LeakForm = 'token' | 'secret' | 'fragment' | 'case-folded' | 'hex' | 'base64'

export interface Hit {
  readonly needle: Needle
  readonly form: LeakForm
  /** Offset in the scanned text where the matching window starts. */
  readonly offset: number
}

const FRAGMENT = 16
const HEX_WINDOW = 32 // 16 bytes
const BASE64_WINDOW = 24 // 18 bytes

/** Short, stable, one-way name of a secret for reports. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12)
}

/** Secrets so regular that they could match innocent text (a test that stubbed the random source). */
export function lowEntropy(secret: string): boolean {
  return new Set(secret).size < 10
}

function add(table: Map<string, Needle>, key: string, needle: Needle): void {
  // A window shared by two secrets (impossible for random ones) is kept for the first.
  if (!table.has(key)) table.set(key, needle)
}

/** The windows of every secret in every form; build once, scan many texts. */
export class LeakIndex {
  readonly size: number
  private readonly folded = new Map<string, Needle>()
  private readonly hex = new Map<string, Needle>()
  private readonly base64 = new Map<string, Needle>()

  constructor(needles: Iterable<Needle>) {
    let size = 0
    for (const needle of needles) {
      size++
      const { secret } = needle
      const lower = secret.toLowerCase()
      for (let i = 0; i + FRAGMENT <= lower.length; i++) add(this.folded, lower.slice(i, i + FRAGMENT), needle)
      const hex = Buffer.from(secret, 'latin1').toString('hex')
      // Byte-aligned windows; the scan tries every offset of the text.
      for (let i = 0; i + HEX_WINDOW <= hex.length; i += 2) add(this.hex, hex.slice(i, i + HEX_WINDOW), needle)
      // Whatever the secret's alignment inside the encoded bytes, one of three shifts puts it on a 3-byte
      // boundary; after that, every full 4-character group encodes 3 bytes of the secret only.
      for (let shift = 0; shift < 3; shift++) {
        const encoded = Buffer.from(secret.slice(shift), 'latin1').toString('base64')
        const stable = Math.floor((secret.length - shift) / 3) * 4
        for (let i = 0; i + BASE64_WINDOW <= stable; i += 4) add(this.base64, encoded.slice(i, i + BASE64_WINDOW), needle)
      }
    }
    this.size = size
  }

  /** Every needle found in `text`, once per needle (the most telling form). */
  scan(text: string): Hit[] {
    const found = new Map<Needle, Hit>()
    const note = (needle: Needle, form: LeakForm, offset: number) => {
      const previous = found.get(needle)
      if (previous === undefined || FORM_RANK[form] < FORM_RANK[previous.form]) found.set(needle, { needle, form, offset })
    }

    for (const [start, run] of runs(text, /[0-9A-Za-z]{16,}/g)) {
      const lower = run.toLowerCase()
      for (let i = 0; i + FRAGMENT <= lower.length; i++) {
        const needle = this.folded.get(lower.slice(i, i + FRAGMENT))
        if (needle === undefined) continue
        note(needle, classify(text, needle, run.slice(i, i + FRAGMENT)), start + i)
      }
    }
    for (const [start, run] of hexRuns(text)) {
      for (let i = 0; i + HEX_WINDOW <= run.length; i++) {
        const needle = this.hex.get(run.slice(i, i + HEX_WINDOW))
        if (needle !== undefined) note(needle, 'hex', start)
      }
    }
    for (const [start, run] of runs(text, /[0-9A-Za-z+/_-]{24,}/g)) {
      const normalised = run.replace(/[-_]/g, (c) => (c === '-' ? '+' : '/'))
      for (let i = 0; i + BASE64_WINDOW <= normalised.length; i++) {
        const needle = this.base64.get(normalised.slice(i, i + BASE64_WINDOW))
        if (needle !== undefined) note(needle, 'base64', start + i)
      }
    }
    return [...found.values()]
  }
}

const FORM_RANK: Record<LeakForm, number> = { token: 0, secret: 1, fragment: 2, 'case-folded': 3, hex: 4, base64: 5 }

function classify(text: string, needle: Needle, window: string): LeakForm {
  if (!needle.secret.includes(window)) return 'case-folded'
  if (text.includes(needle.token)) return 'token'
  if (text.includes(needle.secret)) return 'secret'
  return 'fragment'
}

/** Every match of `pattern` in `text`, with its offset. */
export function* runs(text: string, pattern: RegExp): Generator<[number, string]> {
  for (const match of text.matchAll(pattern)) yield [match.index, match[0]]
}

/** Hex digit runs, lower-cased, with `61 62 63`-style byte lists (node's Buffer inspect) joined up. */
export function* hexRuns(text: string): Generator<[number, string]> {
  for (const [start, run] of runs(text, /(?:[0-9A-Fa-f]{2}[ :]?){16,}/g)) {
    const joined = run.replace(/[ :]/g, '').toLowerCase()
    if (joined.length >= HEX_WINDOW) yield [start, joined]
  }
}

/**
 * `text` with every secret it holds made unreadable, for printing a hit's surroundings: the token or any
 * 16-character window of a secret (any case) becomes `<token fp>` / `<secret fp>`, and any hex or
 * base64 run that still decodes to part of a secret becomes `<encoded secret fp>`.
 */
export function redact(text: string, index: LeakIndex): string {
  let out = text
  for (const hit of index.scan(text)) {
    if (hit.form === 'hex' || hit.form === 'base64') continue
    const { secret, token } = hit.needle
    out = out.split(token).join(`<token ${fingerprint(secret)}>`)
    // Each window of the secret, longest first, case-insensitively.
    for (let length = secret.length; length >= FRAGMENT; length--) {
      for (let i = 0; i + length <= secret.length; i++) {
        const pattern = new RegExp(escape(secret.slice(i, i + length)), 'gi')
        if (pattern.test(out)) out = out.replace(pattern, `<secret ${fingerprint(secret)}>`)
      }
    }
  }
  return out.replace(/(?:[0-9A-Fa-f]{2}[ :]?){16,}|[0-9A-Za-z+/=_-]{24,}/g, (run) => {
    const [hit] = index.scan(run)
    return hit === undefined ? run : `<encoded secret ${fingerprint(hit.needle.secret)}>`
  })
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
