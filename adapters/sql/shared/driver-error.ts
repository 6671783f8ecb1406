/**
 * Reading a driver's error without trusting its shape: the dialects tell unique violations and
 * deadlocks apart by a code field that each driver names differently.
 */

/** A property of a driver error (`code`, `errno`), or `undefined`. */
export function errorProperty(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[name] : undefined
}
