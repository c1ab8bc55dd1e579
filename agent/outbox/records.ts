/**
 * The records: every record stored and not yet gone (acknowledged, dropped or dead-lettered). Ids
 * rise in capture order, and so does the outbox clock at capture.
 *
 * They are kept in chunks: one row per run of a stream's records committed together, holding their
 * consecutive ids, the outbox clock they share, a small table of their sizes and their bytes packed
 * into one blob. A commit of many small records so writes the pages its bytes fill and one row's
 * worth of B-tree upkeep, where a row and an index entry per record rewrote a leaf of each and half
 * again the data in row headers (issue 18: what the outbox costs the device's flash). Deleting an
 * acknowledged batch is deleting its chunks: batches are formed on chunk boundaries where the limits
 * allow, and a chunk cut by a deletion is written again as the pieces that remain.
 *
 * Body, per record: varint key length, key (UTF-8), flags (1: clock synced, 2: explicit hash key,
 * 4: capture time as a float64), [varint hash key length, hash key], varint data length, data, the
 * capture time (a zigzag varint of milliseconds from the chunk's `wall_ms`, or a float64).
 * Sizes, per record: varint (frame bytes × 2 + 1 when an explicit hash key is set).
 */
import type Database from 'better-sqlite3'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { codec } from '../../hardware/index.js'
import type { BatchRow, OutboxInput } from './types.js'

/**
 * A chunk failed its checksum or cannot be read: its bytes changed on the storage since they were
 * committed (SQLite checks its pages' structure, not their content). The outbox drops it, counted.
 */
export class ChunkDamagedError extends TributaryError {
  constructor(readonly stream: string, readonly chunkId: number, why: string) {
    super(ErrorCode.LOG_CORRUPT, `outbox chunk ${chunkId} of stream ${stream} is damaged: ${why}`)
  }
}

/** The chunk's checksum: CRC-32C of its sizes table, then its body. */
function chunkCrc(sizes: Buffer, body: Buffer): number {
  return codec.crc32c(body, codec.crc32c(sizes, 0, 0, sizes.length), 0, body.length) >>> 0
}

/** A run of one stream's records as a chunk's blobs and checksum (`sizes`: their frame bytes; `wallMs`: the base of their capture times). */
export function packChunk(rows: readonly OutboxInput[], sizes: readonly number[], wallMs: number): { sizes: Buffer; body: Buffer; crc: number } {
  const table = encodeSizes(sizes, rows.map((r) => !!r.explicitHashKey))
  const body = encodeBody(rows, wallMs)
  return { sizes: table, body, crc: chunkCrc(table, body) }
}

export interface StoredSize {
  id: number
  size: number
}

/** One record as the sizes table tells it, without reading the chunk's body. */
export interface SizedRecord extends StoredSize {
  hashed: number
  /** The outbox clock when it was stored. */
  mono: number
  /** The last record of its chunk: a batch that ends here leaves no chunk cut. */
  end: boolean
}

interface ChunkHead {
  id: number
  stream: string
  count: number
  mono: number
  sizes: Buffer
}

interface Chunk extends ChunkHead {
  wall: number
  body: Buffer
  crc: number
}

interface Decoded {
  partitionKey: string
  explicitHashKey: string | null
  data: Buffer
  capturedMs: number
  clockSynced: boolean
}

const SYNCED = 1
const HASHED = 2
const FLOAT_TIME = 4

// Varints (LEB128, unsigned, up to 2^53) and zigzag for signed deltas.
function varintBytes(n: number): number {
  let bytes = 1
  while (n >= 0x80) { n = Math.floor(n / 128); bytes++ }
  return bytes
}

function putVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) { buf[at++] = (n % 128) | 0x80; n = Math.floor(n / 128) }
  buf[at++] = n
  return at
}

/** Reads a chunk's sizes or body; running past its end (a damaged chunk) throws. */
class Reader {
  at = 0
  constructor(readonly buf: Buffer, private readonly damaged: (why: string) => Error) {}
  byte(): number {
    if (this.at >= this.buf.length) throw this.damaged(`read past its end at byte ${this.at}`)
    return this.buf[this.at++]!
  }
  /** Skips `n` bytes, returning where they start. */
  skip(n: number): number {
    if (this.at + n > this.buf.length) throw this.damaged(`a length of ${n} at byte ${this.at} runs past its end`)
    const at = this.at
    this.at += n
    return at
  }
  varint(): number {
    let n = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const b = this.byte()
      n += (b & 0x7f) * scale
      if (b < 0x80) return n
      scale *= 128
    }
    throw this.damaged(`a varint at byte ${this.at} is too long`)
  }
}

