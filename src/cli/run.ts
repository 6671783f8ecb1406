/**
 * The bin's entry, independent of `process`: reads the command line, runs the command, and turns every
 * failure into one line on stderr (`keywarden: <message>`, never a stack trace) and an exit code.
 */
import { parseCommandLine } from './args.js'
import type { CliIo, CommandSpec } from './command.js'
import { AUDIT_COMMAND } from './commands/audit.js'
import { KEY_COMMANDS } from './commands/keys.js'
import { MIGRATE_COMMAND } from './commands/migrate.js'
import { SCAN_COMMAND } from './commands/scan.js'
import { EXIT } from './exit-codes.js'
import { describeFailure } from './failure.js'
import { binHelp, commandHelp, groupHelp } from './help.js'
import { VERSION } from './version.js'

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly CommandSpec[] = [...KEY_COMMANDS, AUDIT_COMMAND, MIGRATE_COMMAND, SCAN_COMMAND]

function helpFor(path: readonly string[]): string {
  if (path.length === 0) return binHelp(COMMANDS, VERSION)
  const command = COMMANDS.find((candidate) => candidate.path.join(' ') === path.join(' '))
  return command === undefined ? groupHelp(COMMANDS, path[0]!) : commandHelp(command)
}

/**
 * Runs the bin with `argv` (the arguments after the script) and resolves to its exit code. Never
 * rejects: whatever fails is reported on `io.stderr`.
 *
 * @example
 * ```ts
 * import { runCli } from './run.js'
 *
 * const code = await runCli(['keys', 'list', '--store', 'sqlite:keys.db'], {
 *   stdout: (text) => process.stdout.write(text),
 *   stderr: (text) => process.stderr.write(text),
 *   env: process.env,
 *   cwd: process.cwd(),
 * })
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const line = parseCommandLine(argv, COMMANDS)
    switch (line.kind) {
      case 'version':
        io.stdout(`${VERSION}\n`)
        return EXIT.ok
      case 'help':
        io.stdout(helpFor(line.path))
        return EXIT.ok
      case 'incomplete':
        // A group without its command: its help, as the usage mistake it is.
        io.stderr(helpFor(line.path))
        return EXIT.usage
      case 'run':
        return await line.command.run({ values: line.values, positionals: line.positionals, io })
    }
  } catch (error) {
    const { exitCode, message } = describeFailure(error)
    io.stderr(`keywarden: ${message}\n`)
    return exitCode
  }
}
