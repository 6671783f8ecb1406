/**
 * Creating a key, end to end: validate the input, fill in the defaults (the sole environment, the
 * policy's expiry), check role and group names and the owner's quota, insert (idempotently when
 * asked), give the key its initial credits, and announce it.
 */
import type { ChangeContext } from '../audit/audit-store.js'
import { changeDetails } from '../audit/changes.js'
import { ValidationError } from '../errors.js'
import type { KeyEventEmitter } from '../events.js'
import type { InputSchemas } from '../inputs.js'
import type { ResolvedOptions } from '../options.js'
import { resolveExpiry } from '../policy/expiry.js'
import type { StoredKey } from '../store.js'
import type { ApiKey, CreateKeyInput, IssuedKey } from '../types.js'
import { parseInput } from '../validation.js'
import type { Creation } from './creation.js'
import type { Credits } from './credits.js'
import type { KeyChanges } from './key-changes.js'
import type { Permissions } from './permissions.js'
import { quotaFor } from './quota.js'

/** What a key's creation needs from its KeyManager. */
export interface KeyCreationParts {
  readonly options: ResolvedOptions
  readonly schemas: InputSchemas
  readonly clock: () => number
  readonly changes: KeyChanges
  readonly permissions: Permissions
  readonly creation: Creation
  readonly credits: Credits
  readonly events: KeyEventEmitter
  readonly project: (record: StoredKey) => ApiKey
  readonly token: (record: StoredKey, secret: string) => string
}

export class KeyCreation {
  constructor(private readonly parts: KeyCreationParts) {}

  async create(input: CreateKeyInput, context: ChangeContext | undefined): Promise<IssuedKey> {
    const { options, schemas, clock, changes, permissions, creation, credits, events, project, token } = this.parts
    const parsed = parseInput(schemas.create, input)
    const change = changes.context(context, false)
    const environment = parsed.environment ?? this.#soleEnvironment()
    const now = clock()
    const fields = {
      name: parsed.name,
      description: parsed.description ?? null,
      ownerId: parsed.ownerId ?? null,
      tenantId: parsed.tenantId ?? null,
      environment,
      type: parsed.type ?? null,
      scopes: parsed.scopes ?? [],
      roles: parsed.roles ?? [],
      groups: parsed.groups ?? [],
      metadata: parsed.metadata ?? {},
      expiresAt: resolveExpiry(parsed, options.expiry, now, true) ?? null,
      policy: parsed.policy ?? null,
      hasCredits: parsed.credits !== undefined,
    }
    await permissions.checkNames(fields.tenantId, fields)
    const quota = quotaFor(options.maxKeysPerOwner, fields, parsed.owner)
    const { record, secret, created, changes: changed } = await creation.insert(fields, quota, parsed.idempotencyKey, now, change)
    if (created && parsed.credits !== undefined) await credits.initialise(record, parsed.credits, change)
    const key = project(record)
    if (created) events.emit({ type: 'created', at: new Date(now), key, ...changeDetails(change, changed) })
    return { key, token: token(record, secret) }
  }

  #soleEnvironment(): string {
    const { environments } = this.parts.options
    if (environments.length !== 1) {
      throw new ValidationError([{ path: ['environment'], message: 'is required when more than one environment is configured' }])
    }
    return environments[0]!
  }
}
