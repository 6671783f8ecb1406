/**
 * `npm run check:package` (after `npm run build`): proves the package from its tarball, as users get it.
 *
 * 1. `npm pack` into a temp dir; list the tarball; fail on any file users do not need.
 * 2. publint (every message, suggestions included) and arethetypeswrong (every entry point, every
 *    resolution mode: node10, node16 from CJS and from ESM, bundler) on the tarball.
 * 3. Size budget: `import { KeyManager } from 'keywarden'` bundled with its dependencies, minified, gzip.
 * 4. Throwaway consumer projects (scripts/package-consumers/*) outside the repo install the tarball from
 *    its file and run: ESM + Express and CommonJS + Koa over real HTTP, each at the newest major and at
 *    the lowest version the peer range allows (Express 4.18, Koa 2.14); ESM + Fastify (5, and 4) and
 *    ESM + Hono (current, and 4.0) over real HTTP; the Fetch adapter with no framework; TypeScript type
 *    checks with moduleResolution node16 and bundler (Express 5 and 4, Koa 3 and 2, the typed request of
 *    Fastify, Hono and Fetch), keywarden installed alone (no optional peer comes along), and
 *    keywarden/testing run by node:test against a store written in the consumer (and a broken one that must fail).
 * 5. docs/getting-started.md, run block by block as a newcomer would (scripts/package-consumers/getting-started.ts).
 *
 * Options: `--only a,b` runs the named checks only (pack always runs), `--page <file>` runs another
 * getting-started page, `--keep` keeps the temp dir. npm's output goes to <temp dir>/check-package.log.
 */
