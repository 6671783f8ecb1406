/**
 * Runs docs/getting-started.md as a newcomer would, against the packed tarball. The page's conventions:
 *
 * - a fenced block with info string `sh` holds commands typed in one terminal, run in page order, each
 *   block through `bash -euo pipefail`; the working directory and shell variables carry over between
 *   blocks (`mkdir app && cd app` is honoured);
 * - `sh background` starts a long-running server: it runs in the background until the page is done,
 *   and the page goes on once it prints a line containing `http://localhost:` (or a port the page
 *   names accepts connections);
 * - a block whose info string has `title="name"` (`js title="server.js"`, `ts title="..."`) is a file
 *   to create with that name and content in the current directory;
 * - a `text` block right after an `sh` block (no other block between) is that block's expected output:
 *   every non-empty line of it, trimmed, must appear in the block's stdout, in order;
 * - `npm install keywarden ...` installs the tarball instead of the registry's package.
 *
 * The page must show a curl run answering 200 with a fresh key and 401 without, through text blocks.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { dirname, join, relative, resolve } from 'node:path'
import { parseMarkdown } from '../../test/docs/doc-check.js'
import { run, startBackground, tail, type Background } from './shell.js'

export interface Fence {
  lang: string
  flags: Set<string>
  attrs: Map<string, string>
  body: string
  /** 1-based line numbers of the opening and closing fence lines. */
  start: number
  end: number
}

interface CommandStep {
  kind: 'command'
  fence: Fence
  background: boolean
  expected?: Fence
}

interface FileStep {
  kind: 'file'
  fence: Fence
  name: string
}

type Step = CommandStep | FileStep

export interface PageOptions {
  page: string
  /** Directory the newcomer starts in (empty). */
  workDir: string
  tarball: string
  env: NodeJS.ProcessEnv
  log: string
  /** Prints one progress line. */
  say: (line: string) => void
}

export interface PageResult {
  ok: boolean
  failures: string[]
  ran: number
}

const BLOCK_TIMEOUT_MS = 180_000
const SERVER_READY_TIMEOUT_MS = 30_000
const READY_MARKER = 'http://localhost:'

/** Splits an info string such as `js title="server.js"` into language, bare flags and attributes. */
function parseInfo(info: string): Pick<Fence, 'lang' | 'flags' | 'attrs'> {
  const [lang = '', ...rest] = info.trim().match(/\w+="[^"]*"|\S+/g) ?? []
  const flags = new Set<string>()
  const attrs = new Map<string, string>()
  for (const word of rest) {
    const attr = /^(\w+)="([^"]*)"$/.exec(word)
    if (attr) attrs.set(attr[1]!, attr[2]!)
    else flags.add(word)
  }
  return { lang, flags, attrs }
}

/**
 * Every fenced code block of a Markdown page, with its line numbers, from the docs checker's scanner
 * (test/docs/doc-check.ts), so the page is read here exactly as the snippet tests read it.
 */
export function parseFences(markdown: string): Fence[] {
  return parseMarkdown(markdown).blocks.map((block) => ({
    ...parseInfo(block.info),
    body: `${block.code}\n`,
    start: block.fenceLine,
    end: block.startLine + (block.code === '' ? 0 : block.code.split('\n').length),
  }))
}

/** Turns the page's fences into steps; `text` blocks attach to the `sh` block right before them. */
export function planSteps(fences: readonly Fence[]): Step[] {
  const steps: Step[] = []
  fences.forEach((fence, index) => {
    const previous = steps.at(-1)
    if (fence.attrs.has('title')) steps.push({ kind: 'file', fence, name: fence.attrs.get('title')! })
    else if (fence.lang === 'sh') steps.push({ kind: 'command', fence, background: fence.flags.has('background') })
    else if (fence.lang === 'text' && fences[index - 1]?.lang === 'sh' && previous?.kind === 'command') previous.expected = fence
  })
  return steps
}

/** `npm install keywarden express` → `npm install /tmp/…/keywarden-0.1.0.tgz express`. */
export function substituteTarball(script: string, tarball: string): { script: string; count: number } {
  let count = 0
  const lines = script.split('\n').map((line) => {
    if (!/\bnpm\s+(install|i|add)\b/.test(line)) return line
    return line.replace(/(^|\s)keywarden(@[^\s;&|]*)?(?=$|[\s;&|])/g, (_match, space: string) => {
      count++
      return `${space}${tarball}`
    })
  })
  return { script: lines.join('\n'), count }
}

/** The page's path as the reader knows it: relative inside the working directory, absolute outside. */
function display(page: string): string {
  const path = relative(process.cwd(), resolve(page))
  return path.startsWith('..') ? resolve(page) : path
}

function where(page: string, fence: Fence): string {
  return `${display(page)}:${fence.start}-${fence.end}`
}

