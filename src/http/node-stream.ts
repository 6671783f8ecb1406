/**
 * Reading a node request's body stream with a size limit: for the management router and the
 * secret-scanning handler, which both need the bytes themselves (the latter to check a signature).
 */
import type { IncomingMessage } from 'node:http'

/**
 * The whole body, or `'too_large'` once it passes `limitBytes` (the rest is drained and dropped, not
 * paused: a client blocked on its upload would never read the 413). Rejects when the stream fails or
 * the client goes away before the end, with the stream's error as `cause`.
 */
export function readNodeStream(req: IncomingMessage, limitBytes: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const stop = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose)
    }
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
      size += bytes.byteLength
      if (size <= limitBytes) {
        chunks.push(bytes)
        return
      }
      stop()
      req.resume()
      resolve('too_large')
    }
    const onEnd = () => {
      stop()
      resolve(Buffer.concat(chunks, size))
    }
    const onError = (error: unknown) => {
      stop()
      reject(new Error('The request body could not be read', { cause: error }))
    }
    const onClose = () => {
      stop()
      reject(new Error('The client closed the connection before the request body ended'))
    }
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose)
  })
}
