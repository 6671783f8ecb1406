/**
 * The regex engines secret scanners are built on, each driven the way people use it (`grep -o` on a
 * file, `re.finditer` over its text, ...): run one pattern over one file, get every match back. Each
 * engine probes itself first; a missing one is skipped locally and fails the run under CI=true (.ci/run
 * installs them).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One match as the engine reported it: the whole match, and group 2 (the token) where it has groups. */
export interface EngineMatch {
  readonly match: string
  readonly group2?: string
}

export interface Engine {
  readonly name: string
  /** Reports every match, overlapping ones included (Hyperscan), not only non-overlapping ones. */
  readonly reportsOverlapping: boolean
  /** The engine's version line; throws with the reason when the engine cannot run here. */
  probe(): string
  run(pattern: string, file: string): EngineMatch[]
  dispose?(): void
}

function run(command: string, args: readonly string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 })
}

function succeeded(result: SpawnSyncReturns<string>, what: string): string {
  if (result.error) throw new Error(`${what}: ${result.error.message}`)
  if (result.status !== 0) throw new Error(`${what} exited ${result.status}: ${result.stderr.trim().slice(0, 300)}`)
  return result.stdout
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim()
}

/** `tool -o PATTERN FILE`: one match per line; exit 1 is "no match", anything else an error. */
function lineMatches(result: SpawnSyncReturns<string>, what: string): EngineMatch[] {
  if (result.error) throw new Error(`${what}: ${result.error.message}`)
  if (result.status === 1 && result.stdout === '') return []
  if (result.status !== 0) throw new Error(`${what} exited ${result.status}: ${result.stderr.trim().slice(0, 300)}`)
  return result.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((match) => ({ match }))
}

/** Byte offsets printed as `start end [group2Start group2End]` lines, cut out of the file's bytes. */
function offsetMatches(stdout: string, file: string): EngineMatch[] {
  const bytes = readFileSync(file)
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [from, to, groupFrom, groupTo] = line.split(' ').map(Number) as [number, number, number?, number?]
      const match = bytes.subarray(from, to).toString('utf8')
      return groupFrom === undefined ? { match } : { match, group2: bytes.subarray(groupFrom, groupTo).toString('utf8') }
    })
}

function grepEngine(name: string, flag: '-E' | '-P', locale: string): Engine {
  return {
    name,
    reportsOverlapping: false,
    probe() {
      const version = firstLine(succeeded(run('grep', ['--version']), 'grep --version'))
      if (!version.includes('GNU grep')) throw new Error(`grep is not GNU grep (${version})`)
      // grep built without PCRE says so with exit 2 on any -P pattern.
      const check = run('grep', [flag, '-e', 'x', '/dev/null'], { LC_ALL: locale })
      if (check.status !== 1) throw new Error(`grep ${flag} does not work here: ${check.stderr.trim()}`)
      return `${version}, LC_ALL=${locale}`
    },
    run: (pattern, file) => lineMatches(run('grep', [flag, '-o', '-e', pattern, file], { LC_ALL: locale }), `grep ${flag}`),
  }
}

const busyboxGrep: Engine = {
  name: 'BusyBox grep -E',
  reportsOverlapping: false,
  probe() {
    const check = run('busybox', ['grep', '-E', '-e', 'x', '/dev/null'])
    if (check.error || check.status !== 1) throw new Error(check.error?.message ?? `busybox grep exited ${check.status}`)
    return firstLine(run('busybox', []).stdout)
  },
  run: (pattern, file) => lineMatches(run('busybox', ['grep', '-E', '-o', '-e', pattern, file]), 'busybox grep -E'),
}

const ripgrep: Engine = {
  name: 'ripgrep',
  reportsOverlapping: false,
  probe: () => firstLine(succeeded(run('rg', ['--version']), 'rg --version')),
  run: (pattern, file) => lineMatches(run('rg', ['--no-config', '--no-filename', '--no-line-number', '-o', '-e', pattern, file]), 'rg'),
}

// `-r '$2'` replaces each match with group 2: the form docs/security.md gives for printing tokens.
const ripgrepGroup2: Engine = {
  name: "ripgrep -r '$2'",
  reportsOverlapping: false,
  probe: ripgrep.probe,
  run: (pattern, file) =>
    lineMatches(run('rg', ['--no-config', '--no-filename', '--no-line-number', '-o', '-r', '$2', '-e', pattern, file]), 'rg -r').map(
      ({ match }) => ({ match, group2: match }),
    ),
}

