/**
 * What went wrong, as the bin reports it: an exit code and one line for stderr. Library errors keep
 * their own messages (which carry no secret, hash or input) with the input's fields named as the
 * options that set them (`--expires-in`, not `expiresIn`).
 */
import { ConfigError, ConflictError, formatPath, KeyNotFoundError, KeywardenError, QuotaExceededError, StoreError, ValidationError, type ValidationIssue } from '../errors.js'
import { CliError, EXIT, type ExitCode } from './exit-codes.js'
import { describeCause, oneLine, quoteInput } from './output.js'

/** An exit code and the line (without `keywarden: `) that explains it. */
export interface Failure {
  /** One of the documented exit codes. */
  readonly exitCode: ExitCode
  /** One line, safe to print. */
  readonly message: string
}

/** Input fields by the option (or argument) that sets them. */
const FLAGS: Readonly<Record<string, string>> = {
  id: '<id>',
  name: '--name',
  description: '--description',
  ownerId: '--owner',
  tenantId: '--tenant',
  environment: '--env',
  type: '--type',
  scopes: '--scope',
  roles: '--role',
  groups: '--group',
  metadata: '--metadata',
  expiresIn: '--expires-in',
  expiresAt: '--expires-at',
  status: '--status',
  limit: '--limit',
  cursor: '--cursor',
  order: '--order',
  within: '--within',
  gracePeriod: '--grace-period',
  expectedVersion: '--expected-version',
  actor: '--actor',
  reason: '--reason',
  keyId: '--key',
  actorId: '--actor',
  action: '--action',
  from: '--from',
  to: '--to',
}

function issueText(issue: ValidationIssue): string {
  const [field, ...rest] = issue.path
  const flag = typeof field === 'string' && Object.hasOwn(FLAGS, field) ? FLAGS[field]! : formatPath(issue.path) || 'input'
  // `--scope #2` for the second --scope given; deeper paths (metadata fields) as the library names them.
  const where = typeof field === 'string' && Object.hasOwn(FLAGS, field) && rest.length > 0 ? (typeof rest[0] === 'number' ? ` #${rest[0] + 1}` : ` ${formatPath(rest)}`) : ''
  return `${flag}${where}: ${issue.message}`
}

/** A missing table or relation: the store was never migrated. */
function missingSchema(cause: unknown): boolean {
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown }
  return code === '42P01' || code === '42883' || code === 'ER_NO_SUCH_TABLE' || /no such table/i.test(String(message))
}

/** The exit code and message for anything a command threw. */
export function describeFailure(error: unknown): Failure {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: oneLine(error.message, 500) }
  if (error instanceof ValidationError) return { exitCode: EXIT.usage, message: oneLine(error.issues.slice(0, 3).map(issueText).join('; '), 500) }
  if (error instanceof ConfigError) return { exitCode: EXIT.usage, message: oneLine(error.issues.slice(0, 3).map(issueText).join('; '), 500) }
  if (error instanceof KeyNotFoundError) return { exitCode: EXIT.notFound, message: `no key with ID ${quoteInput(error.keyId)}` }
  if (error instanceof ConflictError || error instanceof QuotaExceededError) return { exitCode: EXIT.conflict, message: oneLine(error.message) }
  if (error instanceof StoreError) {
    const hint = missingSchema(error.cause) ? '; has the store been migrated? (keywarden migrate)' : ''
    return { exitCode: EXIT.store, message: `${oneLine(error.message)} (${describeCause(error.cause)})${hint}` }
  }
  if (error instanceof KeywardenError) return { exitCode: EXIT.internal, message: oneLine(error.message) }
  return { exitCode: EXIT.internal, message: `internal error: ${describeCause(error)}` }
}
