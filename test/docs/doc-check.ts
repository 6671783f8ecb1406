/**
 * The documentation checker behind test/docs/snippets.test.ts (the rules are in test/docs/README.md).
 *
 * It reads markdown with a small line-based scanner (fenced blocks, headings, links), type-checks every
 * ```ts / ```js block with one TypeScript Program over all of them, and checks json, sql and sh blocks
 * and relative links without running anything. Every problem is reported as `path.md:line[:column]`
 * of the markdown, so a failure names the page and the line to fix. The fenced blocks in the TSDoc
 * comments of src/** and adapters/** (the API reference's examples) are checked the same way, in the
 * same Program, and reported as `src/file.ts:line:column` of the source.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, posix, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/**
 * A markdown page to check: its path relative to the repository root (forward slashes) and its text.
 * A TypeScript source whose TSDoc comments are checked has the same shape.
 */
export interface MarkdownPage {
  path: string
  text: string
}

/** A fenced code block. Lines are 1-based lines of the markdown file. */
export interface CodeBlock {
  /** The first word of the info string, lower-cased; '' when the fence has none. */
  lang: string
  /** The whole info string, as written. */
  info: string
  /** Line of the opening fence. */
  fenceLine: number
  /** Line of the block's first content line. */
  startLine: number
  /** Indentation of the opening fence, removed from every content line (so columns shift by it). */
  indent: number
  /** The content, indentation removed, without the fences. */
  code: string
  closed: boolean
}

/** A link destination found outside code: `[x](dest)`, `![x](dest)`, `[x]: dest`, `href="dest"`, `src="dest"`. */
export interface Link {
  target: string
  line: number
}

export interface ParsedMarkdown {
  blocks: CodeBlock[]
  links: Link[]
  /** GitHub heading anchors (with -1, -2 suffixes for repeats) plus explicit `id=` / `name=` anchors. */
  anchors: Set<string>
}

export interface Problem {
  /** Markdown path, relative to the repository root. */
  path: string
  line: number
  column?: number
  message: string
}

export function formatProblem(problem: Problem): string {
  return `${problem.path}:${problem.line}${problem.column === undefined ? '' : `:${problem.column}`}  ${problem.message}`
}

// ---------------------------------------------------------------------------------------------------
// Markdown scanning

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/

/** Splits markdown into fenced code blocks and the prose lines between them (code lines blanked). */
export function parseMarkdown(text: string): ParsedMarkdown {
  const lines = text.split(/\r?\n/)
  const blocks: CodeBlock[] = []
  const prose: string[] = [] // same length as lines; code lines are ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const open = FENCE.exec(line)
    // A backtick fence's info string cannot contain a backtick (that is inline code instead).
    if (!open || (open[2]!.startsWith('`') && open[3]!.includes('`'))) {
      prose.push(line)
      continue
    }
    const indent = open[1]!.length
    const fence = open[2]!
    const info = open[3]!.trim()
    const body: string[] = []
    let closed = false
    let j = i + 1
    for (; j < lines.length; j++) {
      const close = /^(\s*)(`{3,}|~{3,})\s*$/.exec(lines[j]!)
      if (close && close[2]![0] === fence[0] && close[2]!.length >= fence.length) {
        closed = true
        break
      }
      body.push(stripIndent(lines[j]!, indent))
    }
    blocks.push({
      lang: (info.split(/[\s{]/)[0] ?? '').toLowerCase(),
      info,
      fenceLine: i + 1,
      startLine: i + 2,
      indent,
      code: body.join('\n'),
      closed,
    })
    for (let k = i; k <= Math.min(j, lines.length - 1); k++) prose.push('')
    i = j
  }
  return { blocks, links: findLinks(prose), anchors: findAnchors(prose) }
}

function stripIndent(line: string, indent: number): string {
  let n = 0
  while (n < indent && (line[n] === ' ' || line[n] === '\t')) n++
  return line.slice(n)
}

/** Removes inline code spans (matching backtick runs), keeping the line's length for columns. */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (span) => ' '.repeat(span.length))
}

function findLinks(prose: string[]): Link[] {
  const links: Link[] = []
  prose.forEach((raw, index) => {
    const line = withoutCodeSpans(raw)
    const add = (target: string | undefined): void => {
      if (target !== undefined && target !== '') links.push({ target, line: index + 1 })
    }
    // Inline links and images: every `](destination "optional title")`, also when nested in another link.
    for (const m of line.matchAll(/\]\(\s*(?:<([^>]*)>|((?:[^()\s]|\([^()\s]*\))*))(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g)) add(m[1] ?? m[2])
    // Reference definitions: `[label]: destination`.
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/.exec(line)
    if (definition) add(definition[1])
    // Raw HTML.
    for (const m of line.matchAll(/\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) add(m[1] ?? m[2])
  })
  return links
}

/** GitHub's heading anchor: lower case, punctuation other than - and _ removed, spaces to hyphens. */
export function githubSlug(headingText: string): string {
  return headingText
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-')
}

/** The text GitHub renders for a heading's markdown (code spans keep their content, markup goes). */
export function headingText(markdown: string): string {
  const parts: string[] = []
  let rest = markdown
  // Code spans are literal; everything else loses its markup.
  for (;;) {
    const m = /(`+)([\s\S]*?[^`])\1(?!`)/.exec(rest)
    if (!m) break
    parts.push(stripInlineMarkup(rest.slice(0, m.index)), m[2]!.trim())
    rest = rest.slice(m.index + m[0].length)
  }
  parts.push(stripInlineMarkup(rest))
  return parts.join('').trim()
}

