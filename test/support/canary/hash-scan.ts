/**
 * The leak canary's hash scanner: the stored hashes of a run (`kw1$<scheme>$<pepper id>$<64 hex>`, taken
 * from every record handed to a store and every storage dump) looked for where they do not belong. A
 * hit is reported by a fingerprint of the digest, never by the digest.
 *
 * Forms found, for every digest (64 hex digits, 256 bits):
 * - `hash`: the whole stored form; `digest`: the 64 hex digits, in any case;
 * - `digest fragment`: any 39 consecutive hex digits of it (a truncated row or message);
 * - `hex-encoded`: the digest's ASCII bytes in hex, 39 consecutive digits or more (a Buffer printed
 *   as `<Buffer 6b 77 …>` or as hex).
 *
 * Each form is a table of 32-digit windows taken every 8 digits, so the scan costs one lookup per
 * character inside the (rare, outside storage) runs of 32 hex digits or more.
 */
import { fingerprint, runs } from './scan.js'

/** A stored hash to look for, and the test that first wrote it. */
export interface HashNeedle {
  /** The 64 hex digits, lower-case. */
  readonly digest: string
  /** The stored form, as first seen. */
  readonly stored: string
  /** Test file and test name of the first store write (or dump) that held it. */
  readonly writtenAt: string
}

export type HashLeakForm = 'hash' | 'digest' | 'digest fragment' | 'hex-encoded'

export interface HashHit {
  readonly needle: HashNeedle
  readonly form: HashLeakForm
  /** Offset in the scanned text of the hex run the hit is in. */
  readonly offset: number
}

const WINDOW = 32
const STEP = 8
/** Hex digits, also as byte lists (`6b 77 31`, `6b:77:31`); unlike the secret scanner's, odd lengths too. */
const HEX_RUN = /(?:[0-9A-Fa-f]{2}[ :]?){16,}[0-9A-Fa-f]?/g

function* hexRuns(text: string): Generator<[number, string]> {
  for (const [start, run] of runs(text, HEX_RUN)) {
    const joined = run.replace(/[ :]/g, '').toLowerCase()
    if (joined.length >= WINDOW) yield [start, joined]
  }
}

/** Every stored hash in `text` (a store write or dump, any serialisation that keeps the string whole). */
export function storedHashesIn(text: string): { stored: string; digest: string }[] {
  const found: { stored: string; digest: string }[] = []
  for (const match of text.matchAll(/kw\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+\$([0-9a-fA-F]{64})(?![0-9a-fA-F])/g)) {
    found.push({ stored: match[0], digest: match[1]!.toLowerCase() })
  }
  return found
}

/** Digests so regular that innocent text could hold them (a test that wrote `'a'.repeat(64)`). */
export function lowEntropyDigest(digest: string): boolean {
  return new Set(digest).size < 10
}

function windows(hex: string): string[] {
  const out: string[] = []
  for (let i = 0; i + WINDOW <= hex.length; i += STEP) out.push(hex.slice(i, i + WINDOW))
  return out
}

/** The windows of every digest in every form; build once, scan many texts. */
export class HashIndex {
  readonly size: number
  private readonly digestWindows = new Map<string, HashNeedle>()
  private readonly encodedWindows = new Map<string, HashNeedle>()

  constructor(needles: Iterable<HashNeedle>) {
    let size = 0
    for (const needle of needles) {
      size++
      for (const window of windows(needle.digest)) if (!this.digestWindows.has(window)) this.digestWindows.set(window, needle)
      for (const window of windows(Buffer.from(needle.digest, 'latin1').toString('hex'))) {
        if (!this.encodedWindows.has(window)) this.encodedWindows.set(window, needle)
      }
    }
    this.size = size
  }

  /** Every needle found in `text`, once per needle (the most telling form). */
  scan(text: string): HashHit[] {
    const found = new Map<HashNeedle, HashHit>()
    if (this.size === 0) return []
    let lower: string | undefined
    for (const [start, run] of hexRuns(text)) {
      for (let i = 0; i + WINDOW <= run.length; i++) {
        const window = run.slice(i, i + WINDOW)
        const direct = this.digestWindows.get(window)
        const needle = direct ?? this.encodedWindows.get(window)
        if (needle === undefined || found.has(needle)) continue
        let form: HashLeakForm = 'hex-encoded'
        if (direct !== undefined) {
          lower ??= text.toLowerCase()
          form = text.includes(needle.stored) ? 'hash' : lower.includes(needle.digest) ? 'digest' : 'digest fragment'
        }
        found.set(needle, { needle, form, offset: start })
      }
    }
    return [...found.values()]
  }
}

/** `text` with every hex run that holds part of a known digest replaced by `<hash fp>`. */
export function redactHashes(text: string, index: HashIndex): string {
  if (index.size === 0) return text
  return text.replace(HEX_RUN, (run) => {
    const [hit] = index.scan(run)
    return hit === undefined ? run : `<hash ${fingerprint(hit.needle.digest)}>`
  })
}