import { build } from 'esbuild'
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { basename, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { runPage } from './package-consumers/getting-started.js'
import { consumerEnv, killAll, run, tail } from './package-consumers/shell.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = join(root, 'scripts/package-consumers')

// Gzip budget of the core entry, bundled as a user's bundler would (dependencies included, minified).
// Measured 24,708 B gzip (74,305 B minified) for 0.1.0 with `zod/mini` (108,369 B with classic zod);
// zod is about two fifths of it. 0.2.0's hardening took it to 27.5 kB; usage control (policies and
// their schema, the limiter, credits, the one-round-trip path) to 31.8 kB; who-did-what (change
// contexts, audit entries and their diff, permissions, runtime roles, key pairs) to 35.5 kB; the
// management API to 48.9 kB, because `keys.openapi()` is a KeyManager method: it brings the route table,
// the request and response schemas and zod's JSON Schema generator (about 7 kB of the 13 kB) into every
// bundle of KeyManager. Leak reports added 0.1 kB. Budget ≈ +5% of that.
const CORE_GZIP_BUDGET = 51_300

// What users need from the tarball, and nothing else.
const ALLOWED_FILES = [
  /^package\.json$/,
  /^README\.md$/,
  /^CHANGELOG\.md$/,
  /^LICEN[CS]E(\.md|\.txt)?$/,
  /^dist\/[\w/-]+\.(js|cjs|d\.ts|d\.cts)(\.map)?$/,
  /^adapters\/sql\/\w+\/migration\.sql$/,
]
const REQUIRED_FILES = ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', ...['postgres', 'mysql', 'sqlite'].map((d) => `adapters/sql/${d}/migration.sql`)]
// Entries that are easy to forget in tsup.config.ts: without one, its `exports` would point at nothing.
const REQUIRED_ENTRY_FILES = ['testing/index', 'fastify', 'hono', 'fetch'].flatMap((entry) => ['js', 'cjs', 'd.ts', 'd.cts'].map((ext) => `dist/${entry}.${ext}`))

// Why arethetypeswrong's likeliest problems happen, and the fix.
const ATTW_HINTS: Record<string, string> = {
  'NoResolution/node10':
    'TypeScript with moduleResolution "node" (node10) ignores `exports`: add to package.json ' +
    '"typesVersions": { "*": { "adapters/memory": ["./dist/adapters/memory/index.d.cts"], "adapters/redis": ["./dist/adapters/redis/index.d.cts"], ' +
    '"adapters/sql": ["./dist/adapters/sql/index.d.cts"], "express": ["./dist/express.d.cts"], "koa": ["./dist/koa.d.cts"], ' +
    '"fastify": ["./dist/fastify.d.cts"], "hono": ["./dist/hono.d.cts"], "fetch": ["./dist/fetch.d.cts"], "testing": ["./dist/testing/index.d.cts"] } }',
}

interface Consumer {
  /** The check's name; also the fixture directory under scripts/package-consumers/, unless `fixture` says another. */
  name: string
  /** Fixture directory to copy, when several checks run one fixture (e.g. against another major of a framework). */
  fixture?: string
  /** Dependency ranges replacing the fixture's own (in `dependencies` or `devDependencies`, wherever it lists them). */
  versions?: Record<string, string>
  /** Commands run in the project once the tarball is installed. */
  commands: string[][]
  /** What a pass proves, when the commands print nothing. */
  proves?: string
}

const TSC = ['node', 'node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']
// The lowest versions the `fastify` and `hono` peer ranges allow, run by the same consumers as the newest.
const FASTIFY_FLOOR = '4.0.0'
const HONO_FLOOR = '4.0.0'

const CONSUMERS: Consumer[] = [
  { name: 'esm-express', commands: [['node', 'server.js']] },
  // The peer ranges start at Express 4.18 and Koa 2.14: the same consumers, at the lowest minor allowed.
  { name: 'esm-express4', fixture: 'esm-express', versions: { express: '~4.18.0' }, commands: [['node', 'server.js']] },
  { name: 'cjs-koa', commands: [['node', 'server.cjs']] },
  { name: 'cjs-koa2', fixture: 'cjs-koa', versions: { koa: '~2.14.0' }, commands: [['node', 'server.cjs']] },
  { name: 'esm-fastify', commands: [['node', 'server.js']] },
  { name: 'esm-fastify4', fixture: 'esm-fastify', versions: { fastify: FASTIFY_FLOOR }, commands: [['node', 'server.js']] },
  { name: 'esm-hono', commands: [['node', 'server.js']] },
  // @hono/node-server 2 needs a newer Hono (it imports hono/ws): a Hono 4.0 app serves with 1.x.
  { name: 'esm-hono4.0', fixture: 'esm-hono', versions: { hono: HONO_FLOOR, '@hono/node-server': '^1.8.0' }, commands: [['node', 'server.js']] },
  { name: 'esm-fetch', commands: [['node', 'check.js']] },
  { name: 'ts-node16', commands: [TSC], proves: 'tsc (strict, module node16, .ts and .cts): req.apiKey and ctx.state.apiKey typed, @ts-expect-error lines hold' },
  {
    name: 'ts-node16-express4',
    fixture: 'ts-node16',
    versions: { '@types/express': '^4.17.0', '@types/koa': '^2.15.0' },
    commands: [TSC],
    proves: 'tsc as ts-node16, with the types of Express 4 and Koa 2',
  },
  {
    name: 'ts-adapters',
    commands: [TSC, [...TSC.slice(0, -1), 'tsconfig.bundler.json']],
    proves: 'tsc (strict, node16 .ts and .cts, and bundler): request.apiKey in Fastify routes, c.get(\'apiKey\') in Hono, withApiKey\'s auth.key typed, @ts-expect-error lines hold',
  },
  {
    name: 'ts-adapters-fastify4',
    fixture: 'ts-adapters',
    // Fastify 4's types only: Hono 4.0's own declarations fail skipLibCheck: false (a duplicate `render` in its context.d.ts).
    versions: { fastify: '^4.0.0' },
    commands: [TSC],
    proves: 'tsc as ts-adapters (node16), with the types of Fastify 4',
  },
  { name: 'ts-bundler', commands: [TSC], proves: 'tsc (strict, moduleResolution bundler): core, memory and SQL stores, Express; req.apiKey typed, @ts-expect-error holds' },
  { name: 'memory-only', commands: [['node', 'check.js']] },
  // A third-party store's conformance run: node:test and jest's expect, not vitest; tsc checks the JSDoc types.
  { name: 'testing-node-test', commands: [TSC, ['node', 'check.js']] },
]

const CHECKS = ['files', 'publint', 'attw', 'size', ...CONSUMERS.map((c) => c.name), 'getting-started'] as const

interface Outcome {
  name: string
  ok: boolean
  summary: string
  ms: number
}

interface PackedFile {
  path: string
  size: number
}

interface Packed {
  tarball: string
  size: number
  unpackedSize: number
  files: PackedFile[]
}

interface Context {
  work: string
  log: string
  packed: Packed
  page: string
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`)
}

function heading(title: string): void {
  say(`\n▸ ${title}`)
}

function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} kB`
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error)
}

