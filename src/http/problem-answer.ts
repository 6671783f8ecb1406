/**
 * RFC 9457 problem answers, as every HTTP part of keywarden sends them (the middlewares' rejections,
 * the management router, the secret-scanning handler): one body layout, one set of headers.
 */

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
}

/** The status phrase of a status keywarden answers with. */
export function statusTitle(status: number): string {
  return TITLES[status] ?? 'Error'
}

/** A ready answer: status, headers and the serialised problem body. */
export interface ProblemAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * A frozen problem answer: `{ type: 'about:blank', title, status, detail, code, ...fields }` as
 * `application/problem+json`, never cached, with `headers` added.
 */
export function problemAnswer(status: number, code: string, detail: string, fields: Readonly<Record<string, unknown>> = {}, headers: Readonly<Record<string, string>> = {}): ProblemAnswer {
  return Object.freeze({
    status,
    headers: Object.freeze({ 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store', ...headers }),
    body: JSON.stringify({ type: 'about:blank', title: statusTitle(status), status, detail, code, ...fields }),
  })
}
