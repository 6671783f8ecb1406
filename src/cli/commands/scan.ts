/**
 * `keywarden scan <paths…>`: finds tokens in files, for a pre-commit hook or a CI step. Each finding
 * is named by file and line with the token shortened to its prefix, environment and last four
 * characters; exit code 1 when there is any. Needs no store and no pepper: the checksum confirms each
 * candidate offline.
 */
import * as z from 'zod/mini'
import { JSON_OPTION, type CommandSpec } from '../command.js'
import { loadConfig } from '../config.js'
import { EXIT } from '../exit-codes.js'
import { printJson, quoteInput, safeText } from '../output.js'
import { tokenFinder, type TokenFinding, type TokenShape } from '../scan/find-tokens.js'
import { scanFile } from '../scan/scan-file.js'
import { DEFAULT_EXCLUDES, walkFiles, type WalkEntry } from '../scan/walk-files.js'
import { itemList, readOptions } from '../values.js'

/** How many files are read at the same time. */
const CONCURRENCY = 8

interface FileResult {
  readonly path: string
  readonly findings: readonly TokenFinding[]
  readonly error?: string
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

/** `keywarden scan`. */
export const SCAN_COMMAND: CommandSpec = {
  path: ['scan'],
  summary: 'Find tokens in files; exit code 1 if there is any',
  description: [
    'Directories are read recursively, skipping .git and node_modules (and each --exclude name).',
    'A candidate matches the published secret-scanning pattern and is confirmed by its checksum. With a',
    'configuration file, only tokens of its prefix (and environments) count; without one, any prefix and',
    'environment. Each finding prints as file:line: prefix_env_… and the last four characters, never the',
    'whole token; --json adds the column and the key ID, for keywarden keys revoke.',
  ].join('\n'),
  arguments: '<paths…>',
  arity: { min: 1, max: Number.POSITIVE_INFINITY },
  options: {
    exclude: { type: 'string', multiple: true, value: '<name>', description: 'also skip files and directories with this name (or several: a,b)' },
    config: { type: 'string', value: '<file>', description: 'configuration file whose prefix to look for (default: keywarden.config.json here, if present)' },
    ...JSON_OPTION,
  },
  examples: [
    'keywarden scan .',
    'git diff --cached --name-only --diff-filter=ACM -z | xargs -0 -r keywarden scan',
    'keywarden scan --exclude fixtures --json src config',
  ],
  run: async (invocation) => {
    const values = readOptions(z.object({ exclude: z.optional(itemList) }), invocation.values)
    const { io } = invocation
    const config = loadConfig(io, typeof invocation.values['config'] === 'string' ? invocation.values['config'] : undefined)
    const shape: TokenShape = { prefix: config.settings.prefix ?? null, environments: config.settings.environments ?? null }
    const find = tokenFinder(shape)
    const exclude = new Set([...DEFAULT_EXCLUDES, ...(values.exclude ?? [])])

    const entries: WalkEntry[] = []
    for await (const entry of walkFiles(invocation.positionals, io.cwd, exclude)) entries.push(entry)
    const results: FileResult[] = new Array(entries.length)
    let next = 0
    const worker = async () => {
      while (next < entries.length) {
        const index = next++
        const entry = entries[index]!
        if ('error' in entry) results[index] = { path: entry.path, findings: [], error: entry.error }
        else {
          results[index] = await scanFile(entry.absolute, find).then(
            (findings) => ({ path: entry.path, findings }),
            (error: unknown) => ({ path: entry.path, findings: [], error: String((error as { code?: unknown })?.code ?? 'unreadable') }),
          )
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))

    const failed = results.filter((result) => result.error !== undefined)
    const scanned = results.length - failed.length
    const findings = results.flatMap((result) => result.findings.map((finding) => ({ file: result.path, ...finding })))
    const files = results.filter((result) => result.findings.length > 0).length
    if (invocation.values['json'] === true) {
      printJson(io, { findings, filesScanned: scanned, unreadable: failed.map((result) => ({ file: result.path, error: result.error })) })
    } else {
      for (const finding of findings) io.stdout(`${safeText(finding.file)}:${finding.line}: ${finding.redacted}\n`)
    }
    for (const result of failed) io.stderr(`keywarden: cannot read ${quoteInput(result.path)} (${result.error})\n`)
    // With a path unread and nothing found, the error lines say it all: no "no tokens" to contradict them.
    if (invocation.values['json'] !== true && (findings.length > 0 || failed.length === 0)) {
      io.stderr(
        findings.length > 0
          ? `Found ${plural(findings.length, 'token')} in ${plural(files, 'file')} (${plural(scanned, 'file')} scanned). Remove them, and revoke or rotate their keys: --json gives the key IDs.\n`
          : `No tokens found (${plural(scanned, 'file')} scanned).\n`,
      )
    }
    if (findings.length > 0) return EXIT.found
    return failed.length > 0 ? EXIT.usage : EXIT.ok
  },
}
