/**
 * What a store hands each of its shard logs: the only way a log reaches back to the store that holds
 * it, so the store depends on its logs and never the other way round.
 */
import type { Flushable } from './commit.js'
import type { CorruptionReport, ShardLog } from './types.js'

/** Functions, not methods: a log may hand them on (to the recovery walk) without binding them. */
export interface ShardLogHost {
  /** The store's clock (ms): arrival times and reports. */
  readonly now: () => number
  /** Throws a StorageError when the store accepts no appends. */
  readonly checkWritable: () => void
  /** `log` has pending appends for the next group commit. */
  readonly enqueue: (log: Flushable) => void
  /** Records of `log` became committed, `bytes` of them. */
  readonly committed: (log: ShardLog, bytes: number) => void
  /** Retention removed `bytes` of a log's records. */
  readonly freed: (bytes: number) => void
  /** A damaged region was found. */
  readonly corrupted: (report: CorruptionReport) => void
}
