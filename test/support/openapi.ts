/**
 * Checks HTTP answers against an OpenAPI 3.1 document, as a client generated from it would expect
 * them: the document itself is validated first (@seriousme/openapi-schema-validator), then every
 * answer's status must be documented for its operation, its media type must be the documented one
 * and its body must validate against the documented schema (Ajv 2020-12 with formats, the document's
 * own `#/components/...` references resolved inside it).
 *
 * @example
 * ```ts
 * const openapi = await openApiChecker(await (await fetch(`${base}/openapi.json`)).json())
 * openapi.check('GET', openapi.templateOf('/abc123')!, 200, response.headers.get('content-type'), await response.text())
 * ```
 */
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'

/** An OpenAPI document, as JSON. */
export type OpenApiDocument = Record<string, unknown>

type Json = Record<string, unknown>

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

/** One documented (operation, status) pair, e.g. `POST /{id}/rotate 412`. */
export type CoverageKey = `${string} ${string} ${number}`

/** The checker of one document. */
export interface OpenApiChecker {
  /** The document, as served. */
  readonly document: OpenApiDocument
  /**
   * Fails (throws, naming the operation and what is wrong) unless `status` is documented for
   * `method pathTemplate`, the answer's media type (parameters such as `charset` aside) is the
   * documented one, or there is none when none is documented, and `body` (the raw text) validates
   * against the documented schema. Documented response headers must be present (`headers`, by
   * lower-case name, when given).
   */
  check(method: string, pathTemplate: string, status: number, contentType: string | null, body: string, headers?: Readonly<Record<string, string | undefined>>): void
  /**
   * For a method and concrete path the document has no operation for: fails unless the answer is a
   * documented-shape problem (`#/components/schemas/Problem`) with status 404 (no such path) or 405
   * (the path exists, the method does not).
   */
  checkUndocumented(method: string, path: string, status: number, contentType: string | null, body: string): void
  /** The path template (`/{id}/rotate`) a concrete path below the server URL (`/abc123/rotate`) falls under, or `null`. */
  templateOf(path: string): string | null
  /** Whether the document has an operation for this method and template. */
  hasOperation(method: string, pathTemplate: string): boolean
  /** Every documented (operation, status) pair. */
  documented(): CoverageKey[]
  /** Every (operation, status) pair a passing `check` has seen. */
  readonly seen: ReadonlySet<CoverageKey>
}

/** RFC 6901: `~` and `/` escaped, for a JSON pointer segment. */
function pointerSegment(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1')
}

/** `application/json; charset=utf-8` -> `application/json`. */
function essence(contentType: string | null): string | null {
  if (contentType === null) return null
  const type = contentType.split(';')[0]!.trim().toLowerCase()
  return type === '' ? null : type
}

/**
 * The path template a concrete path falls under: literal segments must match exactly, `{name}`
 * segments match any one non-empty segment, and of several matches the one with the most literal
 * segments wins (OpenAPI: concrete paths before templated ones).
 */
export function templateOfPath(templates: Iterable<string>, path: string): string | null {
  const split = (value: string) => value.replace(/^\/+|\/+$/g, '').split('/').filter((segment) => segment !== '')
  const segments = split(path.split('?')[0]!)
  let best: { template: string; literals: number } | null = null
  for (const template of templates) {
    const parts = split(template)
    if (parts.length !== segments.length) continue
    let literals = 0
    const fits = parts.every((part, index) => {
      if (/^\{[^}]+\}$/.test(part)) return true
      literals += 1
      return part === segments[index]
    })
    if (fits && (best === null || literals > best.literals)) best = { template, literals }
  }
  return best?.template ?? null
}

function describeErrors(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .slice(0, 10)
    .map((error) => `${error.instancePath || '(root)'} ${error.message ?? error.keyword}${error.params && Object.keys(error.params).length > 0 ? ` ${JSON.stringify(error.params)}` : ''}`)
    .join('; ')
}

/**
 * Validates the document as an OpenAPI 3.1 document (throws with the validator's errors otherwise)
 * and returns a checker for answers.
 */
