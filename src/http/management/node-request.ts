/**
 * A node `IncomingMessage` as a router request, for the Express and Koa forms: the path and query
 * from `req.url`, headers by name, and the body from a body parser that ran before, or read here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readNodeStream } from '../node-stream.js'
import type { RouterResponse } from './problems.js'
import type { BodyRead, RouterRequest } from './request.js'

/** The body of a request stream, at most `limitBytes`; nothing to read when a reader already ended it. */
export async function readNodeBody(req: IncomingMessage, limitBytes: number): Promise<BodyRead> {
  if (req.readableEnded || !req.readable) return { kind: 'none' }
  const read = await readNodeStream(req, limitBytes)
  if (read === 'too_large') return { kind: 'too_large' }
  return read.length === 0 ? { kind: 'none' } : { kind: 'text', text: read.toString('utf8') }
}

/** A request made from node's message; `parsedBody` is what a body parser left (`undefined`: none ran). */
export function nodeRouterRequest(req: IncomingMessage, url: string, parsedBody: () => unknown): RouterRequest {
  const queryAt = url.indexOf('?')
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    path: queryAt === -1 ? url : url.slice(0, queryAt),
    query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)),
    header: (name) => {
      const value = req.headers[name]
      return Array.isArray(value) ? value.join(', ') : value
    },
    readBody: (limitBytes) => {
      const parsed = parsedBody()
      if (parsed === undefined) return readNodeBody(req, limitBytes)
      if (Buffer.isBuffer(parsed)) return Promise.resolve(parsed.length > limitBytes ? { kind: 'too_large' } : { kind: 'text', text: parsed.toString('utf8') })
      if (typeof parsed === 'string') return Promise.resolve({ kind: 'text', text: parsed })
      return Promise.resolve({ kind: 'parsed', value: parsed })
    },
  }
}

/** Writes a router response with node's own API (node drops a body left unread, keeping the connection usable). */
export function sendNodeResponse(res: ServerResponse, response: RouterResponse): void {
  res.statusCode = response.status
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value)
  if (response.body === null) {
    res.end()
    return
  }
  res.setHeader('Content-Length', Buffer.byteLength(response.body))
  res.end(response.body)
}