const zigzag = (n: number) => (n >= 0 ? n * 2 : -n * 2 - 1)
const unzigzag = (n: number) => (n % 2 === 0 ? n / 2 : -(n + 1) / 2)

/** A capture time stored as a varint delta from the chunk's wall time: whole milliseconds within 2^40 of it. */
const deltaFits = (captured: number, wall: number) => Number.isInteger(captured) && Number.isInteger(wall) && Math.abs(captured - wall) < 2 ** 40

function encodeBody(rows: readonly OutboxInput[], wallMs: number): Buffer {
  let bytes = 0
  for (const r of rows) {
    const key = Buffer.byteLength(r.partitionKey)
    const captured = r.capturedMs ?? wallMs
    bytes += varintBytes(key) + key + 1 + varintBytes(r.data.length) + r.data.length
    if (r.explicitHashKey) bytes += 1 + Buffer.byteLength(r.explicitHashKey)
    bytes += deltaFits(captured, wallMs) ? varintBytes(zigzag(captured - wallMs)) : 8
  }
  const buf = Buffer.allocUnsafe(bytes)
  let at = 0
  for (const r of rows) {
    const captured = r.capturedMs ?? wallMs
    const asFloat = !deltaFits(captured, wallMs)
    at = putVarint(buf, at, Buffer.byteLength(r.partitionKey))
    at += buf.write(r.partitionKey, at)
    buf[at++] = (r.clockSynced === false ? 0 : SYNCED) | (r.explicitHashKey ? HASHED : 0) | (asFloat ? FLOAT_TIME : 0)
    if (r.explicitHashKey) {
      buf[at++] = Buffer.byteLength(r.explicitHashKey)
      at += buf.write(r.explicitHashKey, at)
    }
    at = putVarint(buf, at, r.data.length)
    at += r.data.copy(buf, at)
    if (asFloat) at = buf.writeDoubleLE(captured, at)
    else at = putVarint(buf, at, zigzag(captured - wallMs))
  }
  return buf
}

function encodeSizes(sizes: readonly number[], hashed: readonly boolean[]): Buffer {
  let bytes = 0
  for (let i = 0; i < sizes.length; i++) bytes += varintBytes(sizes[i]! * 2 + (hashed[i] ? 1 : 0))
  const buf = Buffer.allocUnsafe(bytes)
  let at = 0
  for (let i = 0; i < sizes.length; i++) at = putVarint(buf, at, sizes[i]! * 2 + (hashed[i] ? 1 : 0))
  return buf
}

const damage = (chunk: ChunkHead) => (why: string) => new ChunkDamagedError(chunk.stream, chunk.id, why)

function decodeSizes(chunk: ChunkHead): { size: number; hashed: number }[] {
  const { sizes: buf, count } = chunk
  const r = new Reader(buf, damage(chunk))
  const out = new Array<{ size: number; hashed: number }>(count)
  for (let i = 0; i < count; i++) {
    const v = r.varint()
    out[i] = { size: Math.floor(v / 2), hashed: v % 2 }
  }
  return out
}

/** The records of a chunk, `from` to `to` (indexes within it, inclusive), once its checksum holds. */
function decodeBody(chunk: Chunk, from: number, to: number): Decoded[] {
  if (chunkCrc(chunk.sizes, chunk.body) !== chunk.crc) throw damage(chunk)('its checksum does not match')
  const r = new Reader(chunk.body, damage(chunk))
  const out: Decoded[] = []
  for (let i = 0; i <= to; i++) {
    const keyLength = r.varint()
    const keyAt = r.skip(keyLength)
    const flags = r.byte()
    let hashAt = 0
    let hashLength = 0
    if (flags & HASHED) {
      hashLength = r.byte()
      hashAt = r.skip(hashLength)
    }
    const dataLength = r.varint()
    const dataAt = r.skip(dataLength)
    let capturedMs: number
    if (flags & FLOAT_TIME) {
      capturedMs = chunk.body.readDoubleLE(r.skip(8))
    } else {
      capturedMs = chunk.wall + unzigzag(r.varint())
    }
    if (i < from) continue
    out.push({
      partitionKey: chunk.body.toString('utf8', keyAt, keyAt + keyLength),
      explicitHashKey: flags & HASHED ? chunk.body.toString('latin1', hashAt, hashAt + hashLength) : null,
      // A copy: the chunk's buffer is not kept alive by one record of it.
      data: Buffer.from(chunk.body.subarray(dataAt, dataAt + dataLength)),
      capturedMs,
      clockSynced: (flags & SYNCED) !== 0,
    })
  }
  return out
}