async function timed(name: string, check: () => Promise<Omit<Outcome, 'name' | 'ms'>>): Promise<Outcome> {
  const started = performance.now()
  try {
    return { name, ...(await check()), ms: performance.now() - started }
  } catch (error) {
    // A crash inside one check is that check's failure, not the end of the report.
    say(`  ✗ ${name} crashed: ${describe(error)}`)
    return { name, ok: false, summary: 'crashed (see above)', ms: performance.now() - started }
  }
}

/** dist/ must exist; it may be stale if sources changed after the last build (a note, not a failure). */
function checkBuilt(): void {
  const entry = join(root, 'dist/index.js')
  if (!existsSync(entry)) {
    say('dist/ is missing: run `npm run build` first.')
    process.exit(1)
  }
  const built = statSync(entry).mtimeMs
  const newer = ['src', 'adapters'].flatMap((dir) => sourceFiles(join(root, dir))).filter((file) => statSync(file).mtimeMs > built)
  if (newer.length > 0) say(`note: ${newer.length} source file(s) changed since the last build (e.g. ${relative(root, newer[0]!)}); the tarball holds the built dist/`)
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
}

// ── 1. pack and files ────────────────────────────────────────────────────────────────────────────

async function pack(work: string, log: string): Promise<Packed> {
  const destination = join(work, 'pack')
  mkdirSync(destination)
  const result = await run('npm', ['pack', '--json', '--pack-destination', destination], { cwd: root, env: process.env, log })
  if (result.code !== 0) throw new Error(`npm pack failed:\n${tail(result.stderr)}`)
  const [report] = JSON.parse(result.stdout.slice(result.stdout.indexOf('['))) as (Omit<Packed, 'tarball'> & { filename: string })[]
  if (!report) throw new Error('npm pack reported no tarball')
  return { tarball: join(destination, report.filename), size: report.size, unpackedSize: report.unpackedSize, files: report.files }
}

function printPacked(packed: Packed): void {
  heading(`pack: ${basename(packed.tarball)}, ${packed.files.length} files, ${kb(packed.size)} packed, ${kb(packed.unpackedSize)} unpacked`)
  for (const file of packed.files) say(`  ${kb(file.size).padStart(9)}  ${file.path}`)
}

async function checkFiles(packed: Packed): Promise<Omit<Outcome, 'name' | 'ms'>> {
  heading('files')
  const paths = packed.files.map((file) => file.path)
  const extra = paths.filter((path) => !ALLOWED_FILES.some((pattern) => pattern.test(path)))
  const missing = [...REQUIRED_FILES, ...REQUIRED_ENTRY_FILES].filter((path) => !paths.includes(path))
  for (const path of extra) say(`  ✗ not needed by users: ${path}  (narrow "files" in package.json)`)
  for (const path of missing) say(`  ✗ missing: ${path}`)
  const maps = packed.files.filter((file) => file.path.endsWith('.map')).reduce((sum, file) => sum + file.size, 0)
  if (extra.length + missing.length === 0) say(`  ✓ only dist (JS, CJS, types, source maps: ${kb(maps)} of maps), SQL migrations, README, CHANGELOG, LICENSE, package.json`)
  const ok = extra.length + missing.length === 0
  return { ok, summary: ok ? `${paths.length} files, all needed` : `${extra.length} unneeded, ${missing.length} missing` }
}

// ── 2. publint and arethetypeswrong ──────────────────────────────────────────────────────────────

