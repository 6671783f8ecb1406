/**
 * Every verify request of a run (load, probes, final sweep) and, at the end, their classification
 * against the model: expected or not, by status and by what the token was at the time.
 */
import { labelAt, possibleOutcomes, type Outcome, type TokenModel } from './model.js'

export const Source = { load: 0, probe: 1, sweep: 2 } as const
export type Source = (typeof Source)[keyof typeof Source]

/** Columns of numbers rather than an object per request: a 5-minute run holds hundreds of thousands. */
export class ResultLog {
  readonly token: number[] = []
  readonly instance: number[] = []
  readonly status: number[] = []
  readonly sent: number[] = []
  readonly received: number[] = []
  readonly source: Source[] = []

  add(token: number, instance: number, status: number, sent: number, received: number, source: Source): void {
    this.token.push(token)
    this.instance.push(instance)
    this.status.push(status)
    this.sent.push(sent)
    this.received.push(received)
    this.source.push(source)
  }

  get size(): number {
    return this.token.length
  }
}

/** The store was down (or not yet readable again from both instances) from `start` to `end`. */
export interface OutageWindow {
  readonly start: number
  readonly end: number
}

export interface ViolationSample {
  readonly [field: string]: string | number | boolean | null | readonly (string | number)[]
}

/** Broken promises, by kind, with a few examples each. */
export class Violations {
  readonly byKind = new Map<string, { count: number; samples: ViolationSample[] }>()

  add(kind: string, sample: ViolationSample): void {
    let entry = this.byKind.get(kind)
    if (entry === undefined) this.byKind.set(kind, (entry = { count: 0, samples: [] }))
    entry.count++
    if (entry.samples.length < 5) entry.samples.push(sample)
  }

  get total(): number {
    let total = 0
    for (const { count } of this.byKind.values()) total += count
    return total
  }

  toJSON() {
    return Object.fromEntries(this.byKind)
  }
}

export interface Percentiles {
  readonly count: number
  readonly p50: number | null
  readonly p99: number | null
  readonly max: number | null
}

export function percentiles(values: Float64Array): Percentiles {
  if (values.length === 0) return { count: 0, p50: null, p99: null, max: null }
  const sorted = values.slice().sort()
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! }
}

export interface Classification {
  readonly requests: { readonly total: number; readonly load: number; readonly probe: number; readonly sweep: number; readonly byInstance: readonly number[] }
  /** Status → how many were expected and how many not. 0 stands for a transport error. */
  readonly statuses: Record<string, { expected: number; unexpected: number }>
  /** What the token was → status → count. */
  readonly labels: Record<string, Record<string, number>>
  /** Response times of the load generator's requests, ms. */
  readonly latency: { readonly all: Percentiles; readonly outsideOutage: Percentiles }
  /** 503s answered while the store was down or recovering. */
  readonly outage503: number
  /** Longest time after a revoke or disable returned that any instance still accepted the key, ms. */
  readonly maxAcceptedAfterChangeMs: number | null
  /** The same per instance, with the instance's requests and its answers that were errors. */
  readonly byInstance: readonly { readonly instance: string; readonly requests: number; readonly maxAcceptedAfterChangeMs: number | null; readonly errors: Record<string, number> }[]
  /**
   * The answers that were errors, by kind: `503 during the outage`, `503 outside the outage`,
   * `transport error` (no HTTP answer) and `HTTP <status>` for any other status of 500 or more.
   */
  readonly errors: Record<string, number>
}

const OUTCOMES: readonly number[] = [200, 401, 403]

/**
 * Classifies every request of `log`. A 503 is expected only while the store is down or recovering; a
 * transport error never; 200, 401 and 403 when the model allows them (see possibleOutcomes). Each
 * unexpected answer is a violation, named after what it breaks. `instances` names the instances by index.
 */
