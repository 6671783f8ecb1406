/**
 * Running a transaction body (TransactionSteps) on a connection, asynchronously or synchronously, and
 * keeping one shared connection to one operation at a time.
 */
import type { SqlResult, SqlStatement, TransactionSteps } from './seams.js'

/** Runs `steps` awaiting each statement. */
export async function runSteps<T>(steps: TransactionSteps<T>, execute: (statement: SqlStatement) => Promise<SqlResult>): Promise<T> {
  let step = steps.next()
  while (!step.done) step = steps.next(await execute(step.value))
  return step.value
}

/** Runs `steps` synchronously. */
export function runStepsSync<T>(steps: TransactionSteps<T>, execute: (statement: SqlStatement) => SqlResult): T {
  let step = steps.next()
  while (!step.done) step = steps.next(execute(step.value))
  return step.value
}

/** One connection, as {@link transact} drives it. */
export interface TransactionConnection {
  begin(): Promise<unknown>
  commit(): Promise<unknown>
  rollback(): Promise<unknown>
  execute(statement: SqlStatement): Promise<SqlResult>
}

/**
 * Runs `steps` between BEGIN and COMMIT on one connection; on error rolls back and rethrows the
 * original error. Calls `onBroken` when even the rollback failed: the connection's state is then
 * unknown, and a pooled one must be discarded rather than handed to the next caller.
 */
export async function transact<T>(connection: TransactionConnection, steps: TransactionSteps<T>, onBroken: () => void = () => {}): Promise<T> {
  try {
    await connection.begin()
    const result = await runSteps(steps, (statement) => connection.execute(statement))
    await connection.commit()
    return result
  } catch (error) {
    await connection.rollback().catch(onBroken)
    throw error
  }
}

/**
 * Runs tasks one at a time, in call order. Used when the client passed in is a single connection:
 * a transaction must not share it with other statements.
 */
export function serialized(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return (task) => {
    const result = tail.then(task)
    tail = result.catch(() => undefined)
    return result
  }
}
