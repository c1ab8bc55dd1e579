/**
 * The embedded shard log: segment files per shard under `<root>/<stream>/<shard>/`, group-committed
 * with fdatasync. See `shared/logframe.ts` for the record layout and `segment.ts` for the index.
 */
import { promises as fsp, constants as fsc } from 'node:fs'
import { dirname, join } from 'node:path'
import { codec as defaultCodec, type Codec } from '../../hardware/index.js'
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import { LOG_HEADER_SIZE, LOG_MAX_FRAME, LOG_OFF_CRC, LOG_CRC_START, LogFlag, type LogRecord, type LogRecordInput } from '../../shared/logframe.js'
import { logBatchSize, readLogArrival, readLogOffset, readLogLength } from '../../hardware/index.js'
import { Segment, segmentName } from './segment.js'
import { batchLogInputs, type BatchSlice, type CorruptionReport, type LogStore, type ReadResult, type RecordCipher, type ShardLog } from './types.js'

export interface FileLogOptions {
  root: string
  segmentBytes?: number
  groupCommitMs?: number
  maxStreamBytes?: number
  codec?: Codec
  /** Called once for each damaged region found. */
  onCorruption?: (report: CorruptionReport) => void
  /** Injectable clock (ms). */
  now?: () => number
  /** Called after each group commit with the records it made durable and how long it took. */
  onCommit?: (records: number, ms: number) => void
  /** Encryption at rest for the streams that have it on. */
  cipher?: RecordCipher
}

interface PendingAppend {
  firstOffset: number
  arrival: number
  /** Where this append's bytes start among the pending bytes. */
  base: number
  /** Position of each record relative to `base`. */
  positions: Uint32Array
}

const READ_CHUNK = 1024 * 1024

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, fsc.O_RDONLY)
  try { await handle.sync() } finally { await handle.close() }
}