async function checkPublint(packed: Packed): Promise<Omit<Outcome, 'name' | 'ms'>> {
  heading('publint (strict, every level)')
  const data = readFileSync(packed.tarball)
  const tarball = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer
  const { messages, pkg } = await publint({ pack: { tarball }, level: 'suggestion', strict: true })
  for (const message of messages) say(`  ✗ ${message.type}: ${formatMessage(message, pkg, { color: false }) ?? message.code}`)
  if (messages.length === 0) say('  ✓ no errors, warnings or suggestions')
  return { ok: messages.length === 0, summary: messages.length === 0 ? 'no messages' : `${messages.length} message(s)` }
}

interface AttwReport {
  analysis: { entrypoints: Record<string, { resolutions: Record<string, unknown> }> }
  problems?: Record<string, { kind: string; entrypoint?: string; resolutionKind?: string }[]>
}

/** arethetypeswrong's CLI on the tarball; its JSON goes to a file (a pipe truncates it at exit). */
function runAttw(packed: Packed, work: string): { report: AttwReport | null; stderr: string } {
  const out = join(work, 'attw.json')
  const fd = openSync(out, 'w')
  const result = spawnSync(join(root, 'node_modules/.bin/attw'), [packed.tarball, '--format', 'json', '--profile', 'strict'], {
    cwd: work,
    stdio: ['ignore', fd, 'pipe'],
    encoding: 'utf8',
  })
  closeSync(fd)
  const text = readFileSync(out, 'utf8')
  return { report: text.trim().startsWith('{') ? (JSON.parse(text) as AttwReport) : null, stderr: `${result.stderr ?? ''}${result.error ?? ''}` }
}

async function checkAttw(packed: Packed, work: string): Promise<Omit<Outcome, 'name' | 'ms'>> {
  heading('arethetypeswrong (profile strict: node10, node16 from CJS and ESM, bundler)')
  const { report, stderr } = runAttw(packed, work)
  if (!report) {
    say(`  ✗ attw gave no report:\n${tail(stderr)}`)
    return { ok: false, summary: 'no report' }
  }
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  const checked = Object.keys(report.analysis.entrypoints)
  const unchecked = Object.keys(manifest.exports).filter((subpath) => !subpath.includes('*') && !checked.includes(subpath))
  for (const subpath of unchecked) say(`  ✗ entry point not analysed: ${subpath}`)
  const problems = Object.values(report.problems ?? {}).flat()
  const hinted = new Set<string>()
  for (const problem of problems) {
    say(`  ✗ ${problem.kind}: ${problem.entrypoint ?? ''} (${problem.resolutionKind ?? 'all modes'})`)
    hinted.add(`${problem.kind}/${problem.resolutionKind}`)
  }
  for (const key of hinted) if (ATTW_HINTS[key]) say(`    fix (${key}): ${ATTW_HINTS[key]}`)
  const modes = Object.keys(Object.values(report.analysis.entrypoints)[0]?.resolutions ?? {})
  const typed = checked.filter((subpath) => !subpath.includes('*'))
  if (problems.length + unchecked.length === 0) say(`  ✓ no problems: ${typed.length} entry points (${typed.join(', ')}) × ${modes.join(', ')}`)
  const ok = problems.length + unchecked.length === 0
  return { ok, summary: ok ? `no problems (${typed.length} entry points × ${modes.length} modes)` : `${problems.length} problem(s)` }
}

// ── 3. size ──────────────────────────────────────────────────────────────────────────────────────

