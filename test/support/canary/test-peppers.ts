/**
 * The peppers the test suite uses, read from its source (test/ and the shipped conformance cases in
 * src/testing/; the canary's own files excepted): string literals given as a pepper
 * (`pepper: '…'`, `const PEPPER = '…'`, `{ id, secret: '…' }` inside a pepper list or a SecretHasher's).
 *
 * Read from the source because the running library hides them: the KeyManager hands pepper bytes to
 * its hasher's private fields and keeps only pepper IDs in `options`, so no wrapper outside the
 * library sees them (see README.md). Peppers made at run time (`randomBytes(32)`) are not found.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { PepperNeedle } from './pepper-scan.js'

const LITERAL = String.raw`(['"\x60])((?:(?!\1)[^\\\n$])+)\1`
/** `pepper: '…'` and `PEPPER = '…'` (any constant whose name has PEPPER in it). */
const DIRECT = new RegExp(String.raw`(?:\bpepper\s*:|\b[A-Z0-9_]*PEPPER[A-Z0-9_]*\s*=)\s*${LITERAL}`, 'g')
/** Where a list of `{ id, secret }` peppers starts. */
const LIST_START = /(?:\bpeppers?\s*[:=]\s*(?:[A-Za-z]+\[\]\s*=\s*)?|\bnew\s+SecretHasher\(\s*)\[/g
const SECRET_IN_LIST = new RegExp(String.raw`\bsecret\s*:\s*${LITERAL}`, 'g')

/** The canary's own sources name peppers in prose and test its scanner with made-up ones. */
const CANARY_DIRECTORY = join('test', 'support', 'canary')

function* sourceFiles(directory: string, projectRoot: string): Generator<string> {
  let entries
  try {
    entries = readdirSync(directory, { withFileTypes: true })
  } catch {
    return
  }
  for (const entry of entries) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue
    const path = join(directory, entry.name)
    if (relative(projectRoot, path) === CANARY_DIRECTORY) continue
    if (entry.isDirectory()) yield* sourceFiles(path, projectRoot)
    else if (/\.tsx?$/.test(entry.name)) yield path
  }
}

/** The text of the bracketed list opening at `open` (the index of its `[`), nested brackets included. */
function bracketed(text: string, open: number): string {
  let depth = 0
  for (let i = open; i < text.length && i < open + 4000; i++) {
    if (text[i] === '[') depth++
    else if (text[i] === ']' && --depth === 0) return text.slice(open, i + 1)
  }
  return ''
}

function lineOf(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/** The pepper literals of `text` (one source file), with their offsets. */
export function pepperLiteralsIn(text: string): { value: string; offset: number }[] {
  const found: { value: string; offset: number }[] = []
  for (const match of text.matchAll(DIRECT)) found.push({ value: match[2]!, offset: match.index })
  for (const start of text.matchAll(LIST_START)) {
    const open = start.index + start[0].length - 1
    for (const match of bracketed(text, open).matchAll(SECRET_IN_LIST)) found.push({ value: match[2]!, offset: open + match.index })
  }
  return found
}

/** Where the test suite's peppers are defined, relative to the project root. */
export const PEPPER_SOURCE_DIRECTORIES = ['test', join('src', 'testing')] as const

/** Every pepper literal in the test sources (the first definition of each value), as needles. */
export function collectTestPeppers(projectRoot: string, directories: readonly string[] = PEPPER_SOURCE_DIRECTORIES): PepperNeedle[] {
  const needles = new Map<string, PepperNeedle>()
  for (const file of directories.flatMap((directory) => [...sourceFiles(join(projectRoot, directory), projectRoot)])) {
    const text = readFileSync(file, 'utf8')
    for (const { value, offset } of pepperLiteralsIn(text)) {
      if (!needles.has(value)) needles.set(value, { bytes: Buffer.from(value, 'utf8'), source: `${relative(projectRoot, file)}:${lineOf(text, offset)}` })
    }
  }
  return [...needles.values()]
}