/** The block as it stands on the page, with its line numbers, for a failure report. */
function quote(fence: Fence): string {
  return fence.body
    .trimEnd()
    .split('\n')
    .map((line, index) => `      ${String(fence.start + 1 + index).padStart(4)} | ${line}`)
    .join('\n')
}

/** A failed block: where it is, what it says, why it failed, and what it printed. */
function blockFailure(page: string, fence: Fence, why: string[], streams: Record<string, string>): string {
  const printed = Object.entries(streams).filter(([, text]) => text.trim() !== '')
  return [
    `${where(page, fence)}  ${why[0]}`,
    quote(fence),
    ...why.slice(1).map((line) => `    ${line}`),
    ...printed.flatMap(([name, text]) => [`    ${name}:`, tail(text)]),
  ].join('\n')
}

/** Checks, before running anything, that the page installs keywarden and asserts both curl outcomes. */
function checkStructure(page: string, steps: readonly Step[]): string[] {
  const failures: string[] = []
  const commands = steps.filter((step): step is CommandStep => step.kind === 'command')
  if (!commands.some((step) => substituteTarball(step.fence.body, 'x').count > 0)) {
    failures.push(`${display(page)}: no \`sh\` block runs \`npm install keywarden …\`, so the page never installs the package`)
  }
  const curlOutputs = commands.filter((step) => /\bcurl\b/.test(step.fence.body) && step.expected).map((step) => step.expected!.body)
  for (const status of ['200', '401']) {
    if (!curlOutputs.some((text) => new RegExp(`\\b${status}\\b`).test(text))) {
      failures.push(`${display(page)}: no \`text\` block after a curl \`sh\` block shows ${status}; the page must prove 200 with a key and 401 without`)
    }
  }
  return failures
}

/** Lines of `expected` (trimmed, non-empty) not found in `actual`, matched in order. */
export function missingLines(expected: string, actual: string): string[] {
  const actualLines = actual.split('\n').map((line) => line.trim())
  const missing: string[] = []
  let from = 0
  for (const line of expected.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = actualLines.findIndex((candidate, index) => index >= from && candidate.includes(line))
    if (at === -1) missing.push(line)
    else from = at + 1
  }
  return missing
}

/** Ports the page talks to (`localhost:3000`): they must be free before its server starts. */
function pagePorts(markdown: string): number[] {
  return [...new Set([...markdown.matchAll(/localhost:(\d{2,5})/g)].map((match) => Number(match[1])))]
}

function portAcceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.destroy()
      resolvePort(true)
    })
    socket.once('error', () => resolvePort(false))
  })
}

/** The shell state carried from block to block: working directory and variables. */
class Session {
  cwd: string
  private readonly stateDir: string
  private blocks = 0

  constructor(
    workDir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.cwd = workDir
    this.stateDir = join(dirname(workDir), '.getting-started-shell')
    mkdirSync(this.stateDir, { recursive: true })
  }

  /** Names bash defines by itself (asked the way blocks ask): everything else a block leaves is the page's. */
  async init(): Promise<void> {
    const probe = join(this.stateDir, 'base.sh')
    writeFileSync(probe, '__kw_base() { compgen -v; }\n__kw_base\n')
    const base = await run('bash', ['-euo', 'pipefail', probe], { cwd: this.cwd, env: this.env })
    writeFileSync(join(this.stateDir, 'base'), base.stdout)
  }

  /** Writes the block as a script that restores the state first and (unless `background`) saves it last. */
  script(body: string, background: boolean): string {
    const state = this.stateDir
    const prologue = [
      `cd ${JSON.stringify(this.cwd)}`,
      `if [ -f ${JSON.stringify(`${state}/vars`)} ]; then source ${JSON.stringify(`${state}/vars`)} 2>/dev/null || true; fi`,
      '__kw_save() {',
      `  pwd > ${JSON.stringify(`${state}/cwd`)}`,
      `  local __kw_names; __kw_names=$(compgen -v | grep -vxF -f ${JSON.stringify(`${state}/base`)} | grep -vE '^(__kw.*|BASH_.*|FUNCNAME|OLDPWD|PIPESTATUS|_)$' || true)`,
      `  if [ -n "$__kw_names" ]; then declare -p $__kw_names > ${JSON.stringify(`${state}/vars`)} 2>/dev/null || true; fi`,
      '}',
    ]
    const file = join(state, `block-${++this.blocks}.sh`)
    writeFileSync(file, [...prologue, body, background ? '' : '__kw_save', ''].join('\n'))
    return file
  }

  /** Picks up the directory the last block ended in. */
  restore(): void {
    this.cwd = readFileSync(join(this.stateDir, 'cwd'), 'utf8').trim()
  }
}

