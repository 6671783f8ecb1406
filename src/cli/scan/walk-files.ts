/**
 * The files a scan reads: each path given, and every regular file under each directory given, in name
 * order, skipping excluded names (`.git` and `node_modules` by default) and the symbolic links met on
 * the way (a link to a directory could loop; what a link points to is scanned where it lives).
 */
import type { Dirent } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'

/** Directory and file names a scan skips unless told otherwise. */
export const DEFAULT_EXCLUDES: readonly string[] = ['.git', 'node_modules']

/** A file to scan, or a path that could not be read. */
export type WalkEntry =
  | { readonly path: string; readonly absolute: string }
  | { readonly path: string; readonly error: string }

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' ? code : 'unreadable'
}

async function* walkDirectory(path: string, absolute: string, exclude: ReadonlySet<string>): AsyncGenerator<WalkEntry> {
  let entries: Dirent[]
  try {
    entries = await readdir(absolute, { withFileTypes: true })
  } catch (error) {
    yield { path, error: errorCode(error) }
    return
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    if (exclude.has(entry.name)) continue
    const child = join(path, entry.name)
    if (entry.isDirectory()) yield* walkDirectory(child, join(absolute, entry.name), exclude)
    else if (entry.isFile()) yield { path: child, absolute: join(absolute, entry.name) }
  }
}

/**
 * Every file under `paths` (relative to `cwd`), as `path` (for messages, as given) and `absolute`.
 * A path given by name is scanned even if its name is excluded: only what a walk meets is skipped.
 */
export async function* walkFiles(paths: readonly string[], cwd: string, exclude: ReadonlySet<string>): AsyncGenerator<WalkEntry> {
  for (const path of paths) {
    const absolute = resolve(cwd, path)
    let kind: 'file' | 'directory' | 'other'
    try {
      const stats = await stat(absolute)
      kind = stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other'
    } catch (error) {
      yield { path, error: errorCode(error) }
      continue
    }
    if (kind === 'file') yield { path, absolute }
    else if (kind === 'directory') yield* walkDirectory(path, absolute, exclude)
    else yield { path, error: 'not a file or directory' }
  }
}
