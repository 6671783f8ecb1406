/**
 * The command line, read with `node:util` `parseArgs`: which command it names, its options and its
 * arguments. Options may stand anywhere (`keywarden --json keys list` and `keywarden keys list --json`
 * alike); every mistake becomes a {@link UsageError} that names the option and the command's help.
 */
import { parseArgs } from 'node:util'
import { HELP_OPTION, type CommandSpec, type OptionSpecs, type OptionValues } from './command.js'
import { UsageError } from './exit-codes.js'
import { quoteInput } from './output.js'

/** What the command line asks for. */
export type CommandLine =
  | { readonly kind: 'run'; readonly command: CommandSpec; readonly values: OptionValues; readonly positionals: readonly string[] }
  /** `--help`, for the whole bin (`path` empty), a group (`['keys']`) or a command. */
  | { readonly kind: 'help'; readonly path: readonly string[] }
  /** A group named without one of its commands (`keywarden keys`, or nothing at all). */
  | { readonly kind: 'incomplete'; readonly path: readonly string[] }
  | { readonly kind: 'version' }

const VERSION_OPTION: OptionSpecs = { version: { type: 'boolean', description: 'print the version' } }

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number]

/** Every option any command knows, so that a value option anywhere takes its value (`--store x`). */
function allOptions(commands: readonly CommandSpec[]): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  const union: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const specs of [HELP_OPTION, VERSION_OPTION, ...commands.map((command) => command.options)]) {
    for (const [name, spec] of Object.entries(specs)) {
      union[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) }
    }
  }
  return union
}

/** Names of the commands a group holds, e.g. `create, list, …` for `keys`. */
export function groupMembers(commands: readonly CommandSpec[], group: string): string[] {
  return commands.filter((command) => command.path.length > 1 && command.path[0] === group).map((command) => command.path[1]!)
}

/** Reads `argv` (without `node` and the script) against the bin's commands. */
export function parseCommandLine(argv: readonly string[], commands: readonly CommandSpec[]): CommandLine {
  const { tokens } = parseArgs({ args: [...argv], options: allOptions(commands), strict: false, allowPositionals: true, tokens: true })
  const words: string[] = []
  const options: Extract<Token, { kind: 'option' }>[] = []
  for (const token of tokens) {
    if (token.kind === 'positional') words.push(token.value)
    else if (token.kind === 'option') options.push(token)
  }
  const asksHelp = options.some((option) => option.name === 'help')

  if (words.length === 0) {
    if (asksHelp) return { kind: 'help', path: [] }
    if (options.some((option) => option.name === 'version')) {
      if (options.length > 1) throw new UsageError('--version takes no other option')
      return { kind: 'version' }
    }
    if (options.length > 0) throw new UsageError(`${quoteInput(options[0]!.rawName)} needs a command first (see keywarden --help)`)
    return { kind: 'incomplete', path: [] }
  }

  const first = words[0]!
  const members = groupMembers(commands, first)
  let command: CommandSpec | undefined
  if (members.length > 0) {
    const second = words[1]
    if (second === undefined) return asksHelp ? { kind: 'help', path: [first] } : { kind: 'incomplete', path: [first] }
    command = commands.find((candidate) => candidate.path[0] === first && candidate.path[1] === second)
    if (command === undefined) throw new UsageError(`unknown command '${first} ${quoteInput(second, false)}' (see keywarden ${first} --help)`)
  } else {
    command = commands.find((candidate) => candidate.path.length === 1 && candidate.path[0] === first)
    if (command === undefined) throw new UsageError(`unknown command ${quoteInput(first)} (see keywarden --help)`)
  }
  // --help wins over every other mistake on the line: it is how people find out what they got wrong.
  if (asksHelp) return { kind: 'help', path: command.path }

  const name = `keywarden ${command.path.join(' ')}`
  const known: OptionSpecs = { ...command.options }
  const values: Record<string, string | boolean | string[]> = {}
  for (const option of options) {
    const spec = Object.hasOwn(known, option.name) ? known[option.name] : undefined
    // A short alias is known only if this command defines it; parseArgs maps every alias it was told of.
    if (spec === undefined || (!option.rawName.startsWith('--') && spec.short === undefined)) {
      throw new UsageError(`unknown option ${quoteInput(option.rawName)} for '${command.path.join(' ')}' (see ${name} --help)`)
    }
    if (spec.type === 'string') {
      if (option.value === undefined) throw new UsageError(`--${option.name} needs a value ${spec.value ?? ''}`.trimEnd())
      if (spec.multiple) values[option.name] = [...((values[option.name] as string[] | undefined) ?? []), option.value]
      else values[option.name] = option.value
    } else {
      if (option.value !== undefined) throw new UsageError(`--${option.name} takes no value`)
      values[option.name] = true
    }
  }

  const positionals = words.slice(command.path.length)
  if (positionals.length < command.arity.min) {
    throw new UsageError(`'${command.path.join(' ')}' needs ${command.arguments} (see ${name} --help)`)
  }
  if (positionals.length > command.arity.max) {
    throw new UsageError(`unexpected argument ${quoteInput(positionals[command.arity.max]!)} for '${command.path.join(' ')}' (see ${name} --help)`)
  }
  return { kind: 'run', command, values, positionals }
}
