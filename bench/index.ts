/**
 * `npm run bench`: runs every benchmark and prints a table plus JSON (bench/results/latest.json).
 * Options: BENCH_DURATION_MS (per case, default 2000), BENCH_KEYS (comma list, default 1000,100000).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { benchVerifyMemory, type BenchResult } from './verify-memory.js'

const durationMs = Number(process.env.BENCH_DURATION_MS ?? 2000)
const keyCounts = (process.env.BENCH_KEYS ?? '1000,100000').split(',').map(Number)

const results: BenchResult[] = []
for (const keyCount of keyCounts) results.push(...(await benchVerifyMemory(keyCount, durationMs)))

const rows = results.map((result) => [
  result.name,
  Math.round(result.opsPerSecond).toLocaleString('en-US'),
  result.ratioToBaseline === null ? '' : `${result.ratioToBaseline.toFixed(2)}x`,
])
const widths = [0, 1, 2].map((column) => Math.max(...[['case', 'ops/s', 'vs baseline'], ...rows].map((row) => row[column]!.length)))
const line = (row: string[]) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')
console.log(`node ${process.version}, one process, ${durationMs} ms per case`)
console.log(line(['case', 'ops/s', 'vs baseline']))
for (const row of rows) console.log(line(row))

mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(
  new URL('./results/latest.json', import.meta.url),
  JSON.stringify({ node: process.version, durationMs, date: new Date().toISOString(), results }, null, 2) + '\n',
)
