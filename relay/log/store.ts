/**
 * What every store of shard logs shares, whatever holds the bytes: the open logs by stream and shard,
 * the group commit, retention, the running byte total, corruption reports and append listeners. A
 * concrete store says only how one shard's log is opened and how a stream's data is removed.
 */
import { codec as defaultCodec, type Codec } from '../../hardware/index.js'
import { flushEach, GroupCommit, isSpaceError, type Flushable } from './commit.js'
import type { ShardLogHost } from './host.js'
import { enforceRetention, type TrimmableLog } from './retention.js'
import type { CorruptionReport, LogStore, ShardLog } from './types.js'

/** What the store needs of its shard logs beyond the ShardLog interface. */
export interface StoredLog extends ShardLog, Flushable, TrimmableLog {
  readonly stream: string
  dropped: boolean
  close(): Promise<void>
}

export interface LogStoreOptions {
  /** A segment is sealed, and a new one started, once it holds this many bytes. */
  segmentBytes?: number
  /** How long a commit waits for more appends to join it (0: the next turn of the event loop). */
  groupCommitMs?: number
  /** Per-stream byte cap enforced by retention (0: none). */
  maxStreamBytes?: number
  codec?: Codec
  /** Called once for each damaged region found. */
  onCorruption?: (report: CorruptionReport) => void
  /** Injectable clock (ms). */
  now?: () => number
  /** Called after each group commit with the records it made durable and how long it took. */
  onCommit?: (records: number, ms: number) => void
}

export abstract class ShardLogStore<L extends StoredLog> implements LogStore {
  protected readonly codec: Codec
  protected readonly segmentBytes: number
  private readonly maxStreamBytes: number
  private readonly onCorruption?: (report: CorruptionReport) => void
  readonly now: () => number
  private readonly commits: GroupCommit
  /** All a shard log may ask of its store. */
  protected readonly host: ShardLogHost
  private readonly logs = new Map<string, L>()
  private readonly opening = new Map<string, Promise<L>>()
  private readonly reports: CorruptionReport[] = []
  private readonly appendListeners = new Set<(log: ShardLog) => void>()
  /** Bytes of committed records in every open shard log (kept up to date, not recomputed). */
  private total = 0

  constructor(options: LogStoreOptions) {
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024
    this.maxStreamBytes = options.maxStreamBytes ?? 0
    this.codec = options.codec ?? defaultCodec
    this.onCorruption = options.onCorruption
    this.now = options.now ?? Date.now
    const commits = this.commits = new GroupCommit(options.groupCommitMs ?? 0, options.onCommit, (logs) => this.flushLogs(logs as L[]))
    this.host = {
      now: this.now,
      checkWritable: () => commits.checkWritable(),
      enqueue: (log) => commits.enqueue(log),
      committed: (log, bytes) => {
        this.total += bytes
        for (const l of this.appendListeners) l(log)
      },
      freed: (bytes) => { this.total -= bytes },
      corrupted: (report) => {
        this.reports.push(report)
        this.onCorruption?.(report)
      },
    }
  }

  /** Makes the dirty logs' appends durable (one group commit); each log flushes itself unless a store does better. */
  protected flushLogs(logs: L[]): Promise<void> {
    return flushEach(logs)
  }

  /** Makes durable what a store keeps beside its logs (a journal), before logs close or their data is removed. */
  protected async settle(): Promise<void> {}

  /**
   * Puts the open logs (and what the store keeps beside them) back as they were at the last commit
   * that succeeded, for `resume`; false when that cannot be done safely here. By default: cannot.
   */
  protected async recover(_logs: L[]): Promise<boolean> {
    return false
  }

  /** Opens the log of one shard, creating it when new. */
  protected abstract openLog(stream: string, shard: string): Promise<L>
  /** Removes the data of a stream's logs, or of one shard's, once they are closed. */
  protected abstract removeData(stream: string, shard?: string): Promise<void>

  private keyOf(stream: string, shard: string): string {
    return `${stream}/${shard}`
  }

  async open(stream: string, shard: string): Promise<L> {
    const key = this.keyOf(stream, shard)
    const existing = this.logs.get(key)
    if (existing) return existing
    let pending = this.opening.get(key)
    if (!pending) {
      pending = (async () => {
        const log = await this.openLog(stream, shard)
        this.total += log.sizeBytes()
        this.logs.set(key, log)
        return log
      })()
      this.opening.set(key, pending)
      pending.finally(() => this.opening.delete(key)).catch(() => {})
    }
    return pending
  }

  get(stream: string, shard: string): L | undefined {
    return this.logs.get(this.keyOf(stream, shard))
  }

  async drop(stream: string, shard?: string): Promise<void> {
    const doomed = [...this.logs].filter(([key, log]) => log.stream === stream && (shard === undefined || key === this.keyOf(stream, shard)))
    for (const [key, log] of doomed) {
      this.total -= log.sizeBytes()
      log.dropped = true
      this.commits.forget(log)
      log.discardPending()
      this.logs.delete(key)
    }
    // A commit already writing to these logs finishes before they are closed.
    await this.commits.idle()
    await this.settle()
    for (const [, log] of doomed) await log.close()
    await this.removeData(stream, shard)
  }

  onAppend(listener: (log: ShardLog) => void): () => void {
    this.appendListeners.add(listener)
    return () => this.appendListeners.delete(listener)
  }

  get failed(): Error | null {
    return this.commits.failed
  }

  checkWritable(): void {
    this.commits.checkWritable()
  }

  /**
   * After a failure for want of space (`isSpaceError`), once there is room again: every log is put
   * back as it was at the last commit that succeeded (nothing a failed commit wrote is left, in memory
   * or in the files) and commits are taken again. True when the store is writable; false, changing
   * nothing that matters, when it failed otherwise or cannot recover here (a restart then does).
   */
  async resume(): Promise<boolean> {
    const failed = this.commits.failed
    if (!failed) return true
    if (!isSpaceError(failed)) return false
    await this.commits.idle()
    if (!(await this.recover([...this.logs.values()]).catch(() => false))) return false
    this.commits.resume()
    return true
  }

  commit(): Promise<void> {
    return this.commits.commit()
  }

  corruptions(): readonly CorruptionReport[] {
    return this.reports
  }

  totalBytes(): number {
    return this.total
  }

  enforceRetention(retentionMsByStream: (stream: string) => number, now = this.now()): Promise<number> {
    return enforceRetention(this.logs.values(), retentionMsByStream, now, this.maxStreamBytes)
  }

  async close(): Promise<void> {
    await this.commits.close()
    try {
      await this.settle()
    } finally {
      for (const log of this.logs.values()) await log.close()
      this.logs.clear()
    }
  }
}
