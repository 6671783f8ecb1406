/** Reading the replay and tuning variables of the property-based suites. */

/** The integer in environment variable `name`, or `undefined` when it is unset or empty; anything else throws. */
export function optionalInteger(name: string): number | undefined {
  const text = process.env[name]
  if (text === undefined || text === '') return undefined
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`)
  return value
}
