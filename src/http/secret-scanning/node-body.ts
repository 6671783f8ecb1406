/**
 * The raw body of a node request (Express, Koa, plain `node:http`), read from its stream with a size
 * limit, or taken from where a body parser that keeps raw bytes left it.
 */
import type { IncomingMessage } from 'node:http'
import { readNodeStream } from '../node-stream.js'
import { BodyReadError } from './core.js'

/** What was found: the bytes, a body over the limit, or a stream some parser already read. */
export type NodeBody = Uint8Array | 'too_large' | 'consumed'

/**
 * The raw body: a `Uint8Array` (a `Buffer`) a parser kept (`rawBody`, or `body` from `express.raw()`),
 * a string `rawBody` (koa-bodyparser) as UTF-8, else the stream read now, unless something read it already.
 */
export function rawBodyOf(req: IncomingMessage, kept: { readonly rawBody?: unknown; readonly body?: unknown }, limit: number): Promise<NodeBody> {
  for (const candidate of [kept.rawBody, kept.body]) {
    if (candidate instanceof Uint8Array) return Promise.resolve(candidate.byteLength > limit ? 'too_large' : candidate)
  }
  if (typeof kept.rawBody === 'string') {
    const bytes = Buffer.from(kept.rawBody, 'utf8')
    return Promise.resolve(bytes.byteLength > limit ? 'too_large' : bytes)
  }
  // body-parser marks what it parsed with `_body`; any reader leaves the stream ended.
  if (req.readableEnded || (req as { _body?: unknown })._body === true) return Promise.resolve('consumed')
  return readStream(req, limit)
}

/** The stream read now; a failed or cut-off read is a {@link BodyReadError}. */
async function readStream(req: IncomingMessage, limit: number): Promise<NodeBody> {
  try {
    return await readNodeStream(req, limit)
  } catch (error) {
    throw new BodyReadError({ cause: error })
  }
}

/** A header of a node request; node joins most repeated fields with `, ` and keeps others as arrays. */
export function nodeHeader(req: IncomingMessage): (name: string) => string | readonly string[] | undefined {
  return (name) => req.headers[name]
}
