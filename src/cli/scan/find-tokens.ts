/**
 * Finding tokens in text: the published secret-scanning pattern (docs/security.md) finds candidates,
 * the checksum confirms each, offline. With a configuration, the pattern of its prefix and
 * environments; without one, the pattern's general form, any prefix and any environment.
 */
import { LABEL_PATTERN, TokenParser } from '../../token/format.js'
import { secretScanningPatternSource } from '../../token/scanning-pattern.js'

/** A token found, without its secret. */
export interface TokenFinding {
  /** 1-based line number. */
  readonly line: number
  /** 1-based column of the token's first character. */
  readonly column: number
  /** The token's brand prefix. */
  readonly prefix: string
  /** The environment it names. */
  readonly environment: string
  /** Its key ID (public: `keywarden keys revoke <id>` takes it). */
  readonly keyId: string
  /** What may be printed of it: `prefix_environment_…` and its last four characters (of the checksum). */
  readonly redacted: string
}

/** Which tokens to look for: `null` for any prefix, or any environment. */
export interface TokenShape {
  /** The brand prefix, or `null` for any. */
  readonly prefix: string | null
  /** The environments, or `null` for any. */
  readonly environments: readonly string[] | null
}

// LABEL_PATTERN without its anchors: what any prefix or environment may be.
const ANY_LABEL = LABEL_PATTERN.source.replace(/^\^/, '').replace(/\$$/, '')

/**
 * The published pattern for `shape`, with any label where it names none, as a JavaScript regex whose
 * edges are lookarounds: group 1 is the token, group 2 its environment. Built from the published one,
 * so both keep the same edges and lengths. Lookarounds, because with any label the published form is
 * ambiguous: in `\nkw_…` its edge `\` would win over the escape `\n` and make the prefix `nkw`; here
 * each start is tried on its own, and the checksum picks the real one. The placeholders are valid
 * labels that cannot occur in the pattern's text; configured labels are letters and digits.
 */
function patternSource(shape: TokenShape): string {
  // (leading edge)(token, with (environment) inside)(trailing edge); the edges hold no parentheses.
  const source = secretScanningPatternSource('zzprefixzz', ['zzenvzz'])
  const leadingEnd = source.indexOf(')(')
  const trailingStart = source.lastIndexOf(')(')
  const leading = source.slice(1, leadingEnd)
  const trailing = source.slice(trailingStart + 2, -1)
  const token = source
    .slice(leadingEnd + 2, trailingStart)
    .replace('zzprefixzz_', `${shape.prefix ?? ANY_LABEL}_`)
    .replace('(zzenvzz)', `(${shape.environments?.join('|') ?? ANY_LABEL})`)
  return `(?<=${leading})(${token})(?=${trailing})`
}

/**
 * A function that finds every confirmed token of `shape` in a text of whole lines, numbering lines
 * from `firstLine`.
 *
 * @example
 * ```ts
 * import { tokenFinder } from './find-tokens.js'
 *
 * const find = tokenFinder({ prefix: null, environments: null })
 * for (const finding of find('API_KEY=...\n', 1)) console.log(`.env:${finding.line}: ${finding.redacted}`)
 * ```
 */
export function tokenFinder(shape: TokenShape): (text: string, firstLine: number) => TokenFinding[] {
  const source = patternSource(shape)
  // One parser per prefix and environment seen: each checks the format and the checksum, offline.
  const parsers = new Map<string, TokenParser>()
  const parserFor = (prefix: string, environment: string): TokenParser => {
    const name = `${prefix}_${environment}`
    let parser = parsers.get(name)
    if (parser === undefined) {
      if (parsers.size > 1000) parsers.clear()
      parsers.set(name, (parser = new TokenParser(prefix, [environment])))
    }
    return parser
  }
  return (text, firstLine) => {
    const pattern = new RegExp(source, 'gm')
    const findings: TokenFinding[] = []
    let line = firstLine
    let lineStart = 0
    let counted = 0
    let match: RegExpExecArray | null
    while ((match = pattern.exec(text)) !== null) {
      const token = match[1]!
      const environment = match[2]!
      const start = match.index
      // Labels hold no underscore: the prefix is everything before the first one.
      const parsed = parserFor(token.slice(0, token.indexOf('_')), environment).parse(token)
      if (parsed === null) {
        // Not a token (the checksum says so), but a real one may start inside it (`\nkw_…` read as `nkw_…`).
        pattern.lastIndex = start + 1
        continue
      }
      for (; counted < start; counted++) {
        if (text.charCodeAt(counted) === 10) {
          line++
          lineStart = counted + 1
        }
      }
      findings.push({
        line,
        column: start - lineStart + 1,
        prefix: parsed.prefix,
        environment: parsed.environment,
        keyId: parsed.keyId,
        redacted: `${parsed.prefix}_${parsed.environment}_…${token.slice(-4)}`,
      })
    }
    return findings
  }
}
