/**
 * The leak canary's pepper scanner: the peppers the test suite uses, looked for in every corpus,
 * storage included (a pepper is never stored anywhere). A hit is reported by a fingerprint of the
 * pepper and the source line that defines it, never by the pepper.
 *
 * Forms found, for every pepper: `pepper` (the string itself), `hex` (its bytes in hex, also as node
 * prints a Buffer), `base64` (its bytes in base64 or base64url, at any alignment).
 */
import { fingerprint, hexRuns } from './scan.js'

/** A pepper to look for, and where the test suite defines it. */
export interface PepperNeedle {
  readonly bytes: Buffer
  /** `test/file.ts:line` of the literal. */
  readonly source: string
}

export type PepperLeakForm = 'pepper' | 'hex' | 'base64'

export interface PepperHit {
  readonly needle: PepperNeedle
  readonly form: PepperLeakForm
  readonly offset: number
}

/** Shortest pepper looked for: a shorter or more regular one could match innocent text. */
const MIN_BYTES = 16
const MIN_DISTINCT_BYTES = 8

/** Peppers too short or too regular to look for without false alarms (`'x'.repeat(32)`). */
export function weakPepper(bytes: Uint8Array): boolean {
  return bytes.length < MIN_BYTES || new Set(bytes).size < MIN_DISTINCT_BYTES
}

/** The base64 and base64url text that any encoding of `bytes` contains, whatever their alignment. */
function base64Forms(bytes: Buffer): string[] {
  const forms = new Set<string>()
  for (let shift = 0; shift < 3; shift++) {
    const stable = Math.floor((bytes.length - shift) / 3) * 4
    const encoded = bytes.subarray(shift).toString('base64').slice(0, stable)
    forms.add(encoded)
    forms.add(encoded.replace(/\+/g, '-').replace(/\//g, '_'))
  }
  return [...forms]
}

interface Form {
  readonly needle: PepperNeedle
  readonly form: PepperLeakForm
  readonly text: string
}

/** Every form of every pepper; build once, scan many texts. */
export class PepperIndex {
  readonly size: number
  private readonly plain: Form[] = []
  private readonly hex: Form[] = []

  constructor(needles: Iterable<PepperNeedle>) {
    let size = 0
    for (const needle of needles) {
      size++
      this.plain.push({ needle, form: 'pepper', text: needle.bytes.toString('utf8') })
      for (const text of base64Forms(needle.bytes)) this.plain.push({ needle, form: 'base64', text })
      this.hex.push({ needle, form: 'hex', text: needle.bytes.toString('hex') })
    }
    this.size = size
  }

  /** Every needle found in `text`, once per needle (the most telling form). */
  scan(text: string): PepperHit[] {
    const found = new Map<PepperNeedle, PepperHit>()
    for (const { needle, form, text: pattern } of this.plain) {
      if (found.has(needle)) continue
      const offset = text.indexOf(pattern)
      if (offset >= 0) found.set(needle, { needle, form, offset })
    }
    if (this.hex.length > 0) {
      for (const [start, run] of hexRuns(text)) {
        for (const { needle, form, text: pattern } of this.hex) if (!found.has(needle) && run.includes(pattern)) found.set(needle, { needle, form, offset: start })
      }
    }
    return [...found.values()]
  }

  /** `text` with every form of every pepper it holds replaced by `<pepper fp>`. */
  redact(text: string): string {
    let out = text
    for (const hit of this.scan(text)) {
      const label = `<pepper ${pepperFingerprint(hit.needle)}>`
      for (const { needle, text: pattern } of this.plain) if (needle === hit.needle) out = out.split(pattern).join(label)
      const alone = new PepperIndex([hit.needle])
      out = out.replace(/(?:[0-9A-Fa-f]{2}[ :]?){16,}[0-9A-Fa-f]?/g, (run) => (alone.scan(run).length > 0 ? label : run))
    }
    return out
  }
}

/** Short, stable, one-way name of a pepper for reports. */
export function pepperFingerprint(needle: PepperNeedle): string {
  return fingerprint(needle.bytes.toString('hex'))
}