function stripInlineMarkup(text: string): string {
  return text
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/!?\[([^\]]*)\]\[[^\]]*\]/g, '$1') // reference links
    .replace(/<[^>]+>/g, '') // HTML tags
    .replace(/\\([\\`*_{}[\]()#+\-.!])/g, '$1') // backslash escapes
    .replace(/(\*\*|__|\*|~~)/g, '')
    .replace(/(^|[^\p{L}\p{N}])_+|_+(?=[^\p{L}\p{N}]|$)/gu, '$1') // _emphasis_, not snake_case
}

function findAnchors(prose: string[]): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  const addHeading = (markdown: string): void => {
    const base = githubSlug(headingText(markdown))
    let slug = base
    // github-slugger: a repeated slug gets -1, -2, ... appended.
    while (seen.has(slug)) {
      const count = seen.get(base)! + 1
      seen.set(base, count)
      slug = `${base}-${count}`
    }
    seen.set(slug, 0)
    anchors.add(slug)
  }
  prose.forEach((line, index) => {
    const atx = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line)
    if (atx) addHeading(atx[2] ?? '')
    const previous = index > 0 ? prose[index - 1]! : ''
    if (
      /^ {0,3}(=+|-+)[ \t]*$/.test(line) &&
      previous.trim() !== '' &&
      !/^ {0,3}(#|>|[-*+][ \t]|\d+[.)][ \t]|\||```|~~~)/.test(previous) &&
      !/^ {0,3}(=+|-+)[ \t]*$/.test(previous)
    ) {
      addHeading(previous.trim())
    }
    for (const m of withoutCodeSpans(line).matchAll(/<[a-z][^>]*\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) anchors.add((m[1] ?? m[2])!)
  })
  return anchors
}

// ---------------------------------------------------------------------------------------------------
// Links

export interface LinkContext {
  root: string
  /** Anchors of markdown files, by path relative to the root; pages not listed are read from disk. */
  anchorsOf: (path: string) => Set<string> | undefined
}

/** Generated (and git-ignored) output: links into it are not checked, it exists only after `npm run docs`. */
const GENERATED = ['docs/api']

export function checkLinks(page: MarkdownPage, links: Link[], context: LinkContext): Problem[] {
  const problems: Problem[] = []
  for (const { target, line } of links) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue // http:, https:, mailto:, ...
    const hash = target.indexOf('#')
    const rawPath = hash === -1 ? target : target.slice(0, hash)
    const anchor = hash === -1 ? undefined : safeDecode(target.slice(hash + 1))
    const pathPart = safeDecode(rawPath.split('?')[0]!)
    const resolved = pathPart === '' ? page.path : pathPart.startsWith('/') ? posix.normalize(pathPart.slice(1)) : posix.join(posix.dirname(page.path), pathPart)
    const report = (message: string): void => {
      problems.push({ path: page.path, line, message: `link ${target}: ${message}` })
    }
    if (resolved.startsWith('..')) {
      report('points outside the repository')
      continue
    }
    if (GENERATED.some((dir) => resolved === dir || resolved.startsWith(`${dir}/`))) continue
    const absolute = join(context.root, resolved)
    if (pathPart !== '' && !existsSync(absolute)) {
      report(`${resolved} does not exist`)
      continue
    }
    if (anchor === undefined || anchor === '') continue
    if (!resolved.toLowerCase().endsWith('.md')) {
      if (!/^L\d+(C\d+)?(-L\d+(C\d+)?)?$/.test(anchor)) report(`#${anchor} on a file that is not markdown (only #L<line> anchors are checked there)`)
      continue
    }
    const anchors = context.anchorsOf(resolved)
    if (!anchors) {
      report(`${resolved} is a directory or unreadable, so #${anchor} cannot be checked`)
      continue
    }
    if (!anchors.has(anchor)) {
      const near = [...anchors].filter((a) => a.includes(anchor) || anchor.includes(a)).slice(0, 3)
      report(`no heading in ${resolved} has the anchor #${anchor}${near.length > 0 ? ` (did you mean ${near.map((a) => `#${a}`).join(', ')}?)` : ''}`)
    }
  }
  return problems
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