/** Where a commit's records are split into chunks: a chunk larger than a batch would be cut by every batch formed from it. */
export interface ChunkLimits {
  records: number
  bytes: number
}

export const DEFAULT_CHUNK_LIMITS: ChunkLimits = { records: 500, bytes: 256 * 1024 }

export class Records {
  private readonly s
  /** The next record id: past every id a chunk or a formed batch holds. */
  private nextId: number
  /** The latest outbox clock a chunk held at start (the clock carries on from at least there after a crash). */
  readonly maxMono: number

  constructor(db: Database.Database) {
    const head = 'id, stream, count, mono_ms AS mono, sizes'
    const whole = 'id, stream, count, mono_ms AS mono, wall_ms AS wall, sizes, body, crc'
    this.s = {
      insert: db.prepare('INSERT INTO chunks (id, stream, count, bytes, mono_ms, wall_ms, sizes, body, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      tally: db.prepare('SELECT count, bytes FROM chunks WHERE id = ?'),
      delete: db.prepare('DELETE FROM chunks WHERE id = ?'),
      // The chunks holding ids first..last of a stream: the one that starts at or before `first`, and those after.
      overlapping: db.prepare(`SELECT ${whole} FROM chunks WHERE stream = ? AND id <= ? AND id >= COALESCE((SELECT id FROM chunks WHERE stream = ? AND id <= ? ORDER BY id DESC LIMIT 1), 0) ORDER BY id`),
      // Heads only (no body): what sizes and ages need.
      // From the chunk holding `afterId` on (it may be wholly at or before it, hence one more than asked).
      headsAfter: db.prepare(`SELECT ${head} FROM chunks WHERE stream = ? AND id >= COALESCE((SELECT id FROM chunks WHERE stream = ? AND id <= ? ORDER BY id DESC LIMIT 1), 0) ORDER BY id LIMIT ?`),
      firstMono: db.prepare('SELECT mono_ms AS mono FROM chunks WHERE stream = ? ORDER BY id LIMIT 1'),
      holding: db.prepare(`SELECT ${whole} FROM chunks WHERE id <= ? ORDER BY id DESC LIMIT 1`),
      perStream: db.prepare('SELECT stream, SUM(count) AS count, SUM(bytes) AS bytes FROM chunks GROUP BY stream'),
    }
    // One pass over the chunks at start: where ids go on, and the latest outbox clock they hold.
    const ends = db.prepare('SELECT COALESCE(MAX(id + count - 1), 0) AS lastId, COALESCE(MAX(mono_ms), 0) AS mono FROM chunks').get() as { lastId: number; mono: number }
    const lastBatchId = db.prepare('SELECT COALESCE(MAX(last_id), 0) FROM batches').pluck().get() as number
    this.nextId = Math.max(ends.lastId, lastBatchId) + 1
    this.maxMono = ends.mono
  }

  /**
   * Stores one producer's records (of any streams), each run of one stream as chunks within
   * `limits`; returns their ids, in the order given. `sizes` are their frame bytes.
   */
  insert(rows: readonly OutboxInput[], sizes: readonly number[], wallMs: number, monoMs: number, limits: ChunkLimits): number[] {
    const ids = new Array<number>(rows.length)
    let start = 0
    while (start < rows.length) {
      const stream = rows[start]!.stream
      let end = start
      let bytes = 0
      while (end < rows.length && rows[end]!.stream === stream && end - start < limits.records && (end === start || bytes + sizes[end]! <= limits.bytes)) {
        bytes += sizes[end]!
        end++
      }
      const part = rows.slice(start, end)
      const id = this.nextId
      this.nextId += part.length
      const partSizes = sizes.slice(start, end)
      this.put(id, stream, part.length, bytes, monoMs, wallMs, packChunk(part, partSizes, wallMs))
      for (let i = start; i < end; i++) ids[i] = id + i - start
      start = end
    }
    return ids
  }

  /** Deletes a stream's records with ids first..last; a chunk cut by the range keeps its other records. */
  deleteRange(stream: string, firstId: number, lastId: number): void {
    for (const chunk of this.overlapping(stream, firstId, lastId)) {
      const last = chunk.id + chunk.count - 1
      this.s.delete.run(chunk.id)
      if (chunk.id < firstId) this.rewrite(chunk, 0, firstId - chunk.id - 1)
      if (last > lastId) this.rewrite(chunk, lastId + 1 - chunk.id, chunk.count - 1)
    }
  }

  deleteOne(stream: string, id: number): void {
    this.deleteRange(stream, id, id)
  }

  /** How many of a stream's records have ids first..last, and their frame bytes. */
  sumRange(stream: string, firstId: number, lastId: number): { n: number; bytes: number } {
    let n = 0
    let bytes = 0
    for (const chunk of this.overlapping(stream, firstId, lastId)) {
      const sizes = decodeSizes(chunk)
      for (let i = Math.max(0, firstId - chunk.id); i < chunk.count && chunk.id + i <= lastId; i++) {
        n++
        bytes += sizes[i]!.size
      }
    }
    return { n, bytes }
  }

  /** The oldest records of a stream after `afterId`, at most `limit`, from the chunks' heads. */
  sizes(stream: string, afterId: number, limit: number): SizedRecord[] {
    const out: SizedRecord[] = []
    // A chunk holds at least one record: `limit` chunks are enough.
    for (const head of this.s.headsAfter.all(stream, stream, afterId, limit + 1) as ChunkHead[]) {
      const sizes = decodeSizes(head)
      for (let i = Math.max(0, afterId + 1 - head.id); i < head.count; i++) {
        out.push({ id: head.id + i, size: sizes[i]!.size, hashed: sizes[i]!.hashed, mono: head.mono, end: i === head.count - 1 })
        if (out.length === limit) return out
      }
    }
    return out
  }

  /** The outbox clock when the stream's oldest record was stored. */
  firstMono(stream: string): number | undefined {
    return (this.s.firstMono.get(stream) as { mono: number } | undefined)?.mono
  }

  range(stream: string, firstId: number, lastId: number): BatchRow[] {
    const out: BatchRow[] = []
    for (const chunk of this.overlapping(stream, firstId, lastId)) {
      const from = Math.max(0, firstId - chunk.id)
      const to = Math.min(chunk.count - 1, lastId - chunk.id)
      decodeBody(chunk, from, to).forEach((r, i) => out.push({ id: chunk.id + from + i, ...r }))
    }
    return out
  }

  ids(stream: string, firstId: number, lastId: number): number[] {
    const out: number[] = []
    for (const chunk of this.overlapping(stream, firstId, lastId)) {
      for (let id = Math.max(firstId, chunk.id); id <= Math.min(lastId, chunk.id + chunk.count - 1); id++) out.push(id)
    }
    return out
  }

  one(id: number): { partitionKey: string; data: Buffer; capturedMs: number; size: number } | undefined {
    const chunk = this.s.holding.get(id) as Chunk | undefined
    if (!chunk || id >= chunk.id + chunk.count) return undefined
    const [r] = decodeBody(chunk, id - chunk.id, id - chunk.id)
    return { partitionKey: r!.partitionKey, data: r!.data, capturedMs: r!.capturedMs, size: decodeSizes(chunk)[id - chunk.id]!.size }
  }

  perStream(): { stream: string; count: number; bytes: number }[] {
    return this.s.perStream.all() as { stream: string; count: number; bytes: number }[]
  }


  /** The chunks holding any of ids first..last (the one found at or before `first` may end before it). */
  private overlapping(stream: string, firstId: number, lastId: number): Chunk[] {
    return (this.s.overlapping.all(stream, lastId, stream, firstId) as Chunk[]).filter((c) => c.id + c.count > firstId)
  }

  /** Writes records `from`..`to` of a deleted chunk back as a chunk of their own, under their ids. */
  private rewrite(chunk: Chunk, from: number, to: number): void {
    const records = decodeBody(chunk, from, to)
    const sizes = decodeSizes(chunk).slice(from, to + 1)
    const bytes = sizes.reduce((n, s) => n + s.size, 0)
    const rows: OutboxInput[] = records.map((r) => ({ stream: chunk.stream, partitionKey: r.partitionKey, data: r.data, capturedMs: r.capturedMs, clockSynced: r.clockSynced, ...(r.explicitHashKey ? { explicitHashKey: r.explicitHashKey } : {}) }))
    this.put(chunk.id + from, chunk.stream, rows.length, bytes, chunk.mono, chunk.wall, packChunk(rows, sizes.map((s) => s.size), chunk.wall))
  }

  private put(id: number, stream: string, count: number, bytes: number, mono: number, wall: number, packed: ReturnType<typeof packChunk>): void {
    this.s.insert.run(id, stream, count, bytes, mono, wall, packed.sizes, packed.body, packed.crc)
  }

  /** Deletes a damaged chunk whole; returns how many records and bytes it held (from its row, not its blobs). */
  dropChunk(id: number): { n: number; bytes: number } {
    const row = this.s.tally.get(id) as { count: number; bytes: number } | undefined
    if (!row) return { n: 0, bytes: 0 }
    this.s.delete.run(id)
    return { n: row.count, bytes: row.bytes }
  }
}
