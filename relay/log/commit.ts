/**
 * Group commit: appends wait in memory, and one flush per dirty shard log makes everything appended
 * before a `commit()` call durable at once (one fsync covers every batch that arrived meanwhile).
 * A failed flush fails the store: what is on disk stays the truth, and a restart recovers from it.
 */
import { ErrorCode, StorageError } from '../../shared/errors.js'

/** A shard log whose appends wait for the next group commit. */
export interface Flushable {
  pendingRecords(): number
  /** Makes what is pending durable and visible to readers. */
  flush(): Promise<void>
  /** Forgets what is pending: after a failed commit nothing half-known may be served. */
  discardPending(): void
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Whether a store failed for want of space (a full file system or quota) while writing, which it
 * can come back from once there is room again. Not a failed sync, whatever its code: after one,
 * Linux may have dropped dirty pages and will not say so again.
 */
export function isSpaceError(err: Error | null): boolean {
  const e = err as NodeJS.ErrnoException | null
  if (!e || (e.code !== 'ENOSPC' && e.code !== 'EDQUOT')) return false
  return e.syscall !== 'fsync' && e.syscall !== 'fdatasync' && e.syscall !== 'syncfs'
}

/** Each log flushes itself; every flush settles before the outcome is known, so none may still be writing when a run ends. */
export async function flushEach(logs: readonly Flushable[]): Promise<void> {
  const outcomes = await Promise.allSettled(logs.map((log) => log.flush()))
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
  if (failure) throw failure.reason
}

export class GroupCommit {
  /** Set by the first failed flush; from then on nothing is accepted. */
  failed: Error | null = null
  private readonly delayMs: number
  private readonly onCommit?: (records: number, ms: number) => void
  private readonly flushAll: (logs: Flushable[]) => Promise<void>
  private dirty = new Set<Flushable>()
  private waiting: Waiter[] = []
  private running = false
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null

  /**
   * `delayMs` 0 commits on the next turn of the event loop; `onCommit` hears each commit's records
   * and duration; `flushAll` makes the dirty logs' appends durable together (by default each log
   * flushes itself), and settles every log's part before it rejects.
   */
  constructor(delayMs: number, onCommit?: (records: number, ms: number) => void, flushAll: (logs: Flushable[]) => Promise<void> = flushEach) {
    this.delayMs = delayMs
    this.onCommit = onCommit
    this.flushAll = flushAll
  }

  /** `log` has pending appends: the next commit flushes it. */
  enqueue(log: Flushable): void {
    this.dirty.add(log)
  }

  /** `log` is going away (its pending appends are discarded by its owner). */
  forget(log: Flushable): void {
    this.dirty.delete(log)
  }

  /** Throws a StorageError when appends cannot be accepted. */
  checkWritable(): void {
    if (this.failed) throw new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${this.failed.message}`, { cause: this.failed })
  }

  /** Resolves once every record appended before the call is durable. */
  commit(): Promise<void> {
    if (this.failed) return Promise.reject(new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${this.failed.message}`))
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      this.schedule()
    })
  }

  /** Takes commits again after a failure the store has recovered from (its `resume`). */
  resume(): void {
    this.failed = null
    if (this.waiting.length) this.schedule()
  }

  /** Resolves when no flush is writing (files may be closed then). */
  async idle(): Promise<void> {
    while (this.running) await turn()
  }

  /** Flushes what is pending (unless the store failed) and stops the timer. */
  async close(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout)
      clearImmediate(this.timer as NodeJS.Immediate)
      this.timer = null
    }
    await this.idle()
    if ((this.dirty.size || this.waiting.length) && !this.failed) await this.run()
    await this.idle()
  }

  private schedule(): void {
    if (this.running || this.timer) return
    const run = () => { this.timer = null; void this.run() }
    this.timer = this.delayMs > 0 ? setTimeout(run, this.delayMs) : setImmediate(run)
  }

  private async run(): Promise<void> {
    this.running = true
    const waiters = this.waiting
    this.waiting = []
    const logs = [...this.dirty]
    this.dirty.clear()
    const started = performance.now()
    let records = 0
    for (const log of logs) records += log.pendingRecords()
    try {
      await this.flushAll(logs)
      if (records) this.onCommit?.(records, performance.now() - started)
      for (const w of waiters) w.resolve()
    } catch (err) {
      this.failed = err as Error
      // Every log with pending appends is in this run or was enqueued while it ran.
      for (const log of [...logs, ...this.dirty]) log.discardPending()
      this.dirty.clear()
      const error = new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${(err as Error).message}`, { cause: err })
      for (const w of [...waiters, ...this.waiting]) w.reject(error)
      this.waiting = []
    } finally {
      this.running = false
      if (this.waiting.length) this.schedule()
    }
  }
}
