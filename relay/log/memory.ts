/**
 * The in-memory LogStore: the file store's semantics (dense offsets, group commit, committed-only
 * reads, retention and size caps on whole segments, never a shard's newest) with records kept as
 * objects in segments that count the bytes the records would take on disk. A `MemoryVolume` plays
 * the disk: a store opened again over the same volume finds what was committed, and nothing else.
 */
import type { Codec } from '../../hardware/index.js'
import type { LogRecord, LogRecordInput } from '../../shared/logframe.js'
import type { ShardLogHost } from './host.js'
import { oldestSealed, segmentIndex, takeExpired, totalSize, type SegmentSpan } from './segment-list.js'
import { ShardLogStore, type LogStoreOptions, type StoredLog } from './store.js'
import { batchLogInputs, streamDeleted, type BatchSlice, type ReadResult } from './types.js'

interface MemorySegment {
  base: number
  records: LogRecord[]
  /** Bytes the records would take as log frames. */
  size: number
  lastArrival: number
  sealed: boolean
}

/** What survives a store's close: each shard's committed segments, by `<stream>/<shard>`. */
export class MemoryVolume {
  readonly shards = new Map<string, { stream: string; segments: MemorySegment[] }>()
}

export interface MemoryLogOptions extends LogStoreOptions {
  /** Where committed records live (a new, empty one when not given). */
  volume?: MemoryVolume
}

export class MemoryLogStore extends ShardLogStore<MemoryShardLog> {
  readonly volume: MemoryVolume

  constructor(options: MemoryLogOptions = {}) {
    super(options)
    this.volume = options.volume ?? new MemoryVolume()
  }

  protected async openLog(stream: string, shard: string): Promise<MemoryShardLog> {
    const key = `${stream}/${shard}`
    let stored = this.volume.shards.get(key)
    if (!stored) {
      stored = { stream, segments: [] }
      this.volume.shards.set(key, stored)
    }
    return new MemoryShardLog(this.host, this.codec, this.segmentBytes, stream, key, stored.segments)
  }

  protected async removeData(stream: string, shard?: string): Promise<void> {
    if (shard !== undefined) this.volume.shards.delete(`${stream}/${shard}`)
    else for (const [key, stored] of this.volume.shards) if (stored.stream === stream) this.volume.shards.delete(key)
  }
}

/** A copy a reader may change without changing the log. */
const copyOf = (record: LogRecord): LogRecord => ({ ...record, data: Buffer.from(record.data) })

export class MemoryShardLog implements StoredLog {
  readonly key: string
  readonly stream: string
  private readonly host: ShardLogHost
  private readonly codec: Codec
  private readonly segmentBytes: number
  /** Shared with the volume: committed records outlive this object. */
  private readonly segments: MemorySegment[]
  private pending: LogRecord[] = []
  private pendingBytes = 0
  private nextAssigned: number
  private committedEnd: number
  private lastAssignedArrival: number
  dropped = false

  constructor(host: ShardLogHost, codec: Codec, segmentBytes: number, stream: string, key: string, segments: MemorySegment[]) {
    this.host = host
    this.codec = codec
    this.segmentBytes = segmentBytes
    this.stream = stream
    this.key = key
    this.segments = segments
    if (!segments.length) segments.push({ base: 0, records: [], size: 0, lastArrival: 0, sealed: false })
    const last = segments[segments.length - 1]!
    this.committedEnd = this.nextAssigned = last.base + last.records.length
    this.lastAssignedArrival = last.lastArrival
  }

  startOffset(): number {
    return this.segments[0]?.base ?? this.committedEnd
  }
  endOffset(): number {
    return this.committedEnd
  }
  lastArrivalMs(): number {
    return this.segments[this.segments.length - 1]?.lastArrival ?? 0
  }
  sizeBytes(): number {
    return totalSize(this.segments)
  }
  pendingRecords(): number {
    return this.pending.length
  }
  nextOffset(): number {
    return this.nextAssigned
  }

