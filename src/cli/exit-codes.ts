/**
 * The bin's exit codes, and the errors that carry one. docs/cli.md documents the same table; scripts
 * branch on these numbers, so they never change meaning.
 */

/**
 * Every exit code of the `keywarden` bin.
 *
 * @example
 * ```ts
 * import { EXIT } from './exit-codes.js'
 *
 * process.exitCode = EXIT.usage
 * ```
 */
export const EXIT = {
  /** Done; for `scan`, no token found. */
  ok: 0,
  /** `scan` found at least one token. */
  found: 1,
  /** Bad command line, configuration file, pepper or input: nothing was changed. */
  usage: 2,
  /** The store could not be opened or failed (unreachable, no schema, a driver missing). */
  store: 3,
  /** No key has the given ID. */
  notFound: 4,
  /** The key's state forbids the change (revoked, changed concurrently, an owner's quota full). */
  conflict: 5,
  /** A bug: anything else that went wrong. */
  internal: 70,
} as const

/** One of the {@link EXIT} codes. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/**
 * A failure the bin reports as one line on stderr with its exit code. The message never holds a
 * secret, a hash, a pepper or a store URL.
 *
 * @example
 * ```ts
 * import { CliError, EXIT } from './exit-codes.js'
 *
 * throw new CliError(EXIT.usage, '--limit: must be a whole number')
 * ```
 */
export class CliError extends Error {
  /** The exit code the bin ends with. */
  readonly exitCode: ExitCode

  /** Builds the error with the exit code it ends the bin with. */
  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/**
 * A mistake on the command line or in the configuration (exit code 2).
 *
 * @example
 * ```ts
 * import { UsageError } from './exit-codes.js'
 *
 * throw new UsageError("unknown command 'kyes' (see keywarden --help)")
 * ```
 */
export class UsageError extends CliError {
  /** Builds the error; the message should say what to do instead. */
  constructor(message: string) {
    super(EXIT.usage, message)
    this.name = 'UsageError'
  }
}
