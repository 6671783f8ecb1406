/**
 * Loading an optional database driver for a store's `connect`/`open` helper, with a ConfigError that says what to install.
 */

import { ConfigError } from '../src/errors.js'

/** Loads a module by name (swappable in tests). */
export type Importer = (specifier: string) => Promise<unknown>

const nativeImport: Importer = (specifier) => import(specifier)

function isModuleNotFound(error: unknown, packageName: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String(message).includes(packageName)
}

/**
 * Imports an optional driver for a store's `connect` helper. A missing driver becomes a
 * {@link ConfigError} that says exactly what to install; any other failure is passed on.
 */
export async function importDriver(specifier: string, packageName: string, storeName: string, importer: Importer = nativeImport): Promise<unknown> {
  try {
    const loaded = (await importer(specifier)) as { default?: unknown }
    // CommonJS drivers arrive as { default: module.exports } through import().
    return loaded.default ?? loaded
  } catch (error) {
    if (!isModuleNotFound(error, packageName)) throw error
    throw new ConfigError([{ path: ['driver'], message: `${storeName} needs the '${packageName}' package: run npm install ${packageName}` }], { cause: error })
  }
}
