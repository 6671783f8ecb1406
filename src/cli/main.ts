#!/usr/bin/env node
/**
 * The `keywarden` bin (package.json `bin`, built to dist/cli.js): `keys …`, `audit`, `migrate` and
 * `scan`. Only this file touches `process`; run.ts does the work. Nothing in the library imports it.
 */
import { runCli } from './run.js'

// `head` closing the pipe early is not an error of ours: stop quietly instead of throwing EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw error
})

void runCli(process.argv.slice(2), {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
}).then((code) => {
  process.exitCode = code
  // Every store the bin opened is closed by now; a driver's stray handle must not keep it running.
  setTimeout(() => process.exit(code), 2_000).unref()
})
