/**
 * Encryption at rest around any LogStore: records appended to a stream the cipher seals are stored
 * sealed, data and partition key together (flagged `LogFlag.encrypted`, stored with an empty key), and every sealed record read is opened, whatever the stream's
 * setting is now. The store underneath only ever sees bytes. An unencrypted stream's appends go
 * straight through; its reads cost one flag test per record.
 */
import { LogFlag, type LogRecord, type LogRecordInput } from '../../shared/logframe.js'
import {
  batchLogInputs, streamDeleted,
  type BatchSlice, type CorruptionReport, type LogStore, type ReadOptions, type ReadResult, type RecordCipher, type ShardLog,
} from './types.js'

export class EncryptedLogStore implements LogStore {
  private readonly inner: LogStore
  private readonly cipher: RecordCipher
  private readonly wrapped = new WeakMap<ShardLog, EncryptedShardLog>()

  constructor(inner: LogStore, cipher: RecordCipher) {
    this.inner = inner
    this.cipher = cipher
  }

  private wrap(log: ShardLog, stream: string): EncryptedShardLog {
    let wrapped = this.wrapped.get(log)
    if (!wrapped) {
      wrapped = new EncryptedShardLog(log, stream, this.cipher, this.inner)
      this.wrapped.set(log, wrapped)
    }
    return wrapped
  }

  async open(stream: string, shard: string): Promise<ShardLog> {
    return this.wrap(await this.inner.open(stream, shard), stream)
  }

  get openConcurrency(): number | undefined {
    return this.inner.openConcurrency
  }

  get(stream: string, shard: string): ShardLog | undefined {
    const log = this.inner.get(stream, shard)
    return log && this.wrap(log, stream)
  }

  onAppend(listener: (log: ShardLog) => void): () => void {
    return this.inner.onAppend((log) => listener(this.wrapped.get(log) ?? log))
  }

  drop(stream: string, shard?: string): Promise<void> {
    return this.inner.drop(stream, shard)
  }
  commit(): Promise<void> {
    return this.inner.commit()
  }
  enforceRetention(retentionMsByStream: (stream: string) => number, now?: number): Promise<number> {
    return this.inner.enforceRetention(retentionMsByStream, now)
  }
  totalBytes(): number {
    return this.inner.totalBytes()
  }
  corruptions(): readonly CorruptionReport[] {
    return this.inner.corruptions()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
  get failed(): Error | null {
    return this.inner.failed
  }
  resume(): Promise<boolean> {
    return this.inner.resume?.() ?? Promise.resolve(false)
  }
  checkWritable(): void {
    this.inner.checkWritable()
  }
}

class EncryptedShardLog implements ShardLog {
  private readonly log: ShardLog
  private readonly stream: string
  private readonly cipher: RecordCipher
  private readonly store: Pick<LogStore, 'checkWritable'>

  constructor(log: ShardLog, stream: string, cipher: RecordCipher, store: Pick<LogStore, 'checkWritable'>) {
    this.log = log
    this.stream = stream
    this.cipher = cipher
    this.store = store
  }

  get key(): string { return this.log.key }
  get dropped(): boolean { return this.log.dropped }
  startOffset(): number { return this.log.startOffset() }
  endOffset(): number { return this.log.endOffset() }
  lastArrivalMs(): number { return this.log.lastArrivalMs() }
  sizeBytes(): number { return this.log.sizeBytes() }
  pendingRecords(): number { return this.log.pendingRecords() }
  nextOffset(): number { return this.log.nextOffset() }
  async refresh(): Promise<void> { await this.log.refresh?.() }
  forget(): void { this.log.forget?.() }
  offsetAtTime(ms: number): Promise<number> { return this.log.offsetAtTime(ms) }

  append(records: readonly LogRecordInput[]): { firstOffset: number; arrivalMs: number } {
    if (!this.cipher.seals(this.stream)) return this.log.append(records)
    // Refused before any record is sealed, as an unencrypted append would be.
    if (this.log.dropped) throw streamDeleted(this.stream)
    this.store.checkWritable()
    return this.log.append(this.seal(records))
  }

  appendBatch(slice: BatchSlice): { firstOffset: number; arrivalMs: number } {
    // A sealed stream stores different bytes per record: that goes through the general path.
    if (this.cipher.seals(this.stream)) return this.append(batchLogInputs(slice))
    return this.log.appendBatch(slice)
  }

  /** Records as they are stored: sealed when the cipher seals the stream's records now. */
  private seal(records: readonly LogRecordInput[]): readonly LogRecordInput[] {
    const out = new Array<LogRecordInput>(records.length)
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const sealed = this.cipher.seal(this.stream, r.data, r.partitionKey)
      if (sealed === null) return records
      out[i] = { ...r, partitionKey: '', data: sealed, flags: r.flags | LogFlag.encrypted }
    }
    return out
  }

  /** A record as readers see it: opened (data, and the partition key when that was sealed too) when it was stored sealed. Keeps the flag, so readers can tell. */
  private open(record: LogRecord): LogRecord {
    const { partitionKey, data } = this.cipher.openRecord(this.stream, record.data)
    record.data = data
    if (partitionKey !== null) record.partitionKey = partitionKey
    return record
  }

  /**
   * The byte limit counts records as readers see them, opened: a sealed record is larger on disk, so
   * when the store stopped at the limit early, reading goes on from where it stopped.
   */
  async read(fromOffset: number, maxRecords: number, maxBytes: number, options?: ReadOptions): Promise<ReadResult> {
    const first = await this.log.read(fromOffset, maxRecords, maxBytes, options)
    if (!first.records.some(isSealed)) return first
    const records: LogRecord[] = []
    let bytes = 0
    let page = first
    for (;;) {
      for (const record of page.records) {
        if (isSealed(record)) this.open(record)
        const size = record.data.length + Buffer.byteLength(record.partitionKey)
        if (records.length > 0 && bytes + size > maxBytes) return { records, nextOffset: record.offset }
        records.push(record)
        bytes += size
      }
      if (page.records.length === 0 || records.length >= maxRecords || bytes >= maxBytes) return { records, nextOffset: page.nextOffset }
      page = await this.log.read(page.nextOffset, maxRecords - records.length, maxBytes - bytes, options)
    }
  }
}

const isSealed = (record: LogRecord) => (record.flags & LogFlag.encrypted) !== 0

