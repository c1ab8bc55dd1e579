/**
 * One shard's log in segment files under its own directory: appends encoded straight into a pending
 * buffer, written and fdatasynced by the group commit, read back through the damage-skipping walk.
 * See `shared/logframe.ts` for the record layout and `segment.ts` for the files and their index.
 */
import { promises as fsp } from 'node:fs'
import { dirname, join } from 'node:path'
import { logBatchSize, readLogOffset, type Codec } from '../../hardware/index.js'
import type { LogRecord, LogRecordInput } from '../../shared/logframe.js'
import type { ShardLogHost } from './host.js'
import { recoverSegment, walkSegment, type WalkVisitor } from './recovery.js'
import { oldestSealed, segmentIndex, takeExpired, totalSize, type SegmentSpan } from './segment-list.js'
import { fsyncDir, isSegmentLog, Segment, segmentName, type HandleCache } from './segment.js'
import { streamDeleted, type BatchSlice, type ReadOptions, type ReadResult, type ShardLog } from './types.js'

interface PendingAppend {
  firstOffset: number
  arrival: number
  /** Where this append's bytes start among the pending bytes. */
  base: number
  /** Position of each record relative to `base`. */
  positions: Uint32Array
}

/** What `stageNow` gives when the active segment is full: `stage` rolls it first. */
export const ROLL = Symbol('roll')

/** A shard's pending appends taken as one write to its active segment, not yet durable. */
export interface StagedWrite {
  log: FileShardLog
  segment: Segment
  /** Where in the segment file the bytes go (its size when staged). */
  position: number
  /** The bytes, as the appends made them (never joined into one buffer: the journal and the segment write them as they are). */
  data: readonly Buffer[]
  bytes: number
  appends: readonly PendingAppend[]
  count: number
}

export class FileShardLog implements ShardLog {
  readonly key: string
  readonly stream: string
  readonly dir: string
  private readonly host: ShardLogHost
  private readonly codec: Codec
  private readonly segmentBytes: number
  segments: Segment[] = []
  private nextAssigned = 0
  private committedEnd = 0
  private lastAssignedArrival = 0
  private pendingChunks: Buffer[] = []
  private pendingBytes = 0
  private pendingAppends: PendingAppend[] = []
  private pendingCount = 0
  /** Segments removed from the list while reads were running: closed and deleted once none run. */
  private retired: Segment[] = []
  private activeReads = 0
  /** Set when the stream is deleted: late appends are refused, never written to closed files. */
  dropped = false

  private readonly handles?: HandleCache

  constructor(host: ShardLogHost, codec: Codec, segmentBytes: number, stream: string, shard: string, dir: string, handles?: HandleCache) {
    this.host = host
    this.handles = handles
    this.codec = codec
    this.segmentBytes = segmentBytes
    this.stream = stream
    this.key = `${stream}/${shard}`
    this.dir = dir
  }

  startOffset(): number {
    return this.segments[0]?.base ?? this.committedEnd
  }
  endOffset(): number {
    return this.committedEnd
  }
  lastArrivalMs(): number {
    const last = this.segments[this.segments.length - 1]
    return last ? last.lastArrival : 0
  }
  sizeBytes(): number {
    return totalSize(this.segments)
  }
  pendingRecords(): number {
    return this.pendingCount
  }
  nextOffset(): number {
    return this.nextAssigned
  }

  // ---- open ----

  /**
   * Opens and recovers the shard's segment files, creating the first when there is none. `replay`
   * (the journal's redo) is given each segment file found before anything reads it, and the new one
   * with `found` false.
   */
  async open(replay?: (segment: Segment, found: boolean) => Promise<void>): Promise<void> {
    const names = (await this.listOrCreate()).filter(isSegmentLog).sort()
    const walk = { codec: this.codec, shard: this.key, now: this.host.now, report: this.host.corrupted }
    for (let i = 0; i < names.length; i++) {
      const segment = await Segment.open(this.dir, names[i]!, this.handles)
      await replay?.(segment, true)
      const last = i === names.length - 1
      await recoverSegment(segment, last, last ? -1 : Number(names[i + 1]!.slice(0, 20)), walk)
      // An empty sealed segment holds nothing; remove it.
      if (segment.size === 0 && !last) await segment.remove()
      else this.segments.push(segment)
    }
    const last = this.segments[this.segments.length - 1]
    this.committedEnd = this.nextAssigned = last ? last.end : 0
    this.lastAssignedArrival = last?.lastArrival ?? 0
    if (!last) {
      const segment = await Segment.create(this.dir, 0, this.handles)
      await replay?.(segment, false)
      this.segments.push(segment)
    }
  }

