/**
 * The configuration file (`--config <file>`, else `keywarden.config.json` in the working directory if
 * there is one): the KeyManager settings the bin cannot guess (prefix, environments, roles, groups,
 * expiry policy) and where the store is. JSON, checked with zod; every problem names its setting.
 * The pepper is never read from it: a file gets committed, an environment variable does not.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import * as z from 'zod/mini'
import { formatPath } from '../errors.js'
import { LABEL_PATTERN } from '../token/format.js'
import { PARSE_CONTEXT } from '../validation.js'
import type { CliIo } from './command.js'
import { UsageError } from './exit-codes.js'
import { quoteInput } from './output.js'

/** The file read when `--config` is not given, if it exists in the working directory. */
export const DEFAULT_CONFIG_FILE = 'keywarden.config.json'

const label = z.string().check(z.regex(LABEL_PATTERN, 'must be 1-16 lower-case letters or digits, starting with a letter'))
const duration = z.union([z.string(), z.number()])
const names = z.array(z.string())

const configSchema = z.strictObject({
  /** Editors' JSON-schema hint; ignored. */
  $schema: z.optional(z.string()),
  prefix: z.optional(label),
  environments: z.optional(z.array(label).check(z.minLength(1))),
  roles: z.optional(z.record(z.string(), names)),
  groups: z.optional(z.record(z.string(), names)),
  scopeWildcards: z.optional(z.boolean()),
  expiry: z.optional(z.strictObject({ default: z.optional(z.nullable(duration)), max: z.optional(z.nullable(duration)) })),
  rotation: z.optional(z.strictObject({ maxGracePeriod: z.optional(duration) })),
  maxKeysPerOwner: z.optional(z.number().check(z.int(), z.gte(0))),
  startLength: z.optional(z.number().check(z.int(), z.gte(0), z.lte(8))),
  pepperId: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, - or _'))),
  store: z.optional(z.string().check(z.minLength(1))),
  table: z.optional(z.string()),
  namespace: z.optional(z.string()),
})

/** The settings of a configuration file, as checked. */
export type CliConfig = z.infer<typeof configSchema>

/** A configuration and where it came from. */
export interface LoadedConfig {
  /** The file as given (or the default name), or `null` when no file was read. */
  readonly file: string | null
  /** Its settings; `{}` without a file. */
  readonly settings: CliConfig
}

const KNOWN = Object.keys(configSchema.def.shape).filter((key) => key !== '$schema')

function describe(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const path = formatPath(issue.path.map((part) => (typeof part === 'symbol' ? String(part.description) : part)))
      if (issue.code === 'unrecognized_keys') {
        const where = path ? ` in ${path}` : ''
        return `unknown setting ${issue.keys.map((key) => quoteInput(key)).join(', ')}${where} (known: ${path ? 'see docs/cli.md' : KNOWN.join(', ')})`
      }
      return `${path || 'the file'}: ${issue.message}`
    })
    .join('; ')
}

/** ` (line N)` of a JSON syntax error, when JSON.parse's message gives its position. */
function jsonErrorLine(text: string, error: unknown): string {
  const position = /at position (\d+)/.exec(String((error as Error)?.message))?.[1]
  if (position === undefined) return ''
  return ` (line ${text.slice(0, Number(position)).split('\n').length})`
}

/**
 * Reads the configuration: `explicit` (from `--config`, which must exist), else the default file if
 * present, else nothing.
 *
 * @throws {@link UsageError} naming the file and each bad setting.
 */
export function loadConfig(io: CliIo, explicit: string | undefined): LoadedConfig {
  const file = explicit ?? DEFAULT_CONFIG_FILE
  const path = isAbsolute(file) ? file : join(io.cwd, file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (explicit === undefined && code === 'ENOENT') return { file: null, settings: {} }
    throw new UsageError(`${quoteInput(file)}: cannot read the configuration file (${typeof code === 'string' ? code : 'unreadable'})`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    // Not JSON.parse's message: it may quote the file, and the file may hold what it should not.
    throw new UsageError(`${quoteInput(file)}: not valid JSON${jsonErrorLine(text, error)}`)
  }
  if (typeof data === 'object' && data !== null && Object.hasOwn(data, 'pepper')) {
    throw new UsageError(`${quoteInput(file)}: pepper: never put the pepper in a file; set KEYWARDEN_PEPPER`)
  }
  const result = configSchema.safeParse(data, PARSE_CONTEXT)
  if (!result.success) throw new UsageError(`${quoteInput(file)}: ${describe(result.error.issues)}`)
  return { file, settings: result.data }
}
