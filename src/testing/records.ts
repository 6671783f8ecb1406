/**
 * Hand-built records for the conformance suite: complete, plain objects at fixed instants, so every case
 * states only the fields it is about and never reads the clock.
 */
import type { StoredKey } from '../store.js'

/** A fixed instant (2023-11-14T22:13:20.000Z) every conformance test measures from; no wall clock. */
export const T0 = 1_700_000_000_000

/** A {@link StoredKey} whose fields can be changed, for building inputs and trying to mutate outputs. */
export type MutableStoredKey = { -readonly [K in keyof StoredKey]: StoredKey[K] }

/**
 * A complete, plain (unfrozen, freshly allocated) record: an active key that never expires, owned by
 * nobody, created at {@link T0}, version 1. `overrides` replaces any field and is copied, not shared.
 */
export function makeRecord(overrides: Partial<StoredKey> = {}): MutableStoredKey {
  return {
    id: 'key0001',
    name: 'test key',
    description: null,
    ownerId: null,
    tenantId: null,
    environment: 'live',
    type: null,
    scopes: [],
    roles: [],
    groups: [],
    metadata: {},
    start: 'Ab3d',
    hash: 'hmac-sha256$v1$00000000000000000000000000000000',
    previousHash: null,
    previousHashExpiresAt: null,
    createdAt: T0,
    updatedAt: T0,
    expiresAt: null,
    lastUsedAt: null,
    enabled: true,
    revokedAt: null,
    expiryNoticeFor: null,
    version: 1,
    policy: null,
    hasCredits: false,
    createdBy: null,
    updatedBy: null,
    disabledReason: null,
    disabledBy: null,
    ...structuredClone(overrides),
  }
}

/** Every field away from its default: unicode, nested JSON of every type, millisecond instants. */
const RICH_FIELDS: Partial<StoredKey> = {
  id: 'rich0001',
  name: 'Déploiement CI ✓ "quoted" \\ back\nslash',
  description: 'used by the nightly build — 日本語 🔑',
  ownerId: 'owner-ü',
  tenantId: 'tenant-1',
  environment: 'test',
  type: 'service',
  scopes: ['data:read', 'data:write', 'admin:*'],
  roles: ['readonly', 'billing'],
  groups: ['ops'],
  metadata: {
    label: 'héllo wörld 👋',
    empty: '',
    zero: 0,
    negative: -42,
    fraction: 1.5,
    large: Number.MAX_SAFE_INTEGER,
    yes: true,
    no: false,
    nothing: null,
    list: [1, 'two', null, false, { deep: ['x'] }],
    emptyList: [],
    emptyObject: {},
    nested: { level2: { level3: { emoji: '🚀', n: 123_456_789_012 } } },
  },
  start: 'Xy9Z',
  hash: 'hmac-sha256$v2$ffeeddccbbaa99887766554433221100',
  previousHash: 'hmac-sha256$v1$00112233445566778899aabbccddeeff',
  previousHashExpiresAt: 1_700_086_400_999,
  createdAt: 1_700_000_000_123,
  updatedAt: 1_700_000_000_456,
  expiresAt: 1_731_536_000_001,
  lastUsedAt: 1_700_000_000_789,
  enabled: false,
  revokedAt: 1_700_000_001_999,
  expiryNoticeFor: 1_731_536_000_001,
  version: 7,
  policy: 'pro-2026.v2',
  hasCredits: true,
  createdBy: { type: 'user', id: 'admin-7 — 管理者', tenantId: 'tenant-1' },
  updatedBy: { type: 'service', id: 'provisioner' },
  disabledReason: 'Leaked in a public gist — "oops"\ttab',
  disabledBy: { type: 'key', id: 'Ab3dEf6hIj9kLm2n' },
}

/** A record with every field set to a non-default value; `overrides` replaces any field. */
export function makeRichRecord(overrides: Partial<StoredKey> = {}): MutableStoredKey {
  return makeRecord({ ...RICH_FIELDS, ...overrides })
}