const PYTHON_FINDITER = [
  'import json, re, sys',
  'pattern = re.compile(sys.argv[1], re.MULTILINE)',
  "text = open(sys.argv[2], encoding='utf-8', newline='').read()",
  'print(json.dumps([[m.group(0), m.group(2)] for m in pattern.finditer(text)]))',
].join('\n')

const pythonRe: Engine = {
  name: 'Python re',
  reportsOverlapping: false,
  probe: () => `Python ${firstLine(succeeded(run('python3', ['-c', 'import sys; print(sys.version)']), 'python3'))}`,
  run(pattern, file) {
    const matches = JSON.parse(succeeded(run('python3', ['-c', PYTHON_FINDITER, pattern, file]), 'python3')) as [string, string][]
    return matches.map(([match, group2]) => ({ match, group2 }))
  },
}

// -strict: fail instead of silently falling back to Perl's own engine for a pattern RE2 rejects.
const PERL_RE2 = [
  'use strict; use re::engine::RE2 -strict => 1;',
  'my ($source, $path) = @ARGV; my $pattern = qr/(?m)$source/;',
  "open(my $fh, '<:raw', $path) or die $!; my $text = do { local $/; <$fh> };",
  'while ($text =~ /$pattern/g) { print "$-[0] $+[0] $-[2] $+[2]\\n" }',
].join('\n')

const re2: Engine = {
  name: 'RE2',
  reportsOverlapping: false,
  probe: () =>
    `RE2 through Perl re::engine::RE2 ${succeeded(run('perl', ['-Mre::engine::RE2', '-e', 'print $re::engine::RE2::VERSION']), 'perl re::engine::RE2')}`,
  run: (pattern, file) => offsetMatches(succeeded(run('perl', ['-e', PERL_RE2, pattern, file]), 'perl re::engine::RE2'), file),
}

function hyperscanEngine(): Engine {
  const source = fileURLToPath(new URL('hyperscan-matches.c', import.meta.url))
  let directory: string | undefined
  const binary = () => join(directory!, 'hyperscan-matches')
  return {
    name: 'Hyperscan',
    reportsOverlapping: true,
    probe() {
      directory = mkdtempSync(join(tmpdir(), 'keywarden-hyperscan-'))
      succeeded(run('cc', ['-O1', '-o', binary(), source, '-lhs']), 'cc hyperscan-matches.c -lhs (needs libhyperscan-dev)')
      return firstLine(succeeded(run(binary(), ['--version']), 'hyperscan-matches --version'))
    },
    run(pattern, file) {
      // Hyperscan reports each end offset of a match (a token at a line's end matches both `$` and the
      // newline); one match per start is what the other engines see.
      const byStart = new Map<number, string>()
      for (const line of succeeded(run(binary(), [pattern, file]), 'hyperscan-matches').split('\n').filter(Boolean)) {
        const from = Number(line.split(' ')[0])
        if (!byStart.has(from)) byStart.set(from, line)
      }
      return offsetMatches([...byStart.values()].join('\n'), file)
    },
    dispose: () => directory && rmSync(directory, { recursive: true, force: true }),
  }
}

const javascript: Engine = {
  name: 'JavaScript RegExp',
  reportsOverlapping: false,
  probe: () => `Node ${process.version}`,
  run: (pattern, file) =>
    [...readFileSync(file, 'utf8').matchAll(new RegExp(pattern, 'gm'))].map((match) => ({ match: match[0], group2: match[2]! })),
}

// Engines that search a whole text run in multi-line mode, as docs/security.md says: without it `^` is
// only the start of the text, and a token opening a line right after one that closed the previous
// line (its newline spent as that match's trailing edge) is missed.

/** Every engine the published regex is run through. ugrep is left out: see docs/security.md. */
export function scanningEngines(): Engine[] {
  return [
    grepEngine('GNU grep -E', '-E', 'C'),
    grepEngine('GNU grep -E (UTF-8 locale)', '-E', 'C.UTF-8'),
    grepEngine('GNU grep -P', '-P', 'C.UTF-8'),
    busyboxGrep,
    ripgrep,
    ripgrepGroup2,
    pythonRe,
    re2,
    hyperscanEngine(),
    javascript,
  ]
}
