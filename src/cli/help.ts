/**
 * The help texts, all made from the command specs: the bin's, a group's (`keys`) and a command's.
 */
import { groupMembers } from './args.js'
import { HELP_OPTION, type CommandSpec, type OptionSpecs } from './command.js'
import { EXIT } from './exit-codes.js'

/** What each exit code means, for the bin's help (docs/cli.md has the same table). */
const EXIT_MEANINGS: readonly [number, string][] = [
  [EXIT.ok, 'done (scan: no token found)'],
  [EXIT.found, 'scan found a token'],
  [EXIT.usage, 'bad command line, configuration, pepper or input; nothing changed'],
  [EXIT.store, 'the store cannot be opened or failed (unreachable, not migrated, driver missing)'],
  [EXIT.notFound, 'no key has that ID'],
  [EXIT.conflict, "the key's state forbids it (revoked, changed meanwhile, quota full)"],
  [EXIT.internal, 'a bug in keywarden: please report it'],
]

const ENVIRONMENT: readonly [string, string][] = [
  ['KEYWARDEN_STORE', 'the store URL, when --store is not given'],
  ['KEYWARDEN_PEPPER', "the pepper (the app's, so that new keys verify there)"],
  ['KEYWARDEN_PEPPER_ID', 'the ID the app gives that pepper (default: default)'],
  ['KEYWARDEN_ACTOR', 'who makes changes, for the audit trail (default: your user name)'],
]

function aligned(rows: readonly (readonly [string, string])[], indent = '  '): string {
  const width = Math.max(...rows.map(([left]) => left.length))
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}  ${right}`).join('\n')
}

function optionRows(options: OptionSpecs): [string, string][] {
  return Object.entries({ ...options, ...HELP_OPTION }).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`
    return [flag, spec.multiple ? `${spec.description} (repeatable)` : spec.description]
  })
}

function commandName(command: CommandSpec): string {
  return command.path.join(' ')
}

/** The help of the whole bin: commands, environment, exit codes. */
export function binHelp(commands: readonly CommandSpec[], version: string): string {
  return [
    `keywarden ${version}: manage API keys, migrate their store, and scan files for leaked tokens.`,
    '',
    'Usage: keywarden <command> [options]',
    '',
    'Commands:',
    aligned(commands.map((command) => [commandName(command), command.summary])),
    '',
    'Options:',
    aligned([
      ['-h, --help', "show help (after any command: that command's)"],
      ['--version', 'print the version'],
    ]),
    '',
    'Environment:',
    aligned(ENVIRONMENT),
    '',
    'Exit codes:',
    aligned(EXIT_MEANINGS.map(([code, meaning]) => [String(code), meaning])),
    '',
    "Run 'keywarden <command> --help' for a command's options; docs/cli.md has the whole story.",
    '',
  ].join('\n')
}

/** The help of a group of commands, e.g. `keys`. */
export function groupHelp(commands: readonly CommandSpec[], group: string): string {
  const members = groupMembers(commands, group)
  const rows = members.map((member) => {
    const command = commands.find((candidate) => candidate.path[0] === group && candidate.path[1] === member)!
    return [member, command.summary] as const
  })
  return [
    `Usage: keywarden ${group} <${members.join('|')}> [options]`,
    '',
    'Commands:',
    aligned(rows),
    '',
    `Run 'keywarden ${group} <command> --help' for a command's options.`,
    '',
  ].join('\n')
}

/** The help of one command: usage, description, options, examples. */
export function commandHelp(command: CommandSpec): string {
  const usage = ['keywarden', ...command.path, command.arguments, '[options]'].filter((part) => part !== '').join(' ')
  const lines = [`Usage: ${usage}`, '', command.summary + '.']
  if (command.description) lines.push('', command.description)
  lines.push('', 'Options:', aligned(optionRows(command.options)))
  if (command.examples.length > 0) lines.push('', 'Examples:', command.examples.map((example) => `  ${example}`).join('\n'))
  lines.push('')
  return lines.join('\n')
}
