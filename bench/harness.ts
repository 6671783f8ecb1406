/** Small timing helpers shared by the benchmarks. Results are ops/s; nothing here asserts on time. */

export interface BenchResult {
  readonly name: string
  readonly opsPerSecond: number
  /** Ratio to the case's baseline measured in the same run; `null` for a baseline itself. */
  readonly ratioToBaseline: number | null
  /** A second same-round ratio or remark, printed in a last column when any row has one. */
  readonly note?: string
}

/**
 * Runs `operation` from `concurrency` workers for `durationMs` after a short warm-up and returns
 * completed operations per second.
 */
export async function measure(operation: () => Promise<unknown> | unknown, durationMs: number, concurrency = 1): Promise<number> {
  const warmUntil = performance.now() + Math.min(500, durationMs / 4)
  while (performance.now() < warmUntil) await operation()
  let operations = 0
  const start = performance.now()
  const deadline = start + durationMs
  const worker = async () => {
    while (performance.now() < deadline) {
      for (let i = 0; i < 20; i++) await operation()
      operations += 20
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return (operations * 1000) / (performance.now() - start)
}

/** Rounds per comparison (`BENCH_ROUNDS`, default 5): more rounds, less drift between cases. */
export const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5))

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Samples of several cases taken in interleaved rounds. */
export class Comparison {
  constructor(private readonly samples: readonly (readonly number[])[]) {}

  /** Median ops/s of case `index`. */
  opsPerSecond(index: number): number {
    return median(this.samples[index]!)
  }

  /** Median over rounds of case `index`'s ops/s divided by case `baseline`'s in the same round. */
  ratio(index: number, baseline = 0): number {
    const base = this.samples[baseline]!
    return median(this.samples[index]!.map((ops, round) => ops / base[round]!))
  }
}

/**
 * Runs the cases in turn, `rounds` times (a, b, c, a, b, c, ...), each call measuring one slice and
 * returning ops/s. A shift in machine load then hits every case alike, and each ratio compares two
 * slices seconds apart, not minutes.
 */
export async function interleave(cases: readonly (() => Promise<number>)[], rounds = ROUNDS): Promise<Comparison> {
  const samples = cases.map((): number[] => [])
  for (let round = 0; round < rounds; round++) {
    for (const [index, run] of cases.entries()) samples[index]!.push(await run())
  }
  return new Comparison(samples)
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await task(items[next++]!)
    }),
  )
}

/** Prints results as an aligned table. */
export function printTable(results: readonly BenchResult[]): void {
  const rows = results.map((result) => [
    result.name,
    Math.round(result.opsPerSecond).toLocaleString('en-US'),
    result.ratioToBaseline === null ? 'baseline' : `${result.ratioToBaseline.toFixed(2)}x`,
    ...(results.some((other) => other.note !== undefined) ? [result.note ?? ''] : []),
  ])
  const header = ['case', 'ops/s', 'vs baseline', ...(results.some((result) => result.note !== undefined) ? ['note'] : [])]
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => row[column]!.length)))
  const line = (row: string[]) =>
    row.map((cell, column) => (column === 0 || column === 3 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd()
  console.log(line(header))
  for (const row of rows) console.log(line(row))
}