// ---------------------------------------------------------------------------------------------------
// Non-code blocks: languages, json, sql, sh

export const TYPESCRIPT_LANGS = new Set(['ts', 'typescript'])
export const JAVASCRIPT_LANGS = new Set(['js', 'javascript'])
const SHELL_LANGS = new Set(['sh', 'bash'])
/** Output samples and prose: not checked. */
const UNCHECKED_LANGS = new Set(['text', 'http', 'diff'])

export interface ProjectFacts {
  /** package.json `scripts`. */
  scripts: Set<string>
  /** Names `npm install` may name: keywarden, peer and dev dependencies, and `@types/*` of those. */
  installable: Set<string>
  /** Executables in node_modules/.bin. */
  bins: Set<string>
  /** Shipped migrations, normalised (see normaliseSql), by path. */
  migrations: Map<string, string>
}

export function readProjectFacts(root: string): ProjectFacts {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string
    scripts?: Record<string, string>
    peerDependencies?: Record<string, string>
    devDependencies?: Record<string, string>
  }
  const packages = [...Object.keys(manifest.peerDependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})]
  const installable = new Set([manifest.name, ...packages])
  for (const name of packages) {
    if (name.startsWith('@types/')) continue
    // @scope/name is typed by @types/scope__name.
    installable.add(`@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`)
  }
  const binDir = join(root, 'node_modules', '.bin')
  const bins = new Set(existsSync(binDir) ? readdirSync(binDir).map((name) => name.replace(/\.(cmd|ps1)$/, '')) : [])
  // One folder per database, each with its migration.sql.
  const sqlDir = join(root, 'adapters', 'sql')
  const migrations = new Map<string, string>()
  for (const database of readdirSync(sqlDir).sort()) {
    const file = join(sqlDir, database, 'migration.sql')
    if (existsSync(file)) migrations.set(`adapters/sql/${database}/migration.sql`, normaliseSql(readFileSync(file, 'utf8')))
  }
  return { scripts: new Set(Object.keys(manifest.scripts ?? {})), installable, bins, migrations }
}

/** Checks every block that is not TypeScript or JavaScript (those go to checkCodeBlocks). */
export function checkOtherBlocks(page: MarkdownPage, blocks: CodeBlock[], facts: ProjectFacts): Problem[] {
  const problems: Problem[] = []
  for (const block of blocks) {
    const at = (line: number, message: string): void => {
      problems.push({ path: page.path, line, message })
    }
    if (!block.closed) at(block.fenceLine, 'code fence is never closed')
    if (block.lang === '') {
      at(block.fenceLine, 'code block without a language: say ```ts, ```js, ```json, ```sql, ```sh, ```bash, or ```text for output and anything else')
    } else if (TYPESCRIPT_LANGS.has(block.lang) || JAVASCRIPT_LANGS.has(block.lang) || UNCHECKED_LANGS.has(block.lang)) {
      // ts/js: checkCodeBlocks; text/http/diff: samples.
    } else if (block.lang === 'json') {
      const problem = checkJson(block.code)
      if (problem) at(block.startLine + problem.line, `json block does not parse: ${problem.message}`)
    } else if (block.lang === 'sql') {
      for (const problem of checkSql(block.code, facts)) at(block.startLine + problem.line, problem.message)
    } else if (SHELL_LANGS.has(block.lang)) {
      for (const problem of checkShell(block.code, facts)) at(block.startLine + problem.line, problem.message)
    } else {
      at(block.fenceLine, `unknown code block language "${block.lang}": use ts, typescript, js, javascript, json, sql, sh, bash, text, http or diff (so no block goes unchecked by accident)`)
    }
  }
  return problems
}

/** Problems inside a block carry a 0-based line within the block. */
interface BlockProblem {
  line: number
  message: string
}

export function checkJson(code: string): BlockProblem | undefined {
  try {
    JSON.parse(code)
    return undefined
  } catch (error) {
    const message = (error as Error).message
    const position = /position (\d+)/.exec(message)
    const line = position ? code.slice(0, Number(position[1])).split('\n').length - 1 : 0
    return { line, message }
  }
}

