/**
 * Reading what a request sends, strictly: the URL must be well-formed percent-encoding, or the request
 * is refused with a `RequestRejection`. (The management router reads and bounds its own bodies.)
 */
import { RequestRejection } from './problems.js'

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
