/**
 * The text the secret-scanning engines are run on: fresh tokens of the docs' example configuration
 * (prefix `acme`, environments `live` and `test`) in the places leaks turn up (URLs, JSON, YAML, .env,
 * shell, Markdown, line edges), and decoys that must not match. Every occurrence carries a label, so a
 * failure is reported as counts per place and never as the tokens themselves (the leak canary reads
 * test output).
 */
import { randomInt } from 'node:crypto'
import type { KeyManager } from '../../src/index.js'
import { setup } from '../helpers.js'

/** Where each token sits, as a line that contains it once. */
const PLACES: Readonly<Record<string, (token: string) => string>> = {
  'URL query after %3D': (t) => `GET /v1/items?key%3D${t}&page=2 HTTP/1.1`,
  'URL after %20': (t) => `q=hello%20${t}%20world`,
  'URL after %0A': (t) => `body=first%0A${t}`,
  'URL double-encoded %253D': (t) => `next=%2Fcb%3Fkey%253D${t}`,
  'URL fragment': (t) => `https://app.example.com/cb#token=${t}`,
  'JSON value': (t) => `{"k":"${t}"}`,
  'JSON after a \\n escape': (t) => `{"log":"first line\\n${t}\\nlast line"}`,
  'JSON after a \\t escape': (t) => `{"row":"id\\t${t}"}`,
  'JSON after \\r\\n escapes': (t) => `["a\\r\\n${t}"]`,
  'JSON after a \\u0020 escape': (t) => `{"msg":"key\\u0020${t}"}`,
  'string after a \\x20 escape': (t) => `b'\\x20${t}'`,
  'YAML value': (t) => `  api_key: ${t}`,
  'YAML list item': (t) => `  - ${t}`,
  '.env': (t) => `KEY=${t}`,
  '.env with CRLF': (t) => `API_KEY=${t}\r`,
  'shell export': (t) => `export X='${t}'`,
  'shell curl header': (t) => `curl -H "Authorization: Bearer ${t}" https://api.example.com/v1`,
  'Markdown emphasis _…_': (t) => `Use _${t}_ here.`,
  'Markdown code span': (t) => `Run \`${t}\` now.`,
  'Markdown bold': (t) => `**${t}**`,
  'HTML element': (t) => `<code>${t}</code>`,
  'CSV field': (t) => `ci,${t},2026-01-01`,
  'non-ASCII neighbours': (t) => `clé→${t}«»`,
  'start of line': (t) => `${t} was pasted here`,
  'end of line': (t) => `the key is ${t}`,
  'whole line': (t) => t,
}
const TOKENS_PER_PLACE_AND_ENVIRONMENT = 3

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const UPPER_DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const randomText = (alphabet: string, length: number) => Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('')

/** Other vendors' token shapes, random each run (they look like tokens, they are not anyone's). */
const VENDOR_DECOYS: Readonly<Record<string, () => string>> = {
  'GitHub ghp_': () => `ghp_${randomText(BASE62, 36)}`,
  'GitHub github_pat_': () => `github_pat_${randomText(BASE62, 22)}_${randomText(BASE62, 59)}`,
  'Stripe sk_live_': () => `sk_live_${randomText(BASE62, 24)}`,
  'Slack xoxb-': () => `xoxb-${randomText('0123456789', 12)}-${randomText('0123456789', 13)}-${randomText(BASE62, 24)}`,
  'AWS AKIA': () => `AKIA${randomText(UPPER_DIGITS, 16)}`,
  'GitLab glpat-': () => `glpat-${randomText(BASE62, 20)}`,
  'npm npm_': () => `npm_${randomText(BASE62, 36)}`,
}

export interface Corpus {
  readonly text: string
  /** Each token the published regex must find (once), with the place it sits. */
  readonly expected: ReadonlyMap<string, string>
  /**
   * The second of two tokens one character apart: engines that report non-overlapping matches spend
   * that character on the first token's trailing edge (documented); Hyperscan reports it too.
   */
  readonly secondOfAdjacent: ReadonlyMap<string, string>
  /** Strings that must not match, with what they are. */
  readonly decoys: ReadonlyMap<string, string>
}

async function issue(keys: KeyManager, environment: string): Promise<string> {
  return (await keys.create({ name: 'scanning corpus', environment })).token
}

export async function buildCorpus(): Promise<Corpus> {
  const { keys } = setup()
  const lines: string[] = []
  const expected = new Map<string, string>()
  const secondOfAdjacent = new Map<string, string>()
  const decoys = new Map<string, string>()

  for (const [place, embed] of Object.entries(PLACES)) {
    for (const environment of ['live', 'test']) {
      for (let i = 0; i < TOKENS_PER_PLACE_AND_ENVIRONMENT; i++) {
        const token = await issue(keys, environment)
        expected.set(token, `${place} (${environment})`)
        lines.push(embed(token))
      }
    }
  }
  const [first, second] = [await issue(keys, 'live'), await issue(keys, 'test')]
  expected.set(first, 'first of two tokens one comma apart')
  secondOfAdjacent.set(second, 'second of two tokens one comma apart')
  lines.push(`${first},${second}`)

  const decoy = (label: string, text: string, line = text) => {
    decoys.set(text, label)
    lines.push(line)
  }
  for (const [label, make] of Object.entries(VENDOR_DECOYS)) {
    for (let i = 0; i < 3; i++) decoy(label, make(), `TOKEN=${make()}`)
  }
  for (const lead of '56789AZaz'.split('')) {
    for (const environment of ['live', 'test']) {
      const sameShape = `acme_${environment}_${randomText(BASE62, 16)}_${randomText(BASE62, 32)}${lead}${randomText(BASE62, 5)}`
      decoy('same shape, checksum starting 5-9/A-Z/a-z', sameShape, `KEY=${sameShape}`)
    }
  }
  const others = {
    'another prefix (acmecorp_)': setup({ prefix: 'acmecorp' }).keys,
    'another prefix (beta_)': setup({ prefix: 'beta' }).keys,
  }
  for (const [label, other] of Object.entries(others)) {
    for (const environment of ['live', 'test']) {
      const token = await issue(other, environment)
      decoy(label, token, `KEY=${token}`)
    }
  }
  const production = setup({ environments: ['prod'] }).keys
  const unconfigured = await issue(production, 'prod')
  decoy('an environment not configured (acme_prod_)', unconfigured, `KEY=${unconfigured}`)
  const glued: Record<string, (token: string) => string> = {
    'glued to a preceding word (xacme_…)': (t) => `x${t}`,
    'glued to preceding digits (9acme_…)': (t) => `9${t}`,
    'glued after 3D without the %': (t) => `key3D${t}`,
    'glued after n without the backslash': (t) => `return${t}`,
    'glued after u0020 without the backslash': (t) => `u0020${t}`,
    'followed by a letter': (t) => `${t}x`,
    'followed by a digit': (t) => `${t}0`,
    'one character short': (t) => t.slice(0, -1),
  }
  for (const [label, wrap] of Object.entries(glued)) {
    for (const environment of ['live', 'test']) {
      const text = wrap(await issue(keys, environment))
      decoy(label, text, `value ${text} end`)
    }
  }
  // The last token ends the file without a newline: `$` at the end of the data.
  const last = await issue(keys, 'test')
  expected.set(last, 'end of file, no newline (test)')
  lines.push(`last=${last}`)
  return { text: lines.join('\n'), expected, secondOfAdjacent, decoys }
}
