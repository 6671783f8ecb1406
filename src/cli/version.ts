/**
 * The package's version, for `keywarden --version` and the help: read from package.json at build time
 * (the bundler inlines the file), so the bin needs nothing beside itself to answer.
 */
import manifest from '../../package.json' with { type: 'json' }

/** The version in package.json, e.g. `0.2.0`. */
export const VERSION: string = manifest.version