/** Waits for the server's ready line, or for one of the page's ports to accept connections. */
async function waitUntilReady(server: Background, ports: readonly number[]): Promise<string | null> {
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (server.output().includes(READY_MARKER)) return null
    if (server.exited()) return 'the server exited before it was ready'
    for (const port of ports) if (await portAcceptsConnections(port)) return null
    await new Promise((wake) => setTimeout(wake, 100))
  }
  return `no line containing "${READY_MARKER}" within ${SERVER_READY_TIMEOUT_MS / 1000} s`
}

function commandLine(fence: Fence): string {
  const first = fence.body.trim().split('\n')[0] ?? ''
  return fence.body.trim().includes('\n') ? `${first} …` : first
}

/** Runs the page; stops its background servers whatever happens. */
export async function runPage(options: PageOptions): Promise<PageResult> {
  const page = resolve(options.page)
  const markdown = readFileSync(page, 'utf8')
  const steps = planSteps(parseFences(markdown))
  const failures = checkStructure(options.page, steps)
  if (failures.length > 0) return { ok: false, failures, ran: 0 }

  const session = new Session(options.workDir, options.env)
  await session.init()
  const servers: { step: CommandStep; server: Background }[] = []
  let ran = 0
  try {
    for (const step of steps) {
      const failure =
        step.kind === 'file'
          ? writeStepFile(step, session.cwd, options)
          : step.background
            ? await startServer(step, session, markdown, options, servers)
            : await runCommand(step, session, options)
      ran++
      if (failure) return { ok: false, failures: [failure], ran }
    }
    // A background block's expected output is checked once the page is done with its server.
    for (const { step, server } of servers) {
      if (!step.expected) continue
      const missing = missingLines(step.expected.body, server.output())
      if (missing.length > 0) failures.push(expectationFailure(options.page, step, missing, { output: server.output() }))
      else options.say(`✓ ${where(options.page, step.expected)}  the server printed its expected output`)
    }
  } finally {
    await Promise.all(servers.map(({ server }) => server.stop()))
  }
  return { ok: failures.length === 0, failures, ran }
}

function writeStepFile(step: FileStep, cwd: string, options: PageOptions): string | null {
  const target = resolve(cwd, step.name)
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, step.fence.body)
  options.say(`✓ ${where(options.page, step.fence)}  wrote ${step.name}`)
  return null
}

async function runCommand(step: CommandStep, session: Session, options: PageOptions): Promise<string | null> {
  const { script } = substituteTarball(step.fence.body, options.tarball)
  const file = session.script(script, false)
  const result = await run('bash', ['-euo', 'pipefail', file], { cwd: session.cwd, env: options.env, log: options.log, timeoutMs: BLOCK_TIMEOUT_MS })
  if (result.code !== 0) {
    const why = result.timedOut ? `timed out after ${BLOCK_TIMEOUT_MS / 1000} s` : `exited with ${result.code}`
    return blockFailure(options.page, step.fence, [`this \`sh\` block ${why}:`], { stdout: result.stdout, stderr: result.stderr })
  }
  session.restore()
  const missing = step.expected ? missingLines(step.expected.body, result.stdout) : []
  if (missing.length > 0) return expectationFailure(options.page, step, missing, { stdout: result.stdout, stderr: result.stderr })
  const checked = step.expected ? `, output matches lines ${step.expected.start}-${step.expected.end}` : ''
  options.say(`✓ ${where(options.page, step.fence)}  $ ${commandLine(step.fence)}  (${(result.ms / 1000).toFixed(1)} s${checked})`)
  return null
}

async function startServer(
  step: CommandStep,
  session: Session,
  markdown: string,
  options: PageOptions,
  servers: { step: CommandStep; server: Background }[],
): Promise<string | null> {
  const ports = pagePorts(markdown)
  for (const port of ports) {
    // Another process on the page's port would answer the page's curl lines instead of its server.
    if (await portAcceptsConnections(port)) {
      return blockFailure(options.page, step.fence, [`port ${port} (named on the page) is already in use on this machine: stop what listens there and re-run`], {})
    }
  }
  const { script } = substituteTarball(step.fence.body, options.tarball)
  const server = startBackground('bash', ['-euo', 'pipefail', session.script(script, true)], { cwd: session.cwd, env: options.env, log: options.log })
  servers.push({ step, server })
  const problem = await waitUntilReady(server, ports)
  if (problem) return blockFailure(options.page, step.fence, [`this \`sh background\` block never got ready: ${problem}`], { output: server.output() })
  options.say(`✓ ${where(options.page, step.fence)}  $ ${commandLine(step.fence)}  (in the background, ready)`)
  return null
}

function expectationFailure(page: string, step: CommandStep, missing: readonly string[], streams: Record<string, string>): string {
  const expected = step.expected!
  return blockFailure(
    page,
    step.fence,
    [`printed output that does not match its expected output at lines ${expected.start}-${expected.end} (matched in order):`, ...missing.map((line) => `  missing: ${line}`)],
    streams,
  )
}
