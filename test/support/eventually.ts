/** Polling with a deadline, for what another process or server makes true: never a fixed sleep. */

/** Polls `check` until it passes or `timeoutMs` is over (then its last failure is thrown). */
export async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (performance.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}
