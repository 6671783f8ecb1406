/**
 * Reading one file for a scan: as Latin-1 (tokens are ASCII, and every byte stays one character, so
 * binary files and any encoding are read without errors), whole when small, else in blocks of whole
 * lines so that memory stays bounded whatever the file's size.
 */
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import type { TokenFinding } from './find-tokens.js'

/** Files up to this size are read in one piece. */
const WHOLE_FILE_BYTES = 8 * 1024 * 1024

function countLines(text: string): number {
  let lines = 0
  for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', index + 1)) lines++
  return lines
}

/** The findings of `find` in the file at `absolute`. */
export async function scanFile(absolute: string, find: (text: string, firstLine: number) => TokenFinding[]): Promise<TokenFinding[]> {
  const { size } = await stat(absolute)
  if (size <= WHOLE_FILE_BYTES) return find(await readFile(absolute, 'latin1'), 1)
  const findings: TokenFinding[] = []
  let carry = ''
  let line = 1
  for await (const chunk of createReadStream(absolute, { encoding: 'latin1', highWaterMark: 1024 * 1024 })) {
    const text = carry + (chunk as string)
    // A token never spans lines: cut after the last line break and keep the rest for the next block.
    const cut = text.lastIndexOf('\n')
    if (cut === -1) {
      carry = text
      continue
    }
    const block = text.slice(0, cut + 1)
    findings.push(...find(block, line))
    line += countLines(block)
    carry = text.slice(cut + 1)
  }
  findings.push(...find(carry, line))
  return findings
}