/** Lower case, comments removed, whitespace collapsed and dropped around punctuation. */
export function normaliseSql(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/\s*([(),;=])\s*/g, '$1')
    .trim()
}

/** Every statement of a sql block must appear, normalised, in one shipped migration. */
export function checkSql(code: string, facts: ProjectFacts): BlockProblem[] {
  const problems: BlockProblem[] = []
  for (const { statement, start } of splitSqlStatements(code)) {
    const text = normaliseSql(statement)
    const line = code.slice(0, start + (statement.length - statement.trimStart().length)).split('\n').length - 1
    if (text === '' || text === ';') continue
    const bare = text.replace(/;$/, '')
    if (![...facts.migrations.values()].some((migration) => migration.includes(bare))) {
      problems.push({
        line,
        message: `sql statement is not in any shipped migration (${[...facts.migrations.keys()].join(', ')}); copy it from one exactly, or use a \`\`\`text block for other SQL: ${oneLine(statement)}`,
      })
    }
  }
  return problems
}

function splitSqlStatements(code: string): { statement: string; start: number }[] {
  const statements: { statement: string; start: number }[] = []
  let start = 0
  let quote: string | undefined
  for (let i = 0; i < code.length; i++) {
    const c = code[i]!
    if (quote) {
      if (c === quote) quote = undefined
    } else if (c === "'" || c === '"' || c === '`') {
      quote = c
    } else if (c === '-' && code[i + 1] === '-') {
      const end = code.indexOf('\n', i)
      i = end === -1 ? code.length : end
    } else if (c === ';') {
      statements.push({ statement: code.slice(start, i + 1), start })
      start = i + 1
    }
  }
  statements.push({ statement: code.slice(start), start })
  return statements.filter(({ statement }) => normaliseSql(statement) !== '')
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > 80 ? `${line.slice(0, 77)}...` : line
}

const NPM_COMMANDS = new Set(
  (
    'access adduser audit bugs cache ci completion config dedupe deprecate diff dist-tag docs doctor edit exec explain explore ' +
    'find-dupes fund get help help-search init install install-ci-test install-test link ll login logout ls org outdated owner ' +
    'pack ping pkg prefix profile prune publish query rebuild repo restart root run sbom search set shrinkwrap star stars start ' +
    'stop team test token undeprecate uninstall unpublish unstar update version view whoami ' +
    // the usual aliases
    'add i run-script t tst x un rm remove r uninstall list ln create up upgrade info show clean-install ic cit it'
  ).split(' '),
)
const NPM_INSTALL = new Set(['install', 'i', 'add', 'in', 'ins'])
const NPM_RUN = new Set(['run', 'run-script'])
/** npm commands that run the script of the same name. */
const NPM_SCRIPT_SHORTHANDS = new Map([
  ['start', 'start'],
  ['test', 'test'],
  ['t', 'test'],
  ['tst', 'test'],
  ['stop', 'stop'],
  ['restart', 'restart'],
])

/**
 * Checks the npm, npx, pnpm, yarn and bun commands of a shell block: scripts exist, installed package
 * names are ones this project knows, npx binaries are installed. Other commands are not checked.
 */