/** Bundles one named import from a built entry as a user's bundler would, and measures it. */
async function bundleSize(entry: string, name: string): Promise<{ raw: number; gzip: number }> {
  const result = await build({
    stdin: { contents: `export { ${name} } from './${entry}'`, resolveDir: root, loader: 'js' },
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]!.contents
  return { raw: code.byteLength, gzip: gzipSync(code).byteLength }
}

async function checkSize(): Promise<Omit<Outcome, 'name' | 'ms'>> {
  heading('size (esbuild: bundled with @noble/hashes, nanoid and zod, minified, platform node; gzip)')
  const core = await bundleSize('dist/index.js', 'KeyManager')
  const ok = core.gzip <= CORE_GZIP_BUDGET
  say(`  ${ok ? '✓' : '✗'} keywarden { KeyManager }:          ${kb(core.raw)} minified, ${kb(core.gzip)} gzip (budget ${kb(CORE_GZIP_BUDGET)})`)
  // The adapters' entries (the framework itself is the app's, never bundled from here: type imports only).
  const adapters: [string, string, string][] = [['express', 'apiKeyAuth', 'express'], ['fastify', 'apiKeyAuth', 'fastify'], ['hono', 'apiKeyAuth', 'hono'], ['fetch', 'withApiKey', 'fetch']]
  const sizes: string[] = []
  for (const [entry, name, label] of adapters) {
    const size = await bundleSize(`dist/${entry}.js`, name)
    say(`    ${`keywarden/${entry} { ${name} }:`.padEnd(34)} ${kb(size.raw)} minified, ${kb(size.gzip)} gzip (reported, no budget)`)
    sizes.push(`${label} ${kb(size.gzip)}`)
  }
  return { ok, summary: `core ${kb(core.gzip)} gzip (budget ${kb(CORE_GZIP_BUDGET)}); ${sizes.join(', ')} gzip` }
}

// ── 4. consumers ─────────────────────────────────────────────────────────────────────────────────

/** Copies a fixture out of the repo, installs the tarball (and the fixture's own dependencies), runs it. */
async function checkConsumer(consumer: Consumer, context: Context): Promise<{ ok: boolean; summary: string; lines: string[] }> {
  const dir = join(context.work, 'consumers', consumer.name)
  cpSync(join(fixtures, consumer.fixture ?? consumer.name), dir, { recursive: true })
  if (consumer.versions) pinVersions(join(dir, 'package.json'), consumer.versions)
  const env = consumerEnv()
  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', context.packed.tarball], { cwd: dir, env, log: context.log, timeoutMs: 150_000 })
  if (install.code !== 0) {
    return { ok: false, summary: 'npm install failed', lines: [`✗ ${consumer.name}: npm install failed (${install.code})`, tail(install.stderr)] }
  }
  const printed: string[] = []
  let ms = 0
  for (const [command, ...args] of consumer.commands) {
    const result = await run(command!, args, { cwd: dir, env, log: context.log, timeoutMs: 60_000 })
    ms += result.ms
    if (result.code !== 0) {
      const output = `${result.stdout}\n${result.stderr}`
      return { ok: false, summary: `\`${[command, ...args].join(' ')}\` failed`, lines: [`✗ ${consumer.name}: \`${[command, ...args].join(' ')}\` exited with ${result.code}`, tail(output, 40)] }
    }
    printed.push(result.stdout.trim())
  }
  const proof = consumer.proves ?? printed.filter(Boolean).join('; ')
  return { ok: true, summary: proof, lines: [`✓ ${consumer.name.padEnd(12)} ${proof}  (install ${seconds(install.ms)}, run ${seconds(ms)})`] }
}

/** Rewrites a fixture's dependency ranges (where it lists each package; `dependencies` otherwise). */
function pinVersions(manifestPath: string, versions: Record<string, string>): void {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, Record<string, string> | undefined>
  for (const [name, range] of Object.entries(versions)) {
    const section = manifest['devDependencies']?.[name] !== undefined ? 'devDependencies' : 'dependencies'
    manifest[section] = { ...manifest[section], [name]: range }
  }
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`)
}

/** All consumers at once (installs are mostly waiting), reported in a fixed order. */
async function checkConsumers(selected: readonly Consumer[], context: Context): Promise<Outcome[]> {
  if (selected.length === 0) return []
  heading(`consumers: ${selected.length} throwaway projects in ${join(context.work, 'consumers')} install the tarball`)
  mkdirSync(join(context.work, 'consumers'), { recursive: true })
  const started = performance.now()
  const results = await Promise.all(
    selected.map(async (consumer) => {
      const begun = performance.now()
      const result = await checkConsumer(consumer, context).catch((error: unknown) => ({
        ok: false,
        summary: 'crashed',
        lines: [`✗ ${consumer.name} crashed: ${describe(error)}`],
      }))
      return { name: consumer.name, ...result, ms: performance.now() - begun }
    }),
  )
  for (const result of results) for (const line of result.lines) say(`  ${line}`)
  say(`  (${seconds(performance.now() - started)} for all, in parallel)`)
  return results.map(({ name, ok, summary, ms }) => ({ name, ok, summary, ms }))
}

// ── 5. getting started ───────────────────────────────────────────────────────────────────────────

async function checkGettingStarted(context: Context): Promise<Omit<Outcome, 'name' | 'ms'>> {
  heading(`getting started: ${context.page.startsWith(root) ? relative(root, context.page) : context.page}, block by block`)
  if (!existsSync(context.page)) {
    say(`  ✗ ${context.page} does not exist`)
    return { ok: false, summary: 'page missing' }
  }
  const workDir = join(context.work, 'getting-started', 'home')
  mkdirSync(workDir, { recursive: true })
  const result = await runPage({ page: context.page, workDir, tarball: context.packed.tarball, env: consumerEnv(), log: context.log, say: (line) => say(`  ${line}`) })
  for (const failure of result.failures) say(`  ✗ ${failure}`)
  return { ok: result.ok, summary: result.ok ? `${result.ran} blocks ran, every expected output matched (200 with a key, 401 without)` : 'failed (see above)' }
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────────

function options(): { only: Set<string>; page: string; keep: boolean } {
  const { values } = parseArgs({ options: { only: { type: 'string' }, page: { type: 'string' }, keep: { type: 'boolean', default: false } } })
  const only = new Set(values.only ? values.only.split(',').map((name) => name.trim()) : CHECKS)
  const unknown = [...only].filter((name) => !(CHECKS as readonly string[]).includes(name))
  if (unknown.length > 0) {
    say(`unknown check(s): ${unknown.join(', ')}; known: ${CHECKS.join(', ')}`)
    process.exit(2)
  }
  return { only, page: values.page ? resolve(values.page) : join(root, 'docs/getting-started.md'), keep: values.keep }
}

function printSummary(outcomes: readonly Outcome[], totalMs: number, context: Context, kept: boolean): void {
  say('\n━━ summary ━━')
  for (const outcome of outcomes) say(`  ${outcome.ok ? '✓' : '✗'} ${outcome.name.padEnd(16)} ${outcome.summary}  (${seconds(outcome.ms)})`)
  const failed = outcomes.filter((outcome) => !outcome.ok).length
  say(`\n${failed === 0 ? 'PASS' : `FAIL: ${failed} of ${outcomes.length} checks`}  ·  tarball ${kb(context.packed.size)}  ·  ${seconds(totalMs)}`)
  if (kept) say(`consumer projects and the npm log kept in ${context.work} (log: ${context.log})`)
}

async function main(): Promise<void> {
  const started = performance.now()
  const { only, page, keep } = options()
  checkBuilt()
  // Consumers run with the `node` on PATH (CI runs this on Node 20 and again on Node 24).
  say(`node ${spawnSync('node', ['--version'], { encoding: 'utf8' }).stdout.trim()} on PATH`)
  const work = mkdtempSync(join(tmpdir(), 'keywarden-consumers-'))
  const log = join(work, 'check-package.log')
  const packed = await pack(work, log)
  const context: Context = { work, log, packed, page }
  printPacked(packed)

  const outcomes: Outcome[] = []
  if (only.has('files')) outcomes.push(await timed('files', () => checkFiles(packed)))
  if (only.has('publint')) outcomes.push(await timed('publint', () => checkPublint(packed)))
  if (only.has('attw')) outcomes.push(await timed('attw', () => checkAttw(packed, work)))
  if (only.has('size')) outcomes.push(await timed('size', () => checkSize()))
  outcomes.push(...(await checkConsumers(CONSUMERS.filter((consumer) => only.has(consumer.name)), context)))
  if (only.has('getting-started')) outcomes.push(await timed('getting-started', () => checkGettingStarted(context)))

  const ok = outcomes.every((outcome) => outcome.ok)
  const kept = keep || !ok
  printSummary(outcomes, performance.now() - started, context, kept)
  if (!kept) rmSync(work, { recursive: true, force: true })
  process.exitCode = ok ? 0 : 1
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

main().catch((error: unknown) => {
  killAll()
  say(`check:package crashed: ${describe(error)}`)
  process.exitCode = 1
})