  /** The names in the shard's directory, made first when there is none (a restart finds thousands there: one call each). */
  private async listOrCreate(): Promise<string[]> {
    try {
      return await fsp.readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    // Private to the relay's user, whatever the process umask (data at rest is not for others to read).
    const created = await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 })
    if (created) {
      // New directories must survive power loss too: fsync each new level and its parent.
      let dir = this.dir
      while (dir.length >= created.length) {
        await fsyncDir(dir)
        dir = dirname(dir)
      }
      await fsyncDir(dir)
    }
    return fsp.readdir(this.dir)
  }

  // ---- append and commit ----

  append(records: readonly LogRecordInput[]): { firstOffset: number; arrivalMs: number } {
    this.checkAppendable()
    let size = 0
    for (const r of records) size += this.codec.logRecordSize(r)
    const buf = Buffer.allocUnsafe(size)
    const arrival = this.nextArrival()
    const firstOffset = this.nextAssigned
    const positions = new Uint32Array(records.length)
    let at = 0
    // Encode everything before any offset is taken, so a bad record leaves no gap behind.
    for (let i = 0; i < records.length; i++) {
      positions[i] = at
      at += this.codec.encodeLogRecord(buf, at, firstOffset + i, arrival, records[i]!)
    }
    return this.pend(buf, firstOffset, arrival, positions)
  }

  appendBatch(slice: BatchSlice): { firstOffset: number; arrivalMs: number } {
    this.checkAppendable()
    const device = Buffer.from(slice.device, 'utf8')
    const { fields, times } = slice.scan
    const buf = Buffer.allocUnsafe(logBatchSize(fields, slice.indices, device.length))
    const arrival = this.nextArrival()
    const firstOffset = this.nextAssigned
    const positions = new Uint32Array(slice.indices.length)
    this.codec.encodeLogBatch(buf, 0, slice.frame, fields, times, slice.indices, firstOffset, arrival, device, positions)
    return this.pend(buf, firstOffset, arrival, positions)
  }

  private checkAppendable(): void {
    if (this.dropped) throw streamDeleted(this.stream)
    this.host.checkWritable()
  }

  /** Arrival times never go backwards within a shard, even when the wall clock does. */
  private nextArrival(): number {
    const now = this.host.now()
    const arrival = now > this.lastAssignedArrival ? now : this.lastAssignedArrival
    this.lastAssignedArrival = arrival
    return arrival
  }

  private pend(buf: Buffer, firstOffset: number, arrival: number, positions: Uint32Array): { firstOffset: number; arrivalMs: number } {
    this.nextAssigned += positions.length
    this.pendingAppends.push({ firstOffset, arrival, positions, base: this.pendingBytes })
    this.pendingChunks.push(buf)
    this.pendingBytes += buf.length
    this.pendingCount += positions.length
    this.host.enqueue(this)
    return { firstOffset, arrivalMs: arrival }
  }

  /** Writes and fsyncs what is pending; called by the group commit only (a store without a journal). */
  async flush(): Promise<void> {
    const staged = await this.stage()
    if (!staged) return
    await staged.segment.write(staged.data.length === 1 ? staged.data[0]! : Buffer.concat(staged.data, staged.bytes), staged.position)
    this.publish(staged)
  }

  /**
   * Takes what is pending as one write to the active segment (rolled first when full), for a group
   * commit to make durable and then `publish`; null when nothing is pending. Called by the group
   * commit only, one commit at a time, so the segment's size cannot move before `publish`.
   */
  async stage(): Promise<StagedWrite | null> {
    const now = this.stageNow()
    if (now !== ROLL) return now
    const segment = this.segments[this.segments.length - 1]!
    await segment.seal()
    this.segments.push(await Segment.create(this.dir, this.pendingAppends[0]!.firstOffset, this.handles))
    return this.take(this.segments[this.segments.length - 1]!)
  }

  /**
   * `stage` without a turn of the event loop when the active segment has room, as it has but once a
   * segment (a commit touching thousands of shards makes no promise for each); ROLL when it is full
   * and `stage` must roll it first.
   */
  stageNow(): StagedWrite | null | typeof ROLL {
    if (this.pendingBytes === 0 || this.dropped) return null
    const segment = this.segments[this.segments.length - 1]!
    return segment.size >= this.segmentBytes ? ROLL : this.take(segment)
  }

  private take(segment: Segment): StagedWrite {
    const staged: StagedWrite = { log: this, segment, position: segment.size, data: this.pendingChunks, bytes: this.pendingBytes, appends: this.pendingAppends, count: this.pendingCount }
    this.pendingChunks = []
    this.pendingAppends = []
    this.pendingBytes = 0
    this.pendingCount = 0
    return staged
  }

  /** The staged write is durable: its records become committed and readable. */
  publish(staged: StagedWrite): void {
    const { segment, position, bytes } = staged
    for (const a of staged.appends) {
      for (let i = 0; i < a.positions.length; i++) segment.noteRecord(a.firstOffset + i, position + a.base + a.positions[i]!, a.arrival)
    }
    segment.size += bytes
    this.committedEnd += staged.count
    this.host.committed(this, bytes)
  }

  discardPending(): void {
    this.pendingChunks = []
    this.pendingAppends = []
    this.pendingBytes = 0
    this.pendingCount = 0
    this.nextAssigned = this.committedEnd
  }

  /**
   * After a failed commit, before commits are taken again (the store's `resume`): nothing pending is
   * kept, each segment forgets what the failed writes left (`Segment.rewind`), and a roll cut short
   * (the full segment sealed, its successor's file made but never listed) leaves no file behind to
   * refuse the next roll.
   */
  async rewind(): Promise<void> {
    this.discardPending()
    for (const segment of this.segments) await segment.rewind()
    if (this.segments[this.segments.length - 1]?.sealed) await fsp.rm(join(this.dir, segmentName(this.committedEnd, 'log')), { force: true })
  }

  // ---- read ----

  async read(fromOffset: number, maxRecords: number, maxBytes: number, options: ReadOptions = {}): Promise<ReadResult> {
    if (this.dropped) throw streamDeleted(this.stream)
    this.activeReads++
    try {
      return await this.readLocked(fromOffset, maxRecords, maxBytes, options.views === true)
    } finally {
      if (--this.activeReads === 0) await this.closeRetired()
    }
  }

  private async closeRetired(): Promise<void> {
    const retired = this.retired
    this.retired = []
    for (const segment of retired) await segment.remove()
  }

  private async readLocked(fromOffset: number, maxRecords: number, maxBytes: number, views: boolean): Promise<ReadResult> {
    let offset = Math.max(fromOffset, this.startOffset())
    const end = this.committedEnd
    const records: LogRecord[] = []
    let bytes = 0
    const visitor: WalkVisitor = {
      record: (buf, at) => {
        const recOffset = readLogOffset(buf, at)
        if (recOffset < offset) return true
        if (recOffset >= end) return false
        const record = this.codec.decodeLogRecord(buf, at)
        const size = record.data.length + Buffer.byteLength(record.partitionKey)
        if (records.length > 0 && bytes + size > maxBytes) { bytes = maxBytes; return false }
        // Copied out so the chunk can be collected while the record lives on, unless the caller takes views.
        if (!views) record.data = Buffer.from(record.data)
        records.push(record)
        bytes += size
        offset = recOffset + 1
        return records.length < maxRecords && bytes < maxBytes && offset < end
      },
      skipped: (next) => { offset = Math.max(offset, next) },
    }
    while (offset < end && records.length < maxRecords && bytes < maxBytes) {
      // Found afresh each time: retention may remove segments while this read awaits.
      offset = Math.max(offset, this.startOffset())
      const si = segmentIndex(this.segments, offset)
      if (si < 0) break
      const segment = this.segments[si]!
      if (offset >= segment.end) {
        if (si + 1 >= this.segments.length) break
        offset = this.segments[si + 1]!.base
        continue
      }
      const seek = segment.seekOffset(offset)
      // The bytes and the offset they end at, taken together: a commit landing while this read awaits
      // moves both, and pairing the old byte end with the new offset end would skip its records.
      const segEnd = segment.size
      const segEndOffset = segment.end
      const stop = await walkSegment({
        segment, codec: this.codec, shard: this.key, end: segEnd, endOffset: segEndOffset,
        tornTail: false, now: this.host.now, report: this.host.corrupted,
      }, seek.position, seek.offset, visitor)
      if (stop.kind !== 'end') break
      offset = Math.max(offset, segEndOffset)
    }
    return { records, nextOffset: offset }
  }

  async offsetAtTime(ms: number): Promise<number> {
    for (const segment of [...this.segments]) {
      if (segment.size === 0 || segment.lastArrival < ms) continue
      const seek = segment.seekTime(ms)
      let offset = seek.offset
      for (;;) {
        const { records, nextOffset } = await this.read(offset, 1000, 8 * 1024 * 1024)
        for (const r of records) if (r.arrivalMs >= ms) return r.offset
        if (records.length === 0 || nextOffset >= segment.end) break
        offset = nextOffset
      }
    }
    return this.committedEnd
  }

  // ---- retention ----

  oldestSealed(): SegmentSpan | null {
    return oldestSealed(this.segments)
  }

  async trim(expired: (segment: SegmentSpan) => boolean): Promise<number> {
    const taken = takeExpired(this.segments, expired)
    const freed = totalSize(taken)
    this.retired.push(...taken)
    if (this.activeReads === 0) await this.closeRetired()
    this.host.freed(freed)
    return freed
  }

  async close(): Promise<void> {
    while (this.activeReads > 0) await new Promise((r) => setImmediate(r))
    await this.closeRetired()
    for (const s of this.segments) await s.close()
    this.segments = []
  }
}