export async function openApiChecker(document: OpenApiDocument): Promise<OpenApiChecker> {
  if (document['openapi'] !== '3.1.0' && !String(document['openapi']).startsWith('3.1.')) throw new Error(`not an OpenAPI 3.1 document: openapi is ${JSON.stringify(document['openapi'])}`)
  const validated = await new Validator().validate(structuredClone(document))
  if (!validated.valid) throw new Error(`the OpenAPI document is not valid OpenAPI 3.1: ${JSON.stringify(validated.errors, null, 2)}`)

  const id = 'https://keywarden.test/openapi.json'
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, validateFormats: true })
  // The OpenAPI-only keywords of the document (openapi, info, paths...) are not JSON Schema keywords.
  for (const keyword of ['openapi', 'info', 'servers', 'security', 'paths', 'components', 'webhooks', 'tags', 'externalDocs', 'jsonSchemaDialect']) ajv.addKeyword(keyword)
  addFormats.default(ajv)
  ajv.addSchema(structuredClone({ ...document, $id: id }))

  const paths = (document['paths'] ?? {}) as Record<string, Record<string, Json>>
  const validators = new Map<string, ValidateFunction>()
  const seen = new Set<CoverageKey>()

  const operationOf = (method: string, pathTemplate: string): Json | undefined => {
    const item = paths[pathTemplate]
    const operation = item?.[method.toLowerCase()]
    return operation !== undefined && METHODS.includes(method.toLowerCase() as (typeof METHODS)[number]) ? operation : undefined
  }

  const validatorAt = (pointer: string): ValidateFunction => {
    let validate = validators.get(pointer)
    if (validate === undefined) {
      validate = ajv.compile({ $ref: `${id}#${pointer}` })
      validators.set(pointer, validate)
    }
    return validate
  }

  const validateBody = (where: string, pointer: string, mediaType: string, body: string) => {
    let value: unknown
    if (/^application\/(?:[\w.+-]+\+)?json$/.test(mediaType)) {
      try {
        value = JSON.parse(body)
      } catch {
        throw new Error(`${where}: the body is not JSON (${mediaType}): ${JSON.stringify(body.slice(0, 200))}`)
      }
    } else {
      value = body
    }
    const validate = validatorAt(pointer)
    if (!validate(value)) throw new Error(`${where}: the body does not match the documented schema (${pointer}): ${describeErrors(validate)}\n  body: ${body.slice(0, 1000)}`)
  }

  const checker: OpenApiChecker = {
    document,
    seen,
    templateOf: (path) => templateOfPath(Object.keys(paths), path),
    hasOperation: (method, pathTemplate) => operationOf(method, pathTemplate) !== undefined,
    documented: () =>
      Object.entries(paths).flatMap(([template, item]) =>
        METHODS.filter((method) => item[method] !== undefined).flatMap((method) =>
          Object.keys((item[method]!['responses'] ?? {}) as Json).map((status): CoverageKey => `${method.toUpperCase()} ${template} ${Number(status)}`),
        ),
      ),

    check(method, pathTemplate, status, contentType, body, headers) {
      const where = `${method.toUpperCase()} ${pathTemplate} -> ${status}`
      const operation = operationOf(method, pathTemplate)
      if (operation === undefined) throw new Error(`${where}: the document has no operation ${method.toUpperCase()} ${pathTemplate}`)
      const responses = (operation['responses'] ?? {}) as Record<string, Json>
      const key = String(status)
      const response = responses[key] ?? responses[`${key[0]}XX`] ?? responses['default']
      if (response === undefined) {
        throw new Error(`${where}: status ${status} is not documented for ${operation['operationId'] as string} (documented: ${Object.keys(responses).join(', ')})\n  body: ${body.slice(0, 500)}`)
      }
      const responseKey = Object.hasOwn(responses, key) ? key : Object.hasOwn(responses, `${key[0]}XX`) ? `${key[0]}XX` : 'default'
      const content = (response['content'] ?? {}) as Record<string, Json>
      const documentedTypes = Object.keys(content)
      const actual = essence(contentType)
      const base = `/paths/${pointerSegment(pathTemplate)}/${method.toLowerCase()}/responses/${pointerSegment(responseKey)}`
      if (documentedTypes.length === 0) {
        if (body !== '') throw new Error(`${where}: no body is documented, but one came (${actual ?? 'no content type'}): ${body.slice(0, 200)}`)
        if (actual !== null) throw new Error(`${where}: no body is documented, but the answer says Content-Type ${actual}`)
      } else {
        if (actual === null) throw new Error(`${where}: no Content-Type; documented: ${documentedTypes.join(', ')}`)
        const mediaType = documentedTypes.find((type) => type.toLowerCase() === actual)
        if (mediaType === undefined) throw new Error(`${where}: Content-Type ${actual} differs from the documented ${documentedTypes.join(', ')}`)
        if (content[mediaType]!['schema'] !== undefined) validateBody(where, `${base}/content/${pointerSegment(mediaType)}/schema`, actual, body)
      }
      if (headers !== undefined) {
        for (const [name, header] of Object.entries((response['headers'] ?? {}) as Record<string, Json>)) {
          const value = headers[name.toLowerCase()]
          if (value === undefined) throw new Error(`${where}: the documented header ${name} is missing`)
          if (header['schema'] !== undefined) {
            const validate = validatorAt(`${base}/headers/${pointerSegment(name)}/schema`)
            if (!validate(value)) throw new Error(`${where}: header ${name} does not match its schema: ${describeErrors(validate)}`)
          }
        }
      }
      seen.add(`${method.toUpperCase()} ${pathTemplate} ${status}`)
    },

    checkUndocumented(method, path, status, contentType, body) {
      const template = checker.templateOf(path)
      const where = `${method.toUpperCase()} ${path} -> ${status} (not an operation of the document)`
      if (template !== null && operationOf(method, template) !== undefined) throw new Error(`${where}: but it is ${method.toUpperCase()} ${template}; use check()`)
      const expected = template === null ? 404 : 405
      if (status !== expected) throw new Error(`${where}: expected ${expected} (${template === null ? 'no such path' : 'no such method on the path'})`)
      if (essence(contentType) !== 'application/problem+json') throw new Error(`${where}: Content-Type ${essence(contentType) ?? 'none'} is not application/problem+json`)
      validateBody(where, '/components/schemas/Problem', 'application/problem+json', body)
    },
  }
  return checker
}
