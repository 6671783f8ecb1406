/**
 * keywarden: API access keys for Node.js back ends.
 *
 * @example
 * ```ts
 * import { KeyManager } from 'keywarden'
 * import { MemoryStore } from 'keywarden/adapters/memory'
 *
 * const keys = new KeyManager({ store: new MemoryStore(), prefix: 'acme', environments: ['live', 'test'] })
 * const { token } = await keys.create({ name: 'CI', environment: 'live', scopes: ['data:read'] })
 * console.log(await keys.verify(token, { scopes: ['data:read'] }))
 * ```
 *
 * @module keywarden
 */
export { KeyManager, type ParsedToken } from './key-manager.js'
export type { KeyManagerOptions, ResolvedOptions, QuotaContext } from './options.js'
export type {
  ApiKey,
  CreateKeyInput,
  ExpiringInput,
  ExpiringKeys,
  IssuedKey,
  RotatedKey,
  KeyPage,
  ListKeysInput,
  NotifyExpiringInput,
  NotifyExpiringResult,
  OwnerContext,
  RotateOptions,
  UpdateKeyInput,
  VerifyFailureReason,
  VerifyOptions,
  VerifyResult,
} from './types.js'
export type { ChangeDetails, KeyEvent, KeyEventListener, KeyEventMap, KeyEventName } from './events.js'
export {
  ConfigError,
  ConflictError,
  KeyNotFoundError,
  KeyRevokedError,
  KeywardenError,
  QuotaExceededError,
  StoreError,
  ValidationError,
  type KeywardenErrorCode,
  type ValidationIssue,
} from './errors.js'
export type { StoreFailureCause } from './store-failure.js'
export {
  compareListPositions,
  keyStatus,
  matchesKeyQuery,
  type InsertResult,
  type JsonObject,
  type JsonValue,
  type KeyQuery,
  type KeyStatus,
  type KeyStore,
  type ListPosition,
  type QuotaCheck,
  type StoredKey,
  type UpdateResult,
} from './store.js'
export type { KeyCredential, SplitToken } from './token/key-pair.js'
export type { VersionedChangeContext } from './audit/context.js'
export type { AuditEntry, AuditInput, AuditPage, PruneAuditInput } from './manager/audit-trail.js'
export type { LeakReport, ReportLeakOptions } from './manager/leak-reports.js'
export type { KeyPermissions } from './manager/permissions.js'
export type { GroupMap, RoleCatalog, RoleLookup, RoleMap } from './policy/role-directory.js'
export type { PermissionGrant } from './policy/scopes.js'
export {
  compareAuditPositions,
  isAuditStore,
  matchesAuditQuery,
  type Actor,
  type ActorType,
  type AuditAction,
  type AuditChanges,
  type AuditPosition,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
  type ChangeContext,
  type FieldChange,
} from './audit/audit-store.js'
export type { CreditRefill, CreditsRule, LimitPolicy, LimitScope, LimitsOptions, RateLimitRule } from './limits/config.js'
export type { CreditBalance, LimitState } from './limits/limit-state.js'
export type { CreditTarget } from './limits/credit-targets.js'
export {
  guardHolds,
  isUsageStore,
  type GuardedUsageOutcome,
  type GuardedUsageRequest,
  type CounterState,
  type CreditAdjustment,
  type CreditPool,
  type CreditsAdjusted,
  type CreditState,
  type RateAlgorithm,
  type RateCounter,
  type UsageOutcome,
  type UsageRequest,
  type UsageStore,
} from './limits/usage-store.js'
export { applyCreditAdjustment, applyUsage, type CounterWrite, type UsageWrites } from './limits/usage-arithmetic.js'
export { parseDuration, type Duration, type DurationUnit } from './policy/duration.js'
export { scopeGrants } from './policy/scopes.js'
export type { Pepper } from './crypto/hash.js'
export { LocalInvalidationChannel, type InvalidationChannel, type InvalidationSubscriptionEvents } from './cache.js'
export {
  createRequestVerifier,
  type AcceptedRequest,
  type ApiKeyAuthOptions,
  type RejectedRequest,
  type Rejection,
  type RejectReason,
  type RequestDecision,
  type RequestVerifier,
} from './http/request-verifier.js'
export type { RequestHeaders } from './http/credentials.js'
export { rateLimitHeaders, retryAfterSeconds, type LimitRefusal, type RateLimitHeaders } from './http/rate-limit-headers.js'
export { QUOTA_EXCEEDED_TYPE, type ProblemCode, type ProblemDetails, type RejectionResponse, type RejectionStatus } from './http/responses.js'
export {
  createManagementHandler,
  type Grantable,
  type ManagementAction,
  type ManagementDocumentOptions,
  type ManagementHandler,
  type ManagementPolicy,
  type ManagementProblem,
  type ManagementProblemCode,
  type ManagementRouterOptions,
  type NewKeyTarget,
  type Principal,
} from './http/management/index.js'
export { secretScanningHandler, secretScanningHandler as createSecretScanningHandler } from './http/secret-scanning/fetch.js'
export type { SecretScanningOptions } from './http/secret-scanning/core.js'
export type { FetchFunction, GitHubPublicKey } from './http/secret-scanning/public-keys.js'
