/**
 * What a command of the bin declares (its words, options, arguments, help text and handler), and the
 * option sets several commands share. The parser (args.ts) and the help (help.ts) read only this.
 */

/** One option of a command, as `node:util` `parseArgs` takes it plus what its help line says. */
export interface OptionSpec {
  /** `string` takes a value (`--store <url>`), `boolean` is a flag (`--json`). */
  readonly type: 'string' | 'boolean'
  /** Whether the option may be given more than once (its values are collected in order). */
  readonly multiple?: boolean
  /** One-letter alias, e.g. `h` for `-h`. */
  readonly short?: string
  /** The value's placeholder in the help, e.g. `<url>`. */
  readonly value?: string
  /** One line for the help. */
  readonly description: string
}

/** A command's options by long name (without the leading `--`). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>

/** The values `parseArgs` found: a string, `true`, or a list for `multiple` options. */
export type OptionValues = Readonly<Record<string, string | boolean | readonly string[] | undefined>>

/** What the bin writes to and reads from; `process` in main.ts, something else in a test. */
export interface CliIo {
  /** Writes to standard output: results, and the token of `keys create` / `keys rotate`. */
  readonly stdout: (text: string) => void
  /** Writes to standard error: errors, warnings and notes for people. */
  readonly stderr: (text: string) => void
  /** The environment (`KEYWARDEN_PEPPER`, `KEYWARDEN_STORE`, ...). */
  readonly env: Readonly<Record<string, string | undefined>>
  /** The directory relative paths are read from. */
  readonly cwd: string
}

/** One run of a command: its parsed options and arguments. */
export interface Invocation {
  /** The option values, by long name. */
  readonly values: OptionValues
  /** The arguments after the command's words, e.g. the key ID or the paths to scan. */
  readonly positionals: readonly string[]
  /** Where output goes. */
  readonly io: CliIo
}

/** A command of the bin: `keys create`, `audit`, `scan`, ... */
export interface CommandSpec {
  /** The words that name it, e.g. `['keys', 'create']`. */
  readonly path: readonly string[]
  /** One line for lists of commands. */
  readonly summary: string
  /** Paragraphs for its own help, after the usage line. */
  readonly description?: string
  /** The arguments in the usage line, e.g. `<id>`; empty for none. */
  readonly arguments: string
  /** How many arguments it takes. */
  readonly arity: { readonly min: number; readonly max: number }
  /** Its options (`--help` is added to every command). */
  readonly options: OptionSpecs
  /** Command lines shown under "Examples". */
  readonly examples: readonly string[]
  /** Runs it; resolves to the exit code. */
  readonly run: (invocation: Invocation) => Promise<number>
}

/** Where the keys are, for every command that opens the store. */
export const STORE_OPTIONS: OptionSpecs = {
  store: {
    type: 'string',
    value: '<url>',
    description: 'redis://…, rediss://…, postgres://…, mysql://… or sqlite:<file> (default: $KEYWARDEN_STORE, then the config file)',
  },
  config: { type: 'string', value: '<file>', description: 'configuration file (default: keywarden.config.json here, if present)' },
  table: { type: 'string', value: '<name>', description: 'SQL stores: the keys table (default: keywarden_keys, or the config file)' },
  namespace: { type: 'string', value: '<name>', description: 'Redis: the namespace of the keys (default: the store default, or the config file)' },
}

/** The machine-readable output switch. */
export const JSON_OPTION: OptionSpecs = {
  json: { type: 'boolean', description: 'print one JSON document on stdout instead of text for people' },
}

/** Who made a change and why, stored on its audit entry. */
export const CHANGE_OPTIONS: OptionSpecs = {
  actor: {
    type: 'string',
    value: '<[type:]id>',
    description: 'who makes the change, e.g. alice or service:deploy-bot (default: $KEYWARDEN_ACTOR, then your user name)',
  },
  reason: { type: 'string', value: '<text>', description: 'why, in words for people; kept in the audit trail' },
}

/** Added to every command. */
export const HELP_OPTION: OptionSpecs = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
}
