/**
 * Reading what a request sends, strictly: the URL must be well-formed percent-encoding and a JSON body
 * must parse and stay under the size limit, or the request is refused with a `RequestRejection`.
 */
import type { IncomingMessage } from 'node:http'
import { RequestRejection } from './problems.js'

/** The largest request body the management routes read (64 kB); larger ones get a 413. */
export const BODY_LIMIT_BYTES = 64 * 1024

/**
 * Refuses a URL (path or query) whose percent-encoding does not decode, such as `%E0%A4%A`. Separators
 * are literal characters, so the whole URL decodes exactly when every parameter in it does.
 */
export function assertWellFormedUrl(url: string): void {
  try {
    decodeURIComponent(url)
  } catch {
    throw new RequestRejection('invalid_url_encoding')
  }
}

/** Reads a JSON request body (for servers without a body parser). An empty body gives `{}`. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > BODY_LIMIT_BYTES) throw bodyTooLarge(req)
  const chunks: Buffer[] = []
  let size = 0
  // destroyOnReturn: false keeps the connection open for the 413 answer when reading stops early.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > BODY_LIMIT_BYTES) throw bodyTooLarge(req)
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new RequestRejection('invalid_json')
  }
}

function bodyTooLarge(req: IncomingMessage): RequestRejection {
  // The rest of the body is read and dropped, so the connection stays usable after the answer.
  req.resume()
  return new RequestRejection('body_too_large')
}
