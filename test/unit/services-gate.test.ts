import { afterEach, describe, expect, it, vi } from 'vitest'
import { gateService } from '../support/services.js'

describe('gateService', () => {
  const ci = process.env.CI
  afterEach(() => {
    if (ci === undefined) delete process.env.CI
    else process.env.CI = ci
    vi.restoreAllMocks()
  })

  it('opens with the version when the probe answers, and says so', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined)
    expect(await gateService('Thing', async () => 'Thing 1.2')).toEqual({ available: true, version: 'Thing 1.2' })
    expect(log).toHaveBeenCalledWith('[services] Thing suites run against Thing 1.2')
  })

  it('skips visibly when the server is down outside CI', async () => {
    delete process.env.CI
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const gate = await gateService('Thing', async () => {
      throw new Error('ECONNREFUSED')
    })
    expect(gate).toEqual({ available: false, version: null })
    expect(warn.mock.calls[0]![0]).toMatch(/Thing is not reachable \(ECONNREFUSED\): its suites are SKIPPED/)
  })

  it('fails under CI instead of skipping', async () => {
    process.env.CI = 'true'
    await expect(gateService('Thing', () => new Promise(() => undefined), 50)).rejects.toThrow(/CI=true/)
  })
})
