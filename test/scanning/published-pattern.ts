/**
 * Reads the secret-scanning regex that docs/security.md publishes, so the tests check and run the very
 * text users copy (docs and tests cannot drift).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const SECURITY_PAGE = fileURLToPath(new URL('../../docs/security.md', import.meta.url))
const SECTION_HEADING = '### Regex for secret scanners'

/** The published regex for the example configuration, and the GitHub custom-pattern fields beside it. */
export interface PublishedPattern {
  /** The whole regex: the first ```text block of the section (one line). */
  readonly regex: string
  /** The GitHub custom-pattern fields (`Secret format`, `Before secret`, `After secret`) of the block that lists them. */
  readonly fields: Readonly<Record<string, string>>
}

/** The ```text blocks of a Markdown text, also those indented under a list item (indent removed). */
function textBlocks(section: string): string[] {
  return [...section.matchAll(/^( *)```text\n([\s\S]*?)^\1```$/gm)].map(([, indent, body]) =>
    body!
      .replace(/\n$/, '')
      .split('\n')
      .map((line) => line.slice(indent!.length))
      .join('\n'),
  )
}

export function readPublishedPattern(): PublishedPattern {
  const page = readFileSync(SECURITY_PAGE, 'utf8')
  const start = page.indexOf(`\n${SECTION_HEADING}\n`)
  if (start === -1) throw new Error(`docs/security.md has no "${SECTION_HEADING}" section`)
  const rest = page.slice(start + SECTION_HEADING.length + 2)
  const nextHeading = rest.search(/^#{1,3} /m)
  const section = nextHeading === -1 ? rest : rest.slice(0, nextHeading)
  const blocks = textBlocks(section)
  const regex = blocks[0]
  if (regex === undefined || regex.includes('\n')) throw new Error(`the first text block under "${SECTION_HEADING}" must be the regex, on one line`)
  const fields: Record<string, string> = {}
  for (const line of blocks.find((block) => block.startsWith('Secret format'))?.split('\n') ?? []) {
    const field = /^(Secret format|Before secret|After secret)\s{2,}(\S.*)$/.exec(line)
    if (field) fields[field[1]!] = field[2]!
  }
  return { regex, fields }
}
