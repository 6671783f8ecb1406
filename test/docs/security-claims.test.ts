/**
 * Claims the docs make about security, pinned so they cannot quietly come back wrong (security review,
 * findings 14 and 15): what response timing does and does not reveal, and that key names are user
 * input to be shown as text.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const read = (page: string) => readFileSync(fileURLToPath(new URL(`../../docs/${page}`, import.meta.url)), 'utf8')

describe('docs/security.md on timing', () => {
  const page = read('security.md')

  it('no longer claims that response times hide which key IDs exist (they do not: a known ID reads a row)', () => {
    expect(page).not.toMatch(/response times do not tell which key IDs exist/i)
    expect(read('concepts.md')).not.toMatch(/timing does not reveal which IDs exist/i)
  })

  it('says precisely what timing reveals and what it does not', () => {
    const section = page.slice(page.indexOf('### What response timing reveals'))
    expect(section.length).toBeGreaterThan(100)
    expect(section).toMatch(/does not reveal anything about a secret/)
    expect(section).toMatch(/can reveal whether a key ID exists/)
  })
})

describe('docs/settings-page.md on names', () => {
  it('says that names and descriptions are user input, to be rendered as text', () => {
    const page = read('settings-page.md')
    expect(page).toMatch(/Names and descriptions are user input/)
    for (const hazard of ['<script>', 'U+202E', 'zero-width']) expect(page).toContain(hazard)
  })
})