export function classify(
  log: ResultLog,
  tokens: readonly TokenModel[],
  outages: readonly OutageWindow[],
  boundMs: number,
  runStart: number,
  violations: Violations,
  instances: readonly string[] = ['A', 'B'],
): Classification {
  const statuses: Classification['statuses'] = {}
  const labels: Classification['labels'] = {}
  const byInstance = instances.map(() => 0)
  const lateByInstance: (number | null)[] = instances.map(() => null)
  const errorsByInstance: Record<string, number>[] = instances.map(() => ({}))
  const errors: Record<string, number> = {}
  const counts = { load: 0, probe: 0, sweep: 0 }
  const latencyAll: number[] = []
  const latencyOutside: number[] = []
  let outage503 = 0
  let maxAcceptedAfterChangeMs: number | null = null

  for (let i = 0; i < log.size; i++) {
    const token = tokens[log.token[i]!]!
    const status = log.status[i]!
    const sent = log.sent[i]!
    const received = log.received[i]!
    const source = log.source[i]!
    const instance = log.instance[i]!
    byInstance[instance] = (byInstance[instance] ?? 0) + 1
    counts[source === Source.load ? 'load' : source === Source.probe ? 'probe' : 'sweep']++
    const inOutage = outages.some((window) => sent <= window.end && received >= window.start)
    if (source === Source.load) {
      latencyAll.push(received - sent)
      if (!inOutage) latencyOutside.push(received - sent)
    }
    const label = labelAt(token, sent)
    const byStatus = (labels[label] ??= {})
    byStatus[status] = (byStatus[status] ?? 0) + 1

    let expected: boolean
    let kind = ''
    let possible: Set<Outcome> | null = null
    if (status === 503) {
      expected = inOutage
      if (expected) outage503++
      else kind = '503 outside the outage'
    } else if (OUTCOMES.includes(status)) {
      possible = possibleOutcomes(token, sent, received, boundMs)
      expected = possible.has(status as Outcome)
      if (!expected) {
        if (status === 200) kind = `accepted a ${label} token after the bound`
        else if (status === 401 && possible.has(200)) kind = `rejected a valid token with 401${inOutage ? ' (during the outage)' : ''}`
        else kind = `answered ${status} for a ${label} token (expected ${[...possible].join('/') || 'nothing'})`
      }
    } else {
      expected = false
      kind = status === 0 ? 'transport error' : `unexpected status ${status}`
    }
    const error = status === 0 ? 'transport error' : status === 503 ? `503 ${inOutage ? 'during' : 'outside'} the outage` : status >= 500 ? `HTTP ${status}` : null
    if (error !== null) {
      errors[error] = (errors[error] ?? 0) + 1
      const mine = errorsByInstance[instance]!
      mine[error] = (mine[error] ?? 0) + 1
    }
    const cell = (statuses[status] ??= { expected: 0, unexpected: 0 })
    if (expected) cell.expected++
    else {
      cell.unexpected++
      violations.add(kind, {
        label,
        keyId: token.key?.id ?? null,
        instance: instances[instance] ?? String(instance),
        source: ['load', 'probe', 'sweep'][source]!,
        status,
        sentAtMs: sent - runStart,
        receivedAtMs: received - runStart,
        possible: possible === null ? [] : [...possible],
        timeline: token.key === null ? [] : token.key.changes.map((change) => `${change.op}@${change.start - runStart}..${change.end - runStart}`),
      })
    }

    // How long after a revoke or disable returned the key was still accepted (bounded by the assertion above).
    // (The newest change begun before the request: if a later one was under way, it may have re-enabled the key.)
    if (status === 200 && token.key !== null) {
      const changes = token.key.changes
      for (let c = changes.length - 1; c > 0; c--) {
        const change = changes[c]!
        if (change.start > sent) continue
        if (change.end <= sent && (change.state.revoked || !change.state.enabled)) {
          maxAcceptedAfterChangeMs = Math.max(maxAcceptedAfterChangeMs ?? 0, sent - change.end)
          lateByInstance[instance] = Math.max(lateByInstance[instance] ?? 0, sent - change.end)
        }
        break
      }
    }
  }

  return {
    requests: { total: log.size, ...counts, byInstance },
    statuses,
    labels,
    latency: { all: percentiles(Float64Array.from(latencyAll)), outsideOutage: percentiles(Float64Array.from(latencyOutside)) },
    outage503,
    maxAcceptedAfterChangeMs,
    byInstance: instances.map((name, index) => ({ instance: name, requests: byInstance[index]!, maxAcceptedAfterChangeMs: lateByInstance[index]!, errors: errorsByInstance[index]! })),
    errors,
  }
}
