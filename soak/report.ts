/** Prints a store run as tables and turns it into the JSON written under soak/results/. */
import { LABELS } from './model.js'
import type { HeapFigures, StoreRun } from './run.js'

const number = (value: number) => value.toLocaleString('en-US')
const ms = (value: number | null) => (value === null ? '-' : `${value.toFixed(value < 10 ? 1 : 0)} ms`)
const mb = (figures: readonly HeapFigures[]) => figures.map((figure) => figure.heapUsedMB.toFixed(1)).join(' / ')

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')).join('\n')
}

const counts = (record: Record<string, number>) =>
  Object.entries(record)
    .sort(([, a], [, b]) => b - a)
    .map(([kind, count]) => `${kind} ${number(count)}`)
    .join(', ') || 'none'

interface AppCounters {
  rejections?: Record<string, number>
  clientErrors?: number
  channelErrors?: number
  usageErrors?: number
  subscription?: { lost: number; restored: number; lostMs: number; longestLostMs: number }
}

export function printRun(run: StoreRun): void {
  const { classification: c, management: m, outage, heap, stateCheck: state } = run
  const seconds = run.durationMs / 1000
  const names = run.instances.join(' / ')
  const perInstance = run.instances.map((name, index) => `${name} ${number(c.requests.byInstance[index] ?? 0)}`).join(', ')
  console.log(`\n== soak: ${run.store}, ${seconds.toFixed(0)} s of traffic, ${run.instances.length} app instances, revocation bound ${run.boundMs} ms ==`)
  console.log(
    `requests served: ${number(c.requests.total)} (load ${number(c.requests.load)} = ${number(Math.round(c.requests.load / seconds))}/s, probes ${number(c.requests.probe)}, sweeps ${number(c.requests.sweep)}; instance ${perInstance})`,
  )
  console.log(`latency (load): p50 ${ms(c.latency.all.p50)}, p99 ${ms(c.latency.all.p99)}, max ${ms(c.latency.all.max)}; outside the outage: p50 ${ms(c.latency.outsideOutage.p50)}, p99 ${ms(c.latency.outsideOutage.p99)}`)
  console.log(`errors (verify answers): ${counts(c.errors)}`)
  const kinds = Object.entries(m.byKind).map(([kind, count]) => `${kind} ${count}`).join(', ')
  console.log(`management: ${number(m.calls)} calls, ${number(m.ok)} ok, ${m.failedDuringOutage} failed during the outage, ${m.retried} retries (${kinds}); failures by code: ${counts(m.failuresByCode)}`)
  if (outage !== null && outage.failover !== null) {
    const f = outage.failover
    const what = f.mode === 'kill' ? `master ${f.oldMaster} killed (SIGKILL)` : `CLUSTER FAILOVER on replica ${f.newMaster}`
    console.log(
      `failover of slot ${f.slot}: ${what} at +${(outage.stoppedMs / 1000).toFixed(1)} s; ${f.newMaster} promoted after ${ms(outage.downMs)}, every live node agreeing after ${ms(f.settledMs - outage.stoppedMs)}; ` +
        `every instance read the store again ${ms(outage.recoveryMs)} after the promotion${f.rejoinedMs === null ? '' : `; ${f.oldMaster} started again, a synced replica at +${(f.rejoinedMs / 1000).toFixed(1)} s`}; ` +
        `window for 503s and failed writes +${(outage.startMs / 1000).toFixed(1)}..+${((outage.windowEndMs ?? 0) / 1000).toFixed(1)} s; 503s in it: ${number(c.outage503)}`,
    )
  } else if (outage !== null) {
    console.log(
      `outage: stop at +${(outage.startMs / 1000).toFixed(1)} s, down ${ms(outage.downMs)}, every instance read the store again ${ms(outage.recoveryMs)} after the restart; 503s: ${number(c.outage503)}`,
    )
  }
  const p = run.propagation
  console.log(
    `revocation propagation (call on one instance returned -> first rejection on another, goal < ${p.goalMs} ms): ${p.samples} probes, p50 ${ms(p.p50Ms)}, max ${ms(p.maxMs)}; latest acceptance after a revoke/disable returned: ${c.maxAcceptedAfterChangeMs === null ? 'none' : ms(c.maxAcceptedAfterChangeMs)}`,
  )
  const lateByInstance = new Map(c.byInstance.map((figures) => [figures.instance, figures.maxAcceptedAfterChangeMs]))
  console.log()
  console.log(
    table([
      ['instance', 'probes', 'p50', 'p99', 'max (largest seen)', 'not propagated', 'load: latest acceptance after revoke'],
      ...p.byInstance.map((figures) => {
        const late = lateByInstance.get(figures.instance) ?? null
        return [figures.instance, number(figures.samples), ms(figures.p50Ms), ms(figures.p99Ms), ms(figures.maxMs), number(figures.notPropagated), late === null ? 'none' : ms(late)]
      }),
    ]),
  )
  console.log()
  console.log(`heap used, MB (${names}): before ${mb(heap.before)}${heap.before[0]?.collected ? ' (after GC)' : ''}, after ${mb(heap.after)}, after GC ${heap.afterGc[0]?.collected ? mb(heap.afterGc) : 'n/a (run with --expose-gc)'}`)
  const slow = p.timeline.filter((sample) => sample.ms > 100).map((sample) => `${sample.ms.toFixed(0)} ms on ${sample.instance} at +${(sample.atMs / 1000).toFixed(1)} s`)
  if (slow.length > 0) console.log(`  probes over 100 ms: ${slow.join(', ')}`)
  const counters = run.appCounters as AppCounters[]
  const reasons: Record<string, number> = {}
  for (const counter of counters) for (const [reason, count] of Object.entries(counter.rejections ?? {})) reasons[reason] = (reasons[reason] ?? 0) + count
  console.log(`middleware rejections by reason (${run.instances.join(' + ')}): ${counts(reasons)}`)
  console.log(
    `errors reported to the apps' handlers (${names}): driver ${counters.map((counter) => counter.clientErrors ?? 0).join(' / ')}, invalidation channel ${counters.map((counter) => counter.channelErrors ?? 0).join(' / ')}, lastUsedAt writes ${counters.map((counter) => counter.usageErrors ?? 0).join(' / ')}`,
  )
  const subscriptions = counters.map((counter) => counter.subscription)
  if (subscriptions.every((subscription) => subscription !== undefined)) {
    console.log(
      `invalidation subscription lost / restored (cache bypassed meanwhile), longest loss (${names}): ${subscriptions.map((s) => `${s!.lost}/${s!.restored}, ${ms(s!.longestLostMs)}`).join(' / ')}`,
    )
  }
  console.log(`state check: ${state.keys} keys, ${state.tokens} tokens; lost ${state.lost}, wrong state ${state.wrongState}, unexpected extra ${state.extra}`)

  const statuses = Object.keys(c.statuses).sort()
  console.log()
  console.log(table([['status', 'expected', 'unexpected'], ...statuses.map((status) => [status === '0' ? 'error' : status, number(c.statuses[status]!.expected), number(c.statuses[status]!.unexpected)])]))

  const seen = LABELS.filter((label) => c.labels[label] !== undefined)
  const columns = [...new Set(Object.values(c.labels).flatMap((byStatus) => Object.keys(byStatus)))].sort()
  console.log()
  console.log(table([['token was', ...columns.map((status) => (status === '0' ? 'error' : status))], ...seen.map((label) => [label, ...columns.map((status) => number(c.labels[label]![status] ?? 0))])]))

  const violations = run.violations
  if (violations.total === 0) console.log(`\n[${run.store}] ASSERTIONS: all hold`)
  else {
    console.log(`\n[${run.store}] ASSERTIONS: ${violations.total} violation(s)`)
    for (const [kind, { count, samples }] of violations.byKind) {
      console.log(`  - ${kind}: ${count}`)
      for (const sample of samples.slice(0, 3)) console.log(`      ${JSON.stringify(sample)}`)
    }
  }
}

export function runToJson(run: StoreRun) {
  return { ...run, violations: run.violations.toJSON(), violationCount: run.violations.total }
}
