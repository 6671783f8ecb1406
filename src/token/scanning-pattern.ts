/**
 * The regexes that find one configuration's tokens in text: a portable one for secret scanners (the
 * same meaning in POSIX ERE, PCRE, RE2, Hyperscan, ripgrep, Python and JavaScript) and a JavaScript one
 * for log scrubbers. docs/security.md publishes the first; test/scanning runs it through real engines.
 */
import { BASE62_ALPHABET } from './base62.js'
import { CHECKSUM_LENGTH, KEY_ID_LENGTH, LABEL_PATTERN, SECRET_LENGTH } from './format.js'

const BASE62 = '[0-9A-Za-z]'
const NOT_BASE62 = '[^0-9A-Za-z]'

// A CRC-32 is below 5 * 62^5, so the first of its six base62 digits is 0-4: a random string of the
// token's shape gets past this with probability 5/62 instead of 1.
const CHECKSUM_LEAD = `[0-${BASE62_ALPHABET[Math.floor(0xffffffff / 62 ** (CHECKSUM_LENGTH - 1))]}]`

/**
 * What may stand right before a token. A `\b` or a bare non-alphanumeric character misses tokens right
 * after a URL escape (`%3D`, `%20`, double-encoded `%253D`) or a string escape (`\n`, `\t`, `\u0020`,
 * `\x20`), whose last character is alphanumeric; a token glued to a longer word still does not match.
 */
const LEADING_EDGE = [
  '^',
  NOT_BASE62,
  '%[0-9A-Fa-f]{2}',
  '%25[0-9A-Fa-f]{2}',
  '\\\\[bfnrtv]',
  '\\\\u[0-9A-Fa-f]{4}',
  '\\\\x[0-9A-Fa-f]{2}',
].join('|')
const TRAILING_EDGE = `${NOT_BASE62}|$`

// Labels are lower-case letters and digits (options validate them), so they are literal in every dialect.
function assertLiteralLabels(prefix: string, environments: readonly string[]): void {
  for (const label of [prefix, ...environments]) {
    if (!LABEL_PATTERN.test(label)) throw new TypeError('prefix and environments must match [a-z][a-z0-9]{0,15}')
  }
}

function tokenBody(prefix: string, environmentGroup: string): string {
  return `${prefix}_${environmentGroup}_${BASE62}{${KEY_ID_LENGTH}}_${BASE62}{${SECRET_LENGTH}}${CHECKSUM_LEAD}${BASE62}{${CHECKSUM_LENGTH - 1}}`
}

/**
 * The JavaScript token pattern for one configuration (behind `keys.tokenPattern`): the token alone,
 * without edges or anchors, so `text.replace(new RegExp(source, 'g'), '[redacted]')` masks exactly the
 * token. It also matches a token glued to a longer word, which a scrubber should mask anyway. Not
 * portable (`(?:…)` means something else in `grep -E`): scanners get {@link secretScanningPatternSource}.
 *
 * @example
 * ```ts
 * import { tokenPatternSource } from './scanning-pattern.js'
 * const scrub = (line: string) => line.replace(new RegExp(tokenPatternSource('acme', ['live', 'test']), 'g'), '[redacted]')
 * ```
 */
export function tokenPatternSource(prefix: string, environments: readonly string[]): string {
  assertLiteralLabels(prefix, environments)
  return tokenBody(prefix, `(?:${environments.join('|')})`)
}

/**
 * The portable secret-scanning regex for one configuration (behind `keys.secretScanningPattern`, printed
 * in docs/security.md): no non-capturing groups, `\b`, `\d`, lookaround or lazy quantifiers, so POSIX ERE
 * reads it like PCRE, RE2, Hyperscan, Python `re` and JavaScript do. The edges are part of the match:
 * group 1 is what stands before the token, group 2 the token, group 3 its environment, group 4 what
 * follows (a non-alphanumeric character, or nothing at the end of a line). Engines that search a whole
 * text need multi-line mode (`m`, `re.M`, `(?m)`), or a token opening the line after another is missed.
 *
 * @example
 * ```ts
 * import { secretScanningPatternSource } from './scanning-pattern.js'
 * const pattern = new RegExp(secretScanningPatternSource('acme', ['live', 'test']), 'gm')
 * const tokens = [...'KEY=...'.matchAll(pattern)].map((match) => match[2])
 * ```
 */
export function secretScanningPatternSource(prefix: string, environments: readonly string[]): string {
  assertLiteralLabels(prefix, environments)
  return `(${LEADING_EDGE})(${tokenBody(prefix, `(${environments.join('|')})`)})(${TRAILING_EDGE})`
}
