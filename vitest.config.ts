import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'] },
    // The run-wide leak canary (test/support/canary): every secret issued is looked for, at the end of
    // the run, in every log line, event, error, HTTP response and store write or dump.
    globalSetup: ['test/support/canary/global.ts'],
    setupFiles: ['test/support/canary/setup.ts'],
  },
})
