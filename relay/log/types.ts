import { BatchView, type BatchScan } from '../../hardware/index.js'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { LogFlag, type LogRecord, type LogRecordInput } from '../../shared/logframe.js'

/** What a damaged region looked like, for reports and /metrics. */
export interface CorruptionReport {
  shard: string
  file: string
  position: number
  /** Log offsets that can no longer be served (first..last inclusive), when known. */
  firstOffset: number
  lastOffset: number
  detectedAt: number
}

export interface ReadResult {
  records: LogRecord[]
  /** The offset to read from next time. */
  nextOffset: number
}

/**
 * Seals record data at rest for the streams that ask for it (StartStreamEncryption). The encrypting
 * wrapper (`encrypted.ts`) calls `seal` as records are appended and `open` on every record it reads
 * whose flags say it is sealed.
 */
export interface RecordCipher {
  /** True when records appended to `stream` now are sealed. */
  seals(stream: string): boolean
  /**
   * The bytes to store for `data` appended to `stream` now; null when the stream is not encrypted.
   * Given `partitionKey`, that is sealed with the data (and the record is stored with an empty key).
   */
  seal(stream: string, data: Uint8Array, partitionKey?: string): Uint8Array | null
  /** The original data of a sealed record; throws a TributaryError when it cannot be opened. */
  open(stream: string, sealed: Buffer): Buffer
  /** The original data and, when it was sealed with them, the partition key (else null) of a sealed record. */
  openRecord(stream: string, sealed: Buffer): { partitionKey: string | null; data: Buffer }
}

/** Some records of one device batch frame, as ingest hands them to a shard. */
export interface BatchSlice {
  frame: Buffer
  scan: BatchScan
  /** Indexes of the batch's records that go to this shard, ascending. */
  indices: Uint32Array
  device: string
}

/**
 * One shard's ordered, retained record log. Offsets are dense from `startOffset` (the oldest record
 * still retained) to `endOffset` (exclusive); readers only ever see committed records. `key` is
 * `<stream>/<shard>`. The records a read returns are the caller's to change.
 */
export interface ShardLog {
  readonly key: string
  /** Oldest offset still retained. */
  startOffset(): number
  /** One past the last committed record. */
  endOffset(): number
  /** Arrival time of the newest committed record, or 0 when empty. */
  lastArrivalMs(): number
  /** Buffers records for the next group commit; returns the offset of the first and its arrival time. */
  append(records: readonly LogRecordInput[]): { firstOffset: number; arrivalMs: number }
  /**
   * The same for records of a scanned device batch, encoded straight from the frame with no object
   * per record (the MQTT ingest path). Stores exactly what `append(batchLogInputs(slice))` would.
   */
  appendBatch(slice: BatchSlice): { firstOffset: number; arrivalMs: number }
  /**
   * Committed records from `fromOffset` (or the oldest retained one) on, at most `maxRecords`, and no
   * more than `maxBytes` of data and partition keys, except that the first record always comes.
   */
  read(fromOffset: number, maxRecords: number, maxBytes: number, options?: ReadOptions): Promise<ReadResult>
  /** The first offset whose arrival time is ≥ `ms` (endOffset when none is). */
  offsetAtTime(ms: number): Promise<number>
  /** Bytes of its committed records as stored (framed as on disk). */
  sizeBytes(): number
  /** True once the stream has been deleted; appends are refused and pending ones discarded. */
  readonly dropped: boolean
  /** Records appended but not yet committed. */
  pendingRecords(): number
  /** The offset the next appended record will get (committed and pending records come before it). */
  nextOffset(): number
  /**
   * Reads the log's end again from where it is kept, for a log other processes write (a cluster's
   * shared log, before this relay starts writing it). Absent where only this process writes.
   */
  refresh?(): Promise<void>
  /**
   * Forgets the records this relay keeps in memory (a cluster's shared log, when the stream's
   * writer changes): later reads take them from where the log is kept. Absent where there is no such copy.
   */
  forget?(): void
}

/**
 * The set of shard logs on one relay, with group commit: `commit()` resolves once every record
 * appended before the call is durable.
 */
export interface LogStore {
  open(stream: string, shard: string): Promise<ShardLog>
  /**
   * How many shard logs a caller may open at once (a stream loading thousands of shards at start).
   * Unset: one at a time, as a store whose open creates shared state (the cluster's JetStream stream
   * per shard) needs, so that relays loading the same stream do not race to create it.
   */
  readonly openConcurrency?: number
  get(stream: string, shard: string): ShardLog | undefined
  /** Removes a stream's logs, or only one shard's (a closed shard whose records are all past retention). */
  drop(stream: string, shard?: string): Promise<void>
  commit(): Promise<void>
  /** Deletes whole sealed segments (never a shard's newest) past retention or over the size caps; returns bytes freed. */
  enforceRetention(retentionMsByStream: (stream: string) => number, now?: number): Promise<number>
  totalBytes(): number
  corruptions(): readonly CorruptionReport[]
  close(): Promise<void>
  readonly failed: Error | null
  /**
   * Comes back from a failure for want of space once there is room again (nothing a failed commit
   * wrote is kept); true when writable. Absent, or false, where only a restart recovers.
   */
  resume?(): Promise<boolean>
  /** Throws a StorageError when appends cannot be accepted. */
  checkWritable(): void
  /** Calls back whenever records of a shard become committed (readers waiting for new data). */
  onAppend(listener: (log: ShardLog) => void): () => void
}

/** What appending to, or reading from, the log of a deleted stream gets. */
export function streamDeleted(stream: string): TributaryError {
  return new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${stream} was deleted`)
}

export interface ReadOptions {
  /**
   * The records' data may be views into the store's read buffers (which are never written again)
   * instead of copies of their own: for a caller that drops the records soon (GetRecords renders its
   * page at once), so no record is copied only to be thrown away. A view keeps its whole read chunk
   * (up to 1 MiB) alive as long as it lives, so a caller that keeps records asks for copies.
   */
  views?: boolean
}

/** A batch slice as ordinary log inputs: what `appendBatch` must store, for stores without a faster way. */
export function batchLogInputs(slice: BatchSlice): LogRecordInput[] {
  const { scan, indices, device } = slice
  const view = new BatchView(slice.frame, scan)
  const out = new Array<LogRecordInput>(indices.length)
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j]!
    out[j] = {
      partitionKey: view.partitionKey(i),
      data: view.data(i),
      producerTimeMs: view.producerTimeMs(i),
      flags: (view.flags(i) & (LogFlag.clockSynced | LogFlag.explicitHashKey)) | LogFlag.fromDevice,
      device, epoch: scan.epoch, batchSequence: scan.sequence, batchIndex: i,
    }
  }
  return out
}
