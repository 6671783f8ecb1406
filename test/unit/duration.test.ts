import { describe, expect, it } from 'vitest'
import { parseDuration } from '../../src/index.js'

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [1500, 1500],
    ['250ms', 250],
    ['90s', 90_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['30d', 2_592_000_000],
    ['2w', 1_209_600_000],
  ] as const)('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each([[-1], [1.5], [Number.NaN], [Infinity], ['1.5h'], ['-1d'], ['1 d'], ['1D'], ['d'], [''], ['10y'], ['99999999999w'], [null], [{}]])(
    'rejects %j',
    (input) => {
      expect(parseDuration(input)).toBeUndefined()
    },
  )
})
