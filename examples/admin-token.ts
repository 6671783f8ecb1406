/**
 * The host application's own admin credential for the example's management routes (not an API key):
 * taken from ADMIN_TOKEN or made up per run, and checked in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * The shortest ADMIN_TOKEN the servers accept: anything shorter (or empty) is within reach of guessing.
 * A made-up token has 24 characters (18 random bytes, base64url).
 */
export const MIN_ADMIN_TOKEN_LENGTH = 16

// Visible ASCII only: a header value loses surrounding spaces and is read as Latin-1, so a token with
// spaces or other characters could never match what a client sends.
const ADMIN_TOKEN_FORMAT = new RegExp(`^[\\x21-\\x7e]{${MIN_ADMIN_TOKEN_LENGTH},}$`)

/** Where the admin token came from: the banner prints a made-up one, never one set by the operator. */
export const adminTokenSource: 'ADMIN_TOKEN' | 'generated' = process.env.ADMIN_TOKEN === undefined ? 'generated' : 'ADMIN_TOKEN'

/** The admin token. A set but empty or too short ADMIN_TOKEN stops the process before it listens. */
export const adminToken = readAdminToken(process.env.ADMIN_TOKEN)

function readAdminToken(configured: string | undefined): string {
  if (configured === undefined) return randomBytes(18).toString('base64url')
  if (ADMIN_TOKEN_FORMAT.test(configured)) return configured
  // Refusing to start beats guarding the admin routes with an empty or guessable token. The message
  // names the rule, never the value.
  process.stderr.write(
    `Refusing to start: ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} visible ASCII characters without spaces ` +
      `(it is empty or does not qualify). Leave it unset to get a random admin token for this run.\n`,
  )
  process.exit(1)
}

const digestOf = (text: string): Buffer => createHash('sha256').update(text, 'latin1').digest()
const expectedDigest = digestOf(adminToken)

/**
 * The host's admin check for the management routes: is X-Admin-Token the admin token? A missing or
 * empty header is never a match; digests of equal length keep the comparison constant-time.
 */
export function isAdmin(req: IncomingMessage): boolean {
  const presented = req.headers['x-admin-token']
  if (typeof presented !== 'string' || presented === '') return false
  return timingSafeEqual(digestOf(presented), expectedDigest)
}

/**
 * Who the management router acts for when the admin token is presented: an admin of the keys without
 * a tenant (the demo keys have none). A real app returns its signed-in user instead.
 */
export const ADMIN_PRINCIPAL = Object.freeze({ id: 'operator', tenantId: null, role: 'admin' })