export function checkShell(code: string, facts: ProjectFacts): BlockProblem[] {
  const problems: BlockProblem[] = []
  const lines = code.split('\n')
  let heredoc: string | undefined
  let pending = ''
  let pendingLine = 0
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!
    if (heredoc !== undefined) {
      if (raw.trim() === heredoc) heredoc = undefined
      continue
    }
    if (pending === '') pendingLine = index
    let line = raw.replace(/^\s*\$\s+/, '') // a "$ " prompt
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `
      continue
    }
    line = pending + line
    pending = ''
    const here = /<<-?\s*['"]?(\w+)['"]?/.exec(line)
    if (here) heredoc = here[1]
    for (const command of splitCommands(stripShellComment(line))) {
      for (const message of checkCommand(command, facts)) problems.push({ line: pendingLine, message })
    }
  }
  return problems
}

function stripShellComment(line: string): string {
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === quote) quote = undefined
    } else if (c === "'" || c === '"') {
      quote = c
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i)
    }
  }
  return line
}

/** Splits on && || ; | & and tokenises (quotes removed, no expansion). */
function splitCommands(line: string): string[][] {
  const commands: string[][] = [[]]
  let word: string | undefined
  let quote: string | undefined
  const endWord = (): void => {
    if (word !== undefined) commands[commands.length - 1]!.push(word)
    word = undefined
  }
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === quote) quote = undefined
      else word = (word ?? '') + c
    } else if (c === "'" || c === '"') {
      quote = c
      word = word ?? ''
    } else if (/\s/.test(c)) {
      endWord()
    } else if (c === ';' || c === '|' || c === '&' || c === '(' || c === ')') {
      endWord()
      if (c === '|' || c === '&') while (line[i + 1] === c) i++
      commands.push([])
    } else {
      word = (word ?? '') + c
    }
  }
  endWord()
  // Leading environment assignments (FOO=bar npm test) and sudo are not the command.
  return commands
    .map((words) => {
      let i = 0
      while (i < words.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!) || words[i] === 'sudo' || words[i] === 'env')) i++
      return words.slice(i)
    })
    .filter((words) => words.length > 0)
}

/** Strips a version or tag: `pg@8`, `@types/pg@^8` -> `pg`, `@types/pg`. */
function packageName(spec: string): string {
  const at = spec.indexOf('@', spec.startsWith('@') ? 1 : 0)
  return at === -1 ? spec : spec.slice(0, at)
}

function isPathSpec(spec: string): boolean {
  return /^(\.{1,2}\/|\/|~\/|file:)/.test(spec) || spec.endsWith('.tgz') || spec.endsWith('.tar.gz')
}

function checkInstall(specs: string[], facts: ProjectFacts): string[] {
  const problems: string[] = []
  for (const spec of specs) {
    if (isPathSpec(spec)) continue // a local tarball or folder (the packed package), not a registry name
    const name = packageName(spec)
    if (!facts.installable.has(name)) {
      problems.push(`install of "${name}": not keywarden, nor a peer or dev dependency in package.json (or @types/ of one); a typo?`)
    }
  }
  return problems
}

function checkBin(bin: string | undefined, facts: ProjectFacts, how: string): string[] {
  if (bin === undefined) return [`${how} without a command`]
  if (isPathSpec(bin) || bin.includes('/')) return []
  return facts.bins.has(bin) ? [] : [`${how} ${bin}: no such binary in node_modules/.bin (install a dev dependency providing it, or fix the name)`]
}

/** Operands after the flags; `--` ends the flags. Flags taking a separate value are not modelled. */
function operands(words: string[]): string[] {
  const result: string[] = []
  let flags = true
  for (const word of words) {
    if (flags && word === '--') flags = false
    else if (flags && word.startsWith('-')) continue
    else result.push(word)
  }
  return result
}

function checkCommand(words: string[], facts: ProjectFacts): string[] {
  const [tool, ...args] = words
  if (tool === 'npx' || tool === 'pnpx' || (tool === 'pnpm' && args[0] === 'exec') || (tool === 'npm' && (args[0] === 'exec' || args[0] === 'x'))) {
    const rest = tool === 'npx' || tool === 'pnpx' ? args : args.slice(1)
    const packageFlag = rest.findIndex((w) => w === '-p' || w === '--package' || w.startsWith('--package='))
    if (packageFlag !== -1) {
      const flag = rest[packageFlag]!
      const spec = flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : rest[packageFlag + 1]
      return spec === undefined ? [] : checkInstall([spec], facts)
    }
    return checkBin(operands(rest)[0], facts, tool === 'npm' ? `npm ${args[0]}` : tool!)
  }
  if (tool === 'npm') {
    const [sub, ...rest] = operands(args)
    if (sub === undefined) return []
    if (!NPM_COMMANDS.has(sub)) return [`npm ${sub}: not an npm command (did you mean npm run ${sub}?)`]
    if (NPM_INSTALL.has(sub)) return checkInstall(rest, facts)
    if (NPM_RUN.has(sub)) {
      const script = rest[0]
      if (script === undefined) return []
      return facts.scripts.has(script) ? [] : [`npm run ${script}: package.json has no script "${script}" (it has ${[...facts.scripts].join(', ')})`]
    }
    const script = NPM_SCRIPT_SHORTHANDS.get(sub)
    if (script !== undefined && !facts.scripts.has(script)) return [`npm ${sub}: package.json has no "${script}" script`]
    return []
  }
  if ((tool === 'pnpm' || tool === 'yarn' || tool === 'bun') && (args[0] === 'add' || args[0] === 'install' || args[0] === 'i')) {
    return checkInstall(operands(args.slice(1)), facts)
  }
  if ((tool === 'pnpm' || tool === 'yarn' || tool === 'bun') && args[0] === 'run' && args[1] !== undefined && !facts.scripts.has(args[1])) {
    return [`${tool} run ${args[1]}: package.json has no script "${args[1]}"`]
  }
  return []
}

// ---------------------------------------------------------------------------------------------------
// TypeScript and JavaScript blocks

export interface SnippetSource {
  page: MarkdownPage
  block: CodeBlock
  /**
   * For a TSDoc example: the absolute folder of its source file, which relative imports (`./derive.js`)
   * resolve from, so an example of an internal helper can import it the way its neighbours do.
   */
  importsFrom?: string
}

/**
 * Writes every ts/js block as its own module under `outDir`, type-checks them all with one Program
 * (options from `tsconfigPath`, plus `globalsPath` for the ambient names), and maps every diagnostic back
 * to the markdown. Problems that belong to no page (options, the globals file) go under `path: ''`.
 */
export function checkCodeBlocks(snippets: SnippetSource[], options: { root: string; outDir: string; tsconfigPath: string; globalsPath: string }): Problem[] {
  const byFile = new Map<string, SnippetSource>()
  const contents = new Map<string, string>()
  const importsFrom = new Map<string, string>()
  for (const snippet of snippets) {
    const ext = JAVASCRIPT_LANGS.has(snippet.block.lang) ? 'js' : 'ts'
    const file = resolve(options.outDir, `${snippet.page.path.replace(/\//g, '__')}-L${snippet.block.startLine}.${ext}`)
    // Each block is its own ES module: top-level await works and names never collide across blocks.
    // The appended line keeps the block's own line numbers.
    contents.set(file, `${snippet.block.code}\nexport {}\n`)
    byFile.set(file, snippet)
    if (snippet.importsFrom !== undefined) importsFrom.set(file, snippet.importsFrom)
  }
  // The compiler reads the snippets from memory, so concurrent runs cannot disturb each other; the copies
  // on disk are for people: open one in an editor, or run `npx tsc -p <outDir>` (JS blocks then also show
  // the TS7xxx implicit-any errors this check leaves out).
  try {
    rmSync(options.outDir, { recursive: true, force: true })
    mkdirSync(options.outDir, { recursive: true })
    for (const [file, text] of contents) writeFileSync(file, text)
    const tsconfig = {
      extends: relative(options.outDir, options.tsconfigPath).split('\\').join('/'),
      include: ['*', relative(options.outDir, options.globalsPath).split('\\').join('/')],
    }
    writeFileSync(join(options.outDir, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`)
  } catch {
    // Best effort only.
  }

  const config = ts.getParsedCommandLineOfConfigFile(options.tsconfigPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    },
  })
  if (!config) throw new Error(`cannot read ${options.tsconfigPath}`)
  const host = ts.createCompilerHost(config.options)
  const { fileExists, readFile, getSourceFile } = host
  host.fileExists = (file) => contents.has(resolve(file)) || fileExists.call(host, file)
  host.readFile = (file) => contents.get(resolve(file)) ?? readFile.call(host, file)
  host.getSourceFile = (file, languageVersion, onError, shouldCreate) => {
    const text = contents.get(resolve(file))
    return text === undefined ? getSourceFile.call(host, file, languageVersion, onError, shouldCreate) : ts.createSourceFile(file, text, languageVersion, true)
  }
  // Module resolution as usual, except that a TSDoc example's relative imports start from its source file.
  const resolutionCache = ts.createModuleResolutionCache(host.getCurrentDirectory(), host.getCanonicalFileName, config.options)
  host.resolveModuleNameLiterals = (literals, containingFile, redirected, compilerOptions, containingSourceFile) => {
    const from = importsFrom.get(resolve(containingFile))
    return literals.map((literal) => {
      const relativeImport = literal.text.startsWith('./') || literal.text.startsWith('../')
      const base = from !== undefined && relativeImport ? join(from, '__example__.ts') : containingFile
      const mode = ts.getModeForUsageLocation(containingSourceFile, literal, compilerOptions)
      return ts.resolveModuleName(literal.text, base, compilerOptions, host, resolutionCache, redirected, mode)
    })
  }
  const program = ts.createProgram({ rootNames: [options.globalsPath, ...byFile.keys()], options: config.options, host })

  const problems: Problem[] = []
  const setup = (d: ts.Diagnostic): void => {
    const where = d.file ? `${relative(options.root, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''
    problems.push({ path: '', line: 0, message: `${where}TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}` })
  }
  program.getOptionsDiagnostics().forEach(setup)
  program.getGlobalDiagnostics().forEach(setup)
  const globals = program.getSourceFile(options.globalsPath)
  if (globals) [...program.getSyntacticDiagnostics(globals), ...program.getSemanticDiagnostics(globals)].forEach(setup)

  for (const [file, { page, block }] of byFile) {
    const source = program.getSourceFile(file)
    if (!source) {
      problems.push({ path: page.path, line: block.fenceLine, message: `the snippet ${file} was not part of the program` })
      continue
    }
    const isJs = file.endsWith('.js')
    const lang = isJs ? 'js' : 'ts'
    for (const d of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
      // noImplicitAny and its relatives (TS7xxx) are off for JavaScript blocks: JS has no annotations to add.
      if (isJs && d.code >= 7000 && d.code < 8000) continue
      const { line, character } = source.getLineAndCharacterOfPosition(d.start ?? 0)
      const sourceLine = block.code.split('\n')[line]
      problems.push({
        path: page.path,
        line: block.startLine + line,
        column: character + 1 + block.indent,
        message: `${lang} block: TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n    ')}${sourceLine === undefined ? '' : `\n    | ${sourceLine}`}`,
      })
    }
  }
  return problems
}

// ---------------------------------------------------------------------------------------------------
// TSDoc comments in the sources

/**
 * Every `/** ... *\/` comment of a TypeScript file (the ones TSDoc and typedoc read), as ranges of the
 * text. Found with the parser's own comment scan around every token, so a `/**` inside a string, a
 * template or a regular expression is not taken for a comment.
 */
export function jsDocCommentRanges(source: ts.SourceFile): ts.TextRange[] {
  const text = source.text
  const ranges = new Map<number, number>()
  const collect = (found: ts.CommentRange[] | undefined): void => {
    for (const range of found ?? []) {
      if (range.kind === ts.SyntaxKind.MultiLineCommentTrivia && text.startsWith('/**', range.pos) && !text.startsWith('/**/', range.pos)) ranges.set(range.pos, range.end)
    }
  }
  const visit = (node: ts.Node): void => {
    // Leading: the comments before the token on earlier lines; trailing: those after it on its line.
    collect(ts.getLeadingCommentRanges(text, node.pos))
    collect(ts.getTrailingCommentRanges(text, node.end))
    for (const child of node.getChildren(source)) visit(child)
  }
  visit(source)
  return [...ranges].sort(([a], [b]) => a - b).map(([pos, end]) => ({ pos, end }))
}

/** One TSDoc comment as markdown: `lines[i]` is line `firstLine + i` (1-based) of the source file. */
export interface TsdocComment {
  firstLine: number
  lines: string[]
}

/**
 * The TSDoc comments of a TypeScript file as markdown with the file's own columns: `/**` and `*\/` are
 * removed and the leading `*` of a comment line becomes a space, so a ` * ```ts` fence is a fence indented
 * by its column, and parseMarkdown strips that indentation from the block's lines.
 */
export function tsdocComments(path: string, text: string): TsdocComment[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  return jsDocCommentRanges(source).map(({ pos, end }) => {
    const first = source.getLineAndCharacterOfPosition(pos)
    const lines = text
      .slice(pos + 3, end - 2)
      .split(/\r?\n/)
      .map((raw, index) => (index === 0 ? ' '.repeat(first.character + 3) + raw : raw.replace(/^(\s*)\*/, '$1 ')))
    return { firstLine: first.line + 1, lines }
  })
}

/** The TSDoc comments of a TypeScript file as one markdown text with the file's lines (code lines blank). */
export function tsdocMarkdown(path: string, text: string, comments = tsdocComments(path, text)): string {
  const out = text.split(/\r?\n/).map(() => '')
  for (const comment of comments) comment.lines.forEach((line, index) => (out[comment.firstLine - 1 + index] = line))
  return out.join('\n')
}

/** The fenced code blocks in the TSDoc comments of a TypeScript file, at its lines and columns. */
export function tsdocBlocks(path: string, text: string): CodeBlock[] {
  return parseMarkdown(tsdocMarkdown(path, text)).blocks
}

/**
 * An `@example` with no ```ts or ```js block: typedoc would render its text as code, but the checker
 * only type-checks fenced blocks, so such an example could rot unseen.
 */
export function checkTsdocExamples(source: MarkdownPage, comments = tsdocComments(source.path, source.text)): Problem[] {
  const problems: Problem[] = []
  for (const comment of comments) {
    const { blocks } = parseMarkdown(comment.lines.join('\n'))
    // Lines (1-based, within the comment) from each opening fence to its closing one: no tags there.
    const code = new Set<number>()
    for (const block of blocks) {
      const last = block.closed ? block.startLine + block.code.split('\n').length : comment.lines.length
      for (let line = block.fenceLine; line <= last; line++) code.add(line)
    }
    const tags = comment.lines.flatMap((line, index) => {
      const tag = /^\s*@(\w+)/.exec(line)
      return tag && !code.has(index + 1) ? [{ name: tag[1]!, line: index + 1 }] : []
    })
    tags.forEach((tag, i) => {
      if (tag.name !== 'example') return
      const next = tags[i + 1]?.line ?? comment.lines.length + 1
      const checked = blocks.some((b) => b.fenceLine > tag.line && b.fenceLine < next && (TYPESCRIPT_LANGS.has(b.lang) || JAVASCRIPT_LANGS.has(b.lang)))
      if (!checked) {
        problems.push({ path: source.path, line: comment.firstLine + tag.line - 1, message: '@example without a ```ts or ```js block: typedoc renders the text as code, but only fenced ts/js blocks are type-checked' })
      }
    })
  }
  return problems
}

/** The TypeScript files whose TSDoc comments the API reference is built from: src/** and adapters/**, relative to the root, sorted. */
export function documentedSources(root: string): string[] {
  const files: string[] = []
  for (const dir of ['src', 'adapters']) {
    if (!existsSync(join(root, dir))) continue
    for (const entry of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
      const path = `${dir}/${entry.split('\\').join('/')}`
      if (path.endsWith('.ts') && statSync(join(root, path)).isFile()) files.push(path)
    }
  }
  return files.sort()
}

// ---------------------------------------------------------------------------------------------------
// Whole run

/** README.md and docs/**\/*.md except generated docs/api/**, relative to the root, sorted. */
export function documentationPages(root: string): string[] {
  const pages = ['README.md']
  const docs = join(root, 'docs')
  if (existsSync(docs)) {
    for (const entry of readdirSync(docs, { recursive: true, encoding: 'utf8' })) {
      const path = `docs/${entry.split('\\').join('/')}`
      if (!path.endsWith('.md') || GENERATED.some((dir) => path.startsWith(`${dir}/`))) continue
      if (statSync(join(root, path)).isFile()) pages.push(path)
    }
  }
  return pages.sort()
}

/**
 * Checks the given markdown pages and the code blocks in the TSDoc comments of the given TypeScript
 * sources (same block rules, no link checks: typedoc validates `{@link}`), with one Program for every
 * ts/js block of both; returns the problems of each page and source, plus setup problems under ''.
 */
export function checkPages(
  pages: MarkdownPage[],
  options: { root: string; outDir: string; tsconfigPath: string; globalsPath: string },
  sources: MarkdownPage[] = [],
): Map<string, Problem[]> {
  const facts = readProjectFacts(options.root)
  const parsed = new Map(pages.map((page) => [page.path, parseMarkdown(page.text)]))
  const anchorCache = new Map<string, Set<string> | undefined>()
  const context: LinkContext = {
    root: options.root,
    anchorsOf: (path) => {
      const known = parsed.get(path)
      if (known) return known.anchors
      if (!anchorCache.has(path)) {
        const file = join(options.root, path)
        anchorCache.set(path, existsSync(file) && statSync(file).isFile() ? parseMarkdown(readFileSync(file, 'utf8')).anchors : undefined)
      }
      return anchorCache.get(path)
    },
  }
  const results = new Map<string, Problem[]>([['', []]])
  const snippets: SnippetSource[] = []
  for (const page of pages) {
    const { blocks, links } = parsed.get(page.path)!
    results.set(page.path, [...checkOtherBlocks(page, blocks, facts), ...checkLinks(page, links, context)])
    for (const block of blocks) if (TYPESCRIPT_LANGS.has(block.lang) || JAVASCRIPT_LANGS.has(block.lang)) snippets.push({ page, block })
  }
  for (const source of sources) {
    const comments = tsdocComments(source.path, source.text)
    const { blocks } = parseMarkdown(tsdocMarkdown(source.path, source.text, comments))
    results.set(source.path, [...checkOtherBlocks(source, blocks, facts), ...checkTsdocExamples(source, comments)])
    const importsFrom = join(options.root, dirname(source.path))
    for (const block of blocks) if (TYPESCRIPT_LANGS.has(block.lang) || JAVASCRIPT_LANGS.has(block.lang)) snippets.push({ page: source, block, importsFrom })
  }
  for (const problem of checkCodeBlocks(snippets, options)) results.get(problem.path)!.push(problem)
  for (const problems of results.values()) problems.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0))
  return results
}

export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
