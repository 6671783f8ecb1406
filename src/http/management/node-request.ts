/**
 * A node `IncomingMessage` as a router request, for the Express and Koa forms: the path and query
 * from `req.url`, headers by name, and the body from a body parser that ran before, or read here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RouterResponse } from './problems.js'
import type { BodyRead, RouterRequest } from './request.js'

/** Reads a request stream up to `limitBytes`; stops reading (and says so) beyond it. */
export function readNodeBody(req: IncomingMessage, limitBytes: number): Promise<BodyRead> {
  if (req.readableEnded || !req.readable) return Promise.resolve({ kind: 'none' })
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (read: BodyRead) => {
      req.off('data', onData).off('end', onEnd).off('error', onError)
      resolve(read)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limitBytes) {
        done({ kind: 'too_large' })
        // The rest is read and dropped, so the connection stays usable after the 413.
        req.resume()
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => done(size === 0 ? { kind: 'none' } : { kind: 'text', text: Buffer.concat(chunks).toString('utf8') })
    const onError = (error: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onError)
      reject(error)
    }
    req.on('data', onData).on('end', onEnd).on('error', onError)
  })
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
