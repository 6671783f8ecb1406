/**
 * Keeps V8's fast path for string methods, which token parsing and digest comparison run on every verify.
 *
 * V8 (Node 20) turns `String.prototype` into a slow, dictionary-mode object as soon as an object is
 * created with it as prototype, and a string primitive's method calls never turn it back. ioredis does
 * this when it loads (`class VerbatimString extends String`); from then on every `charCodeAt`,
 * `startsWith` or `slice` on a string, in keywarden and in the rest of the process, is a dictionary
 * lookup rather than an inlined builtin: about 15 ns instead of 2 for `charCodeAt`, so a verify's ~190
 * of them cost microseconds. Property reads on an object whose prototype it is make V8 turn a
 * prototype fast again, and once it is, later `extends String` classes leave it fast. Nothing
 * observable changes: no property is added, changed or removed.
 */

let done = false

/** Reads a property through `probe`'s prototype: the kind of read that makes V8 optimize that prototype. */
function readThrough(probe: { readonly charCodeAt: unknown }): boolean {
  return typeof probe.charCodeAt === 'function'
}

/** Makes `String.prototype` a fast-mode object again, once per process (it then stays fast). */
export function keepStringMethodsFast(): void {
  if (done) return
  done = true
  const probe = Object.create(String.prototype) as { readonly charCodeAt: unknown }
  // A few reads, so the read's inline cache leaves its first states (which do not optimize the holder).
  for (let i = 0; i < 16; i++) readThrough(probe)
}