  append(records: readonly LogRecordInput[]): { firstOffset: number; arrivalMs: number } {
    if (this.dropped) throw streamDeleted(this.stream)
    this.host.checkWritable()
    // Arrival times never go backwards within a shard, even when the wall clock does.
    const now = this.host.now()
    const arrival = this.lastAssignedArrival = now > this.lastAssignedArrival ? now : this.lastAssignedArrival
    const firstOffset = this.nextAssigned
    // Every record is built before an offset is taken, so a bad one leaves no gap behind.
    const built = new Array<LogRecord>(records.length)
    let bytes = 0
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      bytes += this.codec.logRecordSize(r)
      // The fields as a reader of the file log gets them back (flags a byte, the batch index 16 bits).
      built[i] = {
        offset: firstOffset + i, arrivalMs: arrival, producerTimeMs: r.producerTimeMs, flags: r.flags & 0xff,
        partitionKey: r.partitionKey, device: r.device ?? '', epoch: r.epoch ?? 0n,
        batchSequence: r.batchSequence ?? 0, batchIndex: (r.batchIndex ?? 0) & 0xffff, data: Buffer.from(r.data),
      }
    }
    for (const record of built) this.pending.push(record)
    this.pendingBytes += bytes
    this.nextAssigned += built.length
    this.host.enqueue(this)
    return { firstOffset, arrivalMs: arrival }
  }

  appendBatch(slice: BatchSlice): { firstOffset: number; arrivalMs: number } {
    return this.append(batchLogInputs(slice))
  }

  /** Moves what is pending into the newest segment (a new one once that is full); the group commit calls it. */
  async flush(): Promise<void> {
    if (!this.pending.length || this.dropped) return
    const records = this.pending
    const bytes = this.pendingBytes
    this.pending = []
    this.pendingBytes = 0
    let active = this.segments[this.segments.length - 1]!
    if (active.size >= this.segmentBytes) {
      active.sealed = true
      active = { base: records[0]!.offset, records: [], size: 0, lastArrival: 0, sealed: false }
      this.segments.push(active)
    }
    for (const record of records) active.records.push(record)
    active.size += bytes
    active.lastArrival = records[records.length - 1]!.arrivalMs
    this.committedEnd += records.length
    this.host.committed(this, bytes)
  }

  discardPending(): void {
    this.pending = []
    this.pendingBytes = 0
    this.nextAssigned = this.committedEnd
  }

  async read(fromOffset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    if (this.dropped) throw streamDeleted(this.stream)
    let offset = Math.max(fromOffset, this.startOffset())
    const end = this.committedEnd
    const records: LogRecord[] = []
    let bytes = 0
    let si = segmentIndex(this.segments, offset)
    while (si >= 0 && si < this.segments.length && offset < end && records.length < maxRecords && bytes < maxBytes) {
      const segment = this.segments[si]!
      const record = segment.records[offset - segment.base]
      if (!record) { si++; continue }
      const size = record.data.length + Buffer.byteLength(record.partitionKey)
      if (records.length > 0 && bytes + size > maxBytes) break
      records.push(copyOf(record))
      bytes += size
      offset++
    }
    return { records, nextOffset: offset }
  }

  async offsetAtTime(ms: number): Promise<number> {
    for (const segment of this.segments) {
      if (!segment.records.length || segment.lastArrival < ms) continue
      // Arrival times never go backwards within a shard: the first at or after `ms` is found by halving.
      let lo = 0
      let hi = segment.records.length - 1
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (segment.records[mid]!.arrivalMs >= ms) hi = mid
        else lo = mid + 1
      }
      return segment.records[lo]!.offset
    }
    return this.committedEnd
  }

  oldestSealed(): SegmentSpan | null {
    return oldestSealed(this.segments)
  }

  async trim(expired: (segment: SegmentSpan) => boolean): Promise<number> {
    const freed = totalSize(takeExpired(this.segments, expired))
    this.host.freed(freed)
    return freed
  }

  async close(): Promise<void> {}
}