async function readAt(handle: fsp.FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length)
  let got = 0
  while (got < length) {
    const { bytesRead } = await handle.read(buf, got, length - got, position + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got === length ? buf : buf.subarray(0, got)
}

export class FileShardLog implements ShardLog {
  readonly key: string
  readonly stream: string
  readonly dir: string
  private readonly store: FileLogStore
  private readonly codec: Codec
  segments: Segment[] = []
  private nextAssigned = 0
  private committedEnd = 0
  private lastAssignedArrival = 0
  private pendingChunks: Buffer[] = []
  private pendingBytes = 0
  private pendingAppends: PendingAppend[] = []
  private pendingCount = 0
  /** Set when the stream is deleted: late appends are refused, never written to closed files. */
  dropped = false

  constructor(store: FileLogStore, stream: string, shard: string, dir: string, codec: Codec) {
    this.store = store
    this.stream = stream
    this.key = `${stream}/${shard}`
    this.dir = dir
    this.codec = codec
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
    let n = 0
    for (const s of this.segments) n += s.size
    return n
  }
  pendingRecords(): number {
    return this.pendingCount
  }
  nextOffset(): number {
    return this.nextAssigned
  }

  // ---- open and recovery ----

  async open(): Promise<void> {
    const created = await fsp.mkdir(this.dir, { recursive: true })
    if (created) {
      // New directories must survive power loss too: fsync each new level and its parent.
      let dir = this.dir
      while (dir.length >= created.length) {
        await fsyncDir(dir)
        dir = dirname(dir)
      }
      await fsyncDir(dir)
    }
    const names = (await fsp.readdir(this.dir)).filter((n) => /^\d{20}\.log$/.test(n)).sort()
    for (let i = 0; i < names.length; i++) {
      const base = Number(names[i]!.slice(0, 20))
      const handle = await fsp.open(join(this.dir, names[i]!), 'r+')
      const segment = new Segment(this.dir, base, handle)
      const last = i === names.length - 1
      const size = (await handle.stat()).size
      let indexed = false
      if (!last) {
        const idx = await fsp.readFile(segment.indexPath).catch(() => Buffer.alloc(0))
        indexed = segment.loadIndex(idx, size)
      }
      // With a trusted index only the stretch after its last entry is walked; otherwise all of it.
      const from = indexed ? segment.positions[segment.positions.length - 1]! : 0
      const fromOffset = indexed ? segment.offsets[segment.offsets.length - 1]! : base
      if (!indexed) { segment.offsets = []; segment.positions = []; segment.times = [] }
      const nextBase = last ? -1 : Number(names[i + 1]!.slice(0, 20))
      await this.recoverRegion(segment, from, fromOffset, size, nextBase)
      if (!indexed && !last && segment.size > 0) await fsp.writeFile(segment.indexPath, segment.encodeIndex())
      segment.sealed = !last
      if (segment.size === 0 && !last) {
        // An empty sealed segment holds nothing; remove it.
        await handle.close()
        await fsp.rm(segment.logPath, { force: true })
        await fsp.rm(segment.indexPath, { force: true })
        continue
      }
      this.segments.push(segment)
    }
    const last = this.segments[this.segments.length - 1]
    this.committedEnd = this.nextAssigned = last ? last.end : 0
    this.lastAssignedArrival = last?.lastArrival ?? 0
    if (!last) await this.createSegment(0)
  }

  /**
   * Walks `[from, fileSize)` verifying every record. A damaged record followed by good ones is a hole
   * (reported, never served); damage with nothing good after it is a torn tail and is cut off.
   */
  private async recoverRegion(segment: Segment, from: number, fromOffset: number, fileSize: number, nextBase: number): Promise<void> {
    let position = from
    let expected = fromOffset
    while (position < fileSize) {
      const length = Math.min(fileSize - position, Math.max(READ_CHUNK, LOG_MAX_FRAME))
      const buf = await readAt(segment.handle, position, length)
      const scan = this.codec.scanLog(buf, 0, buf.length, expected)
      for (const p of scan.positions) {
        segment.noteRecord(readLogOffset(buf, p), position + p, readLogArrival(buf, p))
      }
      if (scan.positions.length) expected = segment.end
      const stopAt = position + scan.end
      if (scan.stop === 'end') { position = stopAt; continue }
      // A record that straddles the end of this chunk: continue from it.
      if (scan.stop === 'torn' && position + buf.length < fileSize && scan.end > 0) { position = stopAt; continue }
      // A record whose header claims more bytes than the file has is a torn write in the active
      // segment: cut it, and never look inside its data for records (it may hold anything).
      const tornTail = nextBase < 0 && scan.stop === 'torn'
      const next = tornTail ? null : await this.resync(segment, stopAt, expected, fileSize, this.claimedEnd(buf, scan.end, stopAt, fileSize))
      if (next) {
        const report: CorruptionReport = {
          shard: this.key, file: segment.logPath, position: stopAt,
          firstOffset: expected, lastOffset: next.offset - 1, detectedAt: Date.now(),
        }
        segment.holes.set(stopAt, next.position)
        this.store.reportCorruption(report)
        // The index must not point into the hole.
        expected = next.offset
        position = next.position
        continue
      }
      if (nextBase >= 0) {
        // A sealed segment was complete when it was sealed: damage at its end is corruption, not a torn write.
        segment.holes.set(stopAt, fileSize)
        this.store.reportCorruption({
          shard: this.key, file: segment.logPath, position: stopAt,
          firstOffset: expected, lastOffset: nextBase - 1, detectedAt: Date.now(),
        })
        segment.end = nextBase
        position = fileSize
        break
      }
      // Nothing good follows in the active segment: a torn tail, cut it off.
      if (stopAt < fileSize) {
        await segment.handle.truncate(stopAt)
        await segment.handle.sync()
      }
      position = stopAt
      break
    }
    segment.size = position
  }

  /**
   * Where a damaged record would end if its length field is believable: resync starts there, so
   * bytes inside the damaged record's data are never taken for records.
   */
  private claimedEnd(buf: Buffer, at: number, position: number, fileSize: number): number {
    if (buf.length - at < LOG_HEADER_SIZE) return position + 1
    const length = readLogLength(buf, at)
    return length >= LOG_HEADER_SIZE && length <= LOG_MAX_FRAME && position + length <= fileSize ? position + length : position + 1
  }

  /** Looks for the next good record from `from` on: a plausible header whose checksum holds. */
  private async resync(segment: Segment, position: number, expected: number, fileSize: number, from = position + 1): Promise<{ position: number; offset: number } | null> {
    let at = from
    while (at + LOG_HEADER_SIZE <= fileSize) {
      const buf = await readAt(segment.handle, at, Math.min(fileSize - at, READ_CHUNK + LOG_MAX_FRAME))
      const limit = Math.min(buf.length - LOG_HEADER_SIZE, READ_CHUNK)
      for (let i = 0; i <= limit; i++) {
        const length = readLogLength(buf, i)
        if (length < LOG_HEADER_SIZE || length > LOG_MAX_FRAME || i + length > buf.length) continue
        const offset = readLogOffset(buf, i)
        if (offset < expected || offset > expected + 10_000_000) continue
        if (this.codec.crc32c(buf, 0, i + LOG_CRC_START, i + length) !== buf.readUInt32LE(i + LOG_OFF_CRC)) continue
        return { position: at + i, offset }
      }
      at += limit + 1
    }
    return null
  }

  private async createSegment(base: number): Promise<Segment> {
    const handle = await fsp.open(join(this.dir, segmentName(base, 'log')), 'wx+')
    await fsyncDir(this.dir)
    const segment = new Segment(this.dir, base, handle)
    this.segments.push(segment)
    return segment
  }

  // ---- append and commit ----

  append(input: readonly LogRecordInput[]): { firstOffset: number; arrivalMs: number } {
    if (this.dropped) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${this.stream} was deleted`)
    this.store.checkWritable()
    const records = this.store.sealRecords(this.stream, input)
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
    if (this.dropped) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${this.stream} was deleted`)
    this.store.checkWritable()
    // A sealed stream stores different bytes per record: that goes through the general path.
    if (this.store.seals(this.stream)) return this.append(batchLogInputs(slice))
    const device = Buffer.from(slice.device, 'utf8')
    const { fields, times } = slice.scan
    const buf = Buffer.allocUnsafe(logBatchSize(fields, slice.indices, device.length))
    const arrival = this.nextArrival()
    const firstOffset = this.nextAssigned
    const positions = new Uint32Array(slice.indices.length)
    this.codec.encodeLogBatch(buf, 0, slice.frame, fields, times, slice.indices, firstOffset, arrival, device, positions)
    return this.pend(buf, firstOffset, arrival, positions)
  }

  /** Arrival times never go backwards within a shard, even when the wall clock does. */
  private nextArrival(): number {
    const now = this.store.now()
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
    this.store.markDirty(this)
    return { firstOffset, arrivalMs: arrival }
  }

  /** Writes and fsyncs what is pending; called by the store's committer only. */
  async flush(segmentBytes: number): Promise<void> {
    if (this.pendingBytes === 0 || this.dropped) return
    const chunks = this.pendingChunks
    const appends = this.pendingAppends
    const bytes = this.pendingBytes
    const count = this.pendingCount
    this.pendingChunks = []
    this.pendingAppends = []
    this.pendingBytes = 0
    this.pendingCount = 0
    let active = this.segments[this.segments.length - 1]!
    if (active.size >= segmentBytes) active = await this.roll(active, appends[0]!.firstOffset)
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes)
    let written = 0
    while (written < data.length) {
      const { bytesWritten } = await active.handle.write(data, written, data.length - written, active.size + written)
      written += bytesWritten
    }
    await active.handle.datasync()
    const base = active.size
    for (const a of appends) {
      for (let i = 0; i < a.positions.length; i++) active.noteRecord(a.firstOffset + i, base + a.base + a.positions[i]!, a.arrival)
    }
    active.size += data.length
    this.committedEnd += count
    this.store.adjustTotal(data.length)
    this.store.notifyAppended(this)
  }

  private async roll(active: Segment, base: number): Promise<Segment> {
    await fsp.writeFile(active.indexPath, active.encodeIndex())
    const idx = await fsp.open(active.indexPath, 'r')
    try { await idx.sync() } finally { await idx.close() }
    active.sealed = true
    return this.createSegment(base)
  }

  /** Drops pending appends after a failed commit so nothing half-known is served. */
  discardPending(): void {
    this.pendingChunks = []
    this.pendingAppends = []
    this.pendingBytes = 0
    this.pendingCount = 0
    this.nextAssigned = this.committedEnd
  }

  // ---- read ----

  private segmentFor(offset: number): number {
    let lo = 0
    let hi = this.segments.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.segments[mid]!.base <= offset) { found = mid; lo = mid + 1 } else hi = mid - 1
    }
    return found
  }

  async read(fromOffset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    if (this.dropped) throw new TributaryError(ErrorCode.STREAM_NOT_FOUND, `stream ${this.stream} was deleted`)
    this.activeReads++
    try {
      return await this.readLocked(fromOffset, maxRecords, maxBytes)
    } finally {
      if (--this.activeReads === 0) await this.closeRetired()
    }
  }

  /** Segments removed from the list while reads were running: closed and deleted once none run. */
  private retired: Segment[] = []
  private activeReads = 0

  private async closeRetired(): Promise<void> {
    const retired = this.retired
    this.retired = []
    for (const segment of retired) {
      await segment.handle.close().catch(() => {})
      await fsp.rm(segment.logPath, { force: true })
      await fsp.rm(segment.indexPath, { force: true })
    }
  }

  private async readLocked(fromOffset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    let offset = Math.max(fromOffset, this.startOffset())
    const end = this.committedEnd
    const records: LogRecord[] = []
    let bytes = 0
    while (offset < end && records.length < maxRecords && bytes < maxBytes) {
      // Found afresh each time: retention may remove segments while this read awaits.
      offset = Math.max(offset, this.startOffset())
      const si = this.segmentFor(offset)
      if (si < 0) break
      const segment = this.segments[si]!
      if (offset >= segment.end) {
        if (si + 1 >= this.segments.length) break
        offset = this.segments[si + 1]!.base
        continue
      }
      const seek = segment.seekOffset(offset)
      let position = seek.position
      let expected = seek.offset
      // Walk forward in chunks until the limits are met or the segment's committed bytes end.
      // The bytes and the offset they end at, taken together: a commit landing while this read awaits
      // moves both, and pairing the old byte end with the new offset end would skip its records.
      const segEnd = segment.size
      const segEndOffset = segment.end
      while (position < segEnd && records.length < maxRecords && bytes < maxBytes && offset < end) {
        const hole = segment.holes.get(position)
        if (hole !== undefined) {
          position = hole
          expected = -1
          continue
        }
        const buf = await readAt(segment.handle, position, Math.min(segEnd - position, READ_CHUNK))
        const scan = this.codec.scanLog(buf, 0, buf.length, expected)
        let full = false
        for (const p of scan.positions) {
          const recOffset = readLogOffset(buf, p)
          if (recOffset < offset) continue
          if (recOffset >= end || records.length >= maxRecords) { full = true; break }
          const record = this.store.openRecord(this.stream, this.codec.decodeLogRecord(buf, p))
          const size = record.data.length + Buffer.byteLength(record.partitionKey)
          if (records.length > 0 && bytes + size > maxBytes) { bytes = maxBytes; full = true; break }
          // Copy out so the chunk can be collected while the record lives on.
          record.data = Buffer.from(record.data)
          records.push(record)
          bytes += size
          offset = recOffset + 1
        }
        // The limits were met before this chunk's end (or its damage): the next read starts at `offset`.
        if (full || records.length >= maxRecords) break
        if (scan.positions.length) expected = readLogOffset(buf, scan.positions[scan.positions.length - 1]!) + 1
        if (scan.stop === 'end') { position += scan.end; continue }
        if (scan.stop === 'torn') {
          const chunkEnd = position + buf.length
          // A record that straddles the end of this chunk: continue from it.
          if (chunkEnd < segEnd && scan.end > 0) { position += scan.end; continue }
          const length = scan.end === 0 && buf.length >= LOG_HEADER_SIZE ? readLogLength(buf, 0) : 0
          if (chunkEnd < segEnd && length >= LOG_HEADER_SIZE && length <= LOG_MAX_FRAME && position + length <= segEnd) {
            // A record larger than the chunk: read it alone.
            const big = await readAt(segment.handle, position, length)
            const one = this.codec.scanLog(big, 0, big.length, expected)
            if (one.stop === 'end') {
              const record = this.store.openRecord(this.stream, this.codec.decodeLogRecord(big, 0))
              if (record.offset >= offset && record.offset < end) {
                if (records.length > 0 && bytes + record.data.length + Buffer.byteLength(record.partitionKey) > maxBytes) break
                records.push(record)
                bytes += record.data.length + Buffer.byteLength(record.partitionKey)
                offset = record.offset + 1
              }
              expected = record.offset + 1
              position += length
              continue
            }
          }
        }
        // Damage found while reading: report it once, remember the hole, and step over it.
        const damagedAt = position + scan.end
        const next = await this.resync(segment, damagedAt, Math.max(expected, offset), segEnd, this.claimedEnd(buf, scan.end, damagedAt, segEnd))
        const nextPos = next ? next.position : segEnd
        if (!segment.holes.has(damagedAt)) {
          segment.holes.set(damagedAt, nextPos)
          this.store.reportCorruption({
            shard: this.key, file: segment.logPath, position: damagedAt,
            firstOffset: Math.max(expected, offset), lastOffset: next ? next.offset - 1 : segEndOffset - 1, detectedAt: Date.now(),
          })
        }
        if (!next) { offset = Math.max(offset, segEndOffset); break }
        position = next.position
        expected = next.offset
        offset = Math.max(offset, next.offset)
      }
      if (records.length >= maxRecords || bytes >= maxBytes) break
      if (position >= segEnd) offset = Math.max(offset, segEndOffset)
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

  /** Deletes sealed segments that `expired` says may go; returns bytes freed. */
  async deleteSegments(expired: (segment: Segment) => boolean): Promise<number> {
    let freed = 0
    while (this.segments.length > 1 && this.segments[0]!.sealed && expired(this.segments[0]!)) {
      const segment = this.segments.shift()!
      freed += segment.size
      this.retired.push(segment)
    }
    if (this.activeReads === 0) await this.closeRetired()
    this.store.adjustTotal(-freed)
    return freed
  }

  async close(): Promise<void> {
    while (this.activeReads > 0) await new Promise((r) => setImmediate(r))
    await this.closeRetired()
    for (const s of this.segments) await s.handle.close().catch(() => {})
    this.segments = []
  }
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

export class FileLogStore implements LogStore {
  private readonly root: string
  private readonly segmentBytes: number
  private readonly groupCommitMs: number
  private readonly maxStreamBytes: number
  private readonly codec: Codec
  private readonly onCorruption?: (report: CorruptionReport) => void
  private readonly onCommit?: (records: number, ms: number) => void
  private readonly cipher?: RecordCipher
  readonly now: () => number
  private readonly logs = new Map<string, FileShardLog>()
  private readonly opening = new Map<string, Promise<FileShardLog>>()
  private dirty = new Set<FileShardLog>()
  private waiting: Waiter[] = []
  private running = false
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null
  private readonly reports: CorruptionReport[] = []
  private readonly appendListeners = new Set<(log: ShardLog) => void>()
  failed: Error | null = null

  constructor(options: FileLogOptions) {
    this.root = options.root
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024
    this.groupCommitMs = options.groupCommitMs ?? 0
    this.maxStreamBytes = options.maxStreamBytes ?? 0
    this.codec = options.codec ?? defaultCodec
    this.onCorruption = options.onCorruption
    this.onCommit = options.onCommit
    this.cipher = options.cipher
    this.now = options.now ?? Date.now
  }

  /** True when the stream's records are stored sealed. */
  seals(stream: string): boolean {
    return this.cipher !== undefined && this.cipher.seals(stream)
  }

  /** Records as they are stored: sealed when the stream is encrypted (the cipher decides). */
  sealRecords(stream: string, records: readonly LogRecordInput[]): readonly LogRecordInput[] {
    if (!this.cipher) return records
    let out: LogRecordInput[] | null = null
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const sealed = this.cipher.seal(stream, r.data)
      if (sealed === null) return records
      out ??= new Array<LogRecordInput>(records.length)
      out[i] = { ...r, data: sealed, flags: r.flags | LogFlag.encrypted }
    }
    return out ?? records
  }

  /** A record as readers see it: opened when it was stored sealed. Keeps the flag, so readers can tell. */
  openRecord(stream: string, record: LogRecord): LogRecord {
    if (!(record.flags & LogFlag.encrypted)) return record
    if (!this.cipher) throw new TributaryError(ErrorCode.DECRYPT_FAILED, `record ${record.offset} of stream ${stream} is encrypted and the relay has no key configured`)
    record.data = this.cipher.open(stream, record.data)
    return record
  }

  private keyOf(stream: string, shard: string): string {
    return `${stream}/${shard}`
  }

  async open(stream: string, shard: string): Promise<FileShardLog> {
    const key = this.keyOf(stream, shard)
    const existing = this.logs.get(key)
    if (existing) return existing
    let pending = this.opening.get(key)
    if (!pending) {
      pending = (async () => {
        const log = new FileShardLog(this, stream, shard, join(this.root, stream, shard), this.codec)
        await log.open()
        this.total += log.sizeBytes()
        this.logs.set(key, log)
        return log
      })()
      this.opening.set(key, pending)
      pending.finally(() => this.opening.delete(key)).catch(() => {})
    }
    return pending
  }

  get(stream: string, shard: string): FileShardLog | undefined {
    return this.logs.get(this.keyOf(stream, shard))
  }

  async drop(stream: string, shard?: string): Promise<void> {
    const doomed = [...this.logs].filter(([key, log]) => log.stream === stream && (shard === undefined || key === this.keyOf(stream, shard)))
    for (const [key, log] of doomed) {
      this.total -= log.sizeBytes()
      log.dropped = true
      this.dirty.delete(log)
      log.discardPending()
      this.logs.delete(key)
    }
    // A commit already writing to these files finishes before they are closed.
    while (this.running) await new Promise((r) => setImmediate(r))
    for (const [, log] of doomed) await log.close()
    await fsp.rm(shard === undefined ? join(this.root, stream) : join(this.root, stream, shard), { recursive: true, force: true })
  }

  /** Called when a new record is committed: lets readers waiting on a shard wake up. */
  onAppend(listener: (log: ShardLog) => void): () => void {
    this.appendListeners.add(listener)
    return () => this.appendListeners.delete(listener)
  }
  notifyAppended(log: ShardLog): void {
    for (const l of this.appendListeners) l(log)
  }

  checkWritable(): void {
    if (this.failed) throw new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${this.failed.message}`, { cause: this.failed })
  }

  markDirty(log: FileShardLog): void {
    this.dirty.add(log)
  }

  reportCorruption(report: CorruptionReport): void {
    this.reports.push(report)
    this.onCorruption?.(report)
  }
  corruptions(): readonly CorruptionReport[] {
    return this.reports
  }

  commit(): Promise<void> {
    if (this.failed) return Promise.reject(new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${this.failed.message}`))
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      this.schedule()
    })
  }

  private schedule(): void {
    if (this.running || this.timer) return
    const run = () => { this.timer = null; void this.run() }
    this.timer = this.groupCommitMs > 0 ? setTimeout(run, this.groupCommitMs) : setImmediate(run)
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
      // Every flush settles before the outcome is known: none may still be writing when this run ends.
      const outcomes = await Promise.allSettled(logs.map((log) => log.flush(this.segmentBytes)))
      const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
      if (failure) throw failure.reason
      if (records) this.onCommit?.(records, performance.now() - started)
      for (const w of waiters) w.resolve()
    } catch (err) {
      // A failed write or fsync leaves the file in an unknown state: stop accepting writes. The log on
      // disk stays the truth, and a restart recovers from it.
      this.failed = err as Error
      for (const log of this.logs.values()) log.discardPending()
      const error = new StorageError(ErrorCode.STORAGE_FAILED, `shard storage failed: ${(err as Error).message}`, { cause: err })
      for (const w of [...waiters, ...this.waiting]) w.reject(error)
      this.waiting = []
    } finally {
      this.running = false
      if (this.waiting.length) this.schedule()
    }
  }

  /** Bytes of committed records in every open shard log (kept up to date, not recomputed). */
  totalBytes(): number {
    return this.total
  }
  private total = 0
  adjustTotal(delta: number): void {
    this.total += delta
  }

  async enforceRetention(retentionMsByStream: (stream: string) => number, now = this.now()): Promise<number> {
    let freed = 0
    const byStream = new Map<string, FileShardLog[]>()
    for (const log of this.logs.values()) {
      const list = byStream.get(log.stream) ?? []
      list.push(log)
      byStream.set(log.stream, list)
    }
    for (const [stream, logs] of byStream) {
      const cutoff = now - retentionMsByStream(stream)
      for (const log of logs) freed += await log.deleteSegments((s) => s.lastArrival < cutoff)
      if (this.maxStreamBytes > 0) {
        // Over the size cap: the stream's oldest sealed segment goes first, whichever shard holds it.
        let total = logs.reduce((n, l) => n + l.sizeBytes(), 0)
        while (total > this.maxStreamBytes) {
          const candidates = logs.filter((l) => l.segments.length > 1 && l.segments[0]!.sealed)
          if (!candidates.length) break
          candidates.sort((a, b) => a.segments[0]!.lastArrival - b.segments[0]!.lastArrival)
          const oldest = candidates[0]!
          const first = oldest.segments[0]!
          const bytes = await oldest.deleteSegments((s) => s === first)
          total -= bytes
          freed += bytes
        }
      }
    }
    return freed
  }

  async close(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout)
      clearImmediate(this.timer as NodeJS.Immediate)
      this.timer = null
    }
    while (this.running) await new Promise((r) => setImmediate(r))
    if ((this.dirty.size || this.waiting.length) && !this.failed) await this.run()
    while (this.running) await new Promise((r) => setImmediate(r))
    for (const log of this.logs.values()) await log.close()
    this.logs.clear()
  }
}
