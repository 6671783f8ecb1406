/**
 * `npm run soak`: minutes of mixed traffic over real HTTP against Express app instances guarded by
 * `apiKeyAuth`, with management calls running all along, once per run kind: Redis and PostgreSQL (two
 * instances on a private server that is restarted mid-run) and Redis Cluster (three instances on a
 * private 3 + 3 cluster whose namespace master is failed over mid-run). Not part of `npm test`.
 *
 * Environment: SOAK_DURATION (traffic per run, default 5m; e.g. 60s), SOAK_STORES
 * (redis,postgres,redis-cluster), SOAK_CONCURRENCY (load connections, default 20), SOAK_RATE (verify
 * requests per second, default 500; 0 for unlimited), SOAK_PG_BIN (directory of initdb and pg_ctl, if
 * not under /usr/lib/postgresql), SOAK_CLUSTER_PORTS (the cluster's six ports, default 7200-7205; each
 * port + 10000 too), SOAK_FAILOVER (kill, the default: SIGKILL of the master; manual: CLUSTER FAILOVER).
 *
 * Prints a report per run, writes soak/results/soak-<date>.json, and exits 1 if any assertion broke:
 * no revoked or disabled key accepted after the revocation bound (cache ttl + margin, from the moment
 * the call returned), no revocation propagation over the 1 s goal, no valid key rejected with 401, no
 * 503 outside the outage or failover, nothing lost, no crash.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { BOUND_MARGIN_MS, CACHE_TTL_MS, OUTAGE_MS, PROPAGATION_GOAL_MS, readSettings } from './config.js'
import { printRun, runToJson } from './report.js'
import { runStore, type StoreRun } from './run.js'
import { cleanupAll } from './services.js'

const settings = readSettings()

// Private servers and temporary directories go, whatever ends the run.
process.on('exit', cleanupAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\nsoak: ${signal}, cleaning up`)
    cleanupAll()
    process.exit(130)
  })
}

console.log(
  `soak: ${settings.stores.join(', ')}; ${settings.durationMs / 1000} s of traffic per run; ${settings.concurrency} connections, ` +
    `${settings.rate || 'unlimited'} verify/s; cache ttl ${CACHE_TTL_MS} ms + ${BOUND_MARGIN_MS} ms margin, propagation goal ${PROPAGATION_GOAL_MS} ms; ` +
    `${settings.stores.some((store) => store !== 'redis-cluster') ? `one store restart (${OUTAGE_MS} ms down) per server; ` : ''}` +
    `${settings.stores.includes('redis-cluster') ? `one failover (${settings.failover}) on the cluster (ports ${settings.clusterPorts.join(', ')}); ` : ''}` +
    `node ${process.version}${typeof globalThis.gc === 'function' ? ', --expose-gc' : ''}`,
)

const runs: StoreRun[] = []
let failed: unknown
for (const store of settings.stores) {
  try {
    const run = await runStore(store, settings)
    runs.push(run)
    printRun(run)
  } catch (error) {
    failed = error
    console.error(`\n[${store}] the soak itself failed:`, error)
    break
  }
}

const date = new Date().toISOString()
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
const file = new URL(`./results/soak-${date.replace(/[:.]/g, '-')}.json`, import.meta.url)
const violations = runs.reduce((sum, run) => sum + run.violations.total, 0)
writeFileSync(
  file,
  JSON.stringify(
    { date, node: process.version, settings, cacheTtlMs: CACHE_TTL_MS, boundMarginMs: BOUND_MARGIN_MS, outageMs: OUTAGE_MS, passed: failed === undefined && violations === 0, runs: runs.map(runToJson), error: failed === undefined ? null : String(failed) },
    null,
    2,
  ) + '\n',
)
console.log(`\nsoak: results in ${file.pathname}`)
if (failed !== undefined || violations > 0) {
  console.log(`soak: FAILED (${failed !== undefined ? 'the run did not complete' : `${violations} violation(s)`})`)
  process.exit(1)
}
console.log(`soak: PASSED (${runs.map((run) => run.store).join(', ')})`)
process.exit(0)
