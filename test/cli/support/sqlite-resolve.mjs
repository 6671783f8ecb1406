// The resolve hook registered by sqlite-driver.mjs.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

let target

export function initialize(data) {
  target = data ? pathToFileURL(createRequire(import.meta.url).resolve(data)).href : undefined
}

export async function resolve(specifier, context, next) {
  if (target !== undefined && specifier === 'better-sqlite3') return { url: target, format: 'commonjs', shortCircuit: true }
  return next(specifier, context)
}
