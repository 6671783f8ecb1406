/**
 * A Fetch handler (`(request: Request) => Response`) on a real node socket, through
 * `@hono/node-server`, as node users of Hono and of `keywarden/fetch` serve one. Node's own `Request`
 * and `Response` stay in place (`overrideGlobalObjects: false`): nothing global changes for other tests.
 */
import { createAdaptorServer } from '@hono/node-server'
import type { Server } from 'node:http'

/** A Fetch API handler, as Hono's `app.fetch` or a guarded `withApiKey` handler. */
export type FetchApp = (request: Request) => Response | Promise<Response>

/** Starts listening on 127.0.0.1, port 0; wait for `listening` (or use the server's address once it is). */
export function serveFetch(fetch: FetchApp): Server {
  const server = createAdaptorServer({ fetch, overrideGlobalObjects: false }) as Server
  server.listen(0, '127.0.0.1')
  return server
}
