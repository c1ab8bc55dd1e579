/**
 * The TypeScript implementation of the hot path: CRC-32C, MD5 of partition keys, and the batch and
 * log frames of `shared/frame.ts` and `shared/logframe.ts`. The C addon (its own issue) must produce
 * byte-identical results; this file is the reference.
 */
import { createHash } from 'node:crypto'
import { setBytes, viewOf } from '../../shared/bytes.js'
import { ErrorCode, FrameError } from '../../shared/errors.js'
import {
  BODY_START, FRAME_MAGIC_0, FRAME_MAGIC_1, FRAME_VERSION, HASH_KEY_SIZE, HEADER_SIZE, MAX_FRAME_BYTES,
  MAX_FRAME_DATA, MAX_KEY_BYTES, OFF_BATCH_SEQ, OFF_BODY_LENGTH, OFF_CRC, OFF_EPOCH, OFF_FLAGS, OFF_MAGIC,
  OFF_RECORD_COUNT, OFF_VERSION, REC_OFF_DATA_LENGTH, REC_OFF_FLAGS, REC_OFF_KEY_LENGTH, REC_OFF_TIME,
  RECORD_HEADER_SIZE, RecordFlag, type Batch,
} from '../../shared/frame.js'
import {
  LOG_CRC_START, LOG_HEADER_SIZE, LOG_MAX_FRAME, LOG_OFF_ARRIVAL, LOG_OFF_BATCH_INDEX, LOG_OFF_BATCH_SEQ,
  LOG_OFF_CRC, LOG_OFF_DEVICE_LENGTH, LOG_OFF_EPOCH, LOG_OFF_FLAGS, LOG_OFF_KEY_LENGTH, LOG_OFF_LENGTH,
  LOG_OFF_OFFSET, LOG_OFF_PRODUCER_TIME, LogFlag, type LogRecord, type LogRecordInput,
} from '../../shared/logframe.js'
import {
  BATCH_DATA_LENGTH, BATCH_DATA_START, BATCH_FLAGS, BATCH_HASH_KEY_AT, BATCH_KEY_LENGTH, BATCH_KEY_START, BATCH_STRIDE,
  KEY_VALID_UTF8, type BatchIdentity, type BatchScan, type DecodedBatch, type DecodedRecord, type LogScan,
} from './types.js'
import { BatchView } from './batch-view.js'

// ---- CRC-32C (Castagnoli), slicing-by-8 ----

const CRC_TABLES = (() => {
  const tables = new Int32Array(8 * 256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    tables[n] = c
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n]!
    for (let t = 1; t < 8; t++) {
      c = tables[c & 0xff]! ^ (c >>> 8)
      tables[t * 256 + n] = c
    }
  }
  return tables
})()

export function crc32c(buf: Uint8Array, initial = 0, start = 0, end = buf.length): number {
  const T = CRC_TABLES
  let crc = ~initial
  let i = start
  while (i + 8 <= end) {
    const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ crc
    const b = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24)
    crc =
      T[7 * 256 + (a & 0xff)]! ^ T[6 * 256 + ((a >>> 8) & 0xff)]! ^ T[5 * 256 + ((a >>> 16) & 0xff)]! ^
      T[4 * 256 + (a >>> 24)]! ^ T[3 * 256 + (b & 0xff)]! ^ T[2 * 256 + ((b >>> 8) & 0xff)]! ^
      T[256 + ((b >>> 16) & 0xff)]! ^ T[b >>> 24]!
    i += 8
  }
  while (i < end) crc = T[(crc ^ buf[i++]!) & 0xff]! ^ (crc >>> 8)
  return ~crc >>> 0
}

// ---- MD5 of partition keys ----

/** MD5 of each key's UTF-8 bytes, 16 bytes per key, back to back. */
export function md5Many(keys: readonly string[]): Buffer {
  const out = Buffer.allocUnsafe(keys.length * 16)
  for (let i = 0; i < keys.length; i++) createHash('md5').update(keys[i]!, 'utf8').digest().copy(out, i * 16)
  return out
}

// ---- u64 helpers (values kept below 2^53 where they are numbers) ----

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % 0x1_0000_0000, at)
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4)
}
function readU64(buf: Uint8Array, at: number): number {
  return getU32(buf, at + 4) * 0x1_0000_0000 + getU32(buf, at)
}
// Fields read byte by byte: Buffer's read methods are each a call with range checks, and on the read
// path V8 loads every one of them through its generic handler (callgrind: `Builtins_LoadIC`).
const getU16 = (buf: Uint8Array, at: number) => buf[at]! | (buf[at + 1]! << 8)
const getU32 = (buf: Uint8Array, at: number) => (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16)) + buf[at + 3]! * 0x100_0000
/** A double's little-endian bytes, through one shared scratch (whose byte order is the platform's). */
const F64 = new Float64Array(1)
const F64_BYTES = new Uint8Array(F64.buffer)
const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0
function getF64(buf: Uint8Array, at: number): number {
  if (BIG_ENDIAN) for (let i = 0; i < 8; i++) F64_BYTES[7 - i] = buf[at + i]!
  else for (let i = 0; i < 8; i++) F64_BYTES[i] = buf[at + i]!
  return F64[0]!
}
function bigintToU128BE(value: bigint, buf: Buffer, at: number): void {
  buf.writeBigUInt64BE(value >> 64n, at)
  buf.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn, at + 8)
}
export function u128BEToBigint(buf: Uint8Array, at: number): bigint {
  const view = buf as Buffer
  return (view.readBigUInt64BE(at) << 64n) | view.readBigUInt64BE(at + 8)
}

// ---- batch frame ----

export function encodeBatch(batch: Batch, checksum: (buf: Uint8Array, initial: number, start: number, end: number) => number = crc32c): Buffer {
  const keys = batch.records.map((r) => Buffer.from(r.partitionKey, 'utf8'))
  let size = HEADER_SIZE
  batch.records.forEach((r, i) => {
    size += RECORD_HEADER_SIZE + (r.explicitHashKey !== undefined ? HASH_KEY_SIZE : 0) + keys[i]!.length + r.data.length
  })
  const buf = Buffer.alloc(size)
  buf[OFF_MAGIC] = FRAME_MAGIC_0
  buf[OFF_MAGIC + 1] = FRAME_MAGIC_1
  buf[OFF_VERSION] = FRAME_VERSION
  buf[OFF_FLAGS] = 0
  buf.writeUInt32LE(size - BODY_START, OFF_BODY_LENGTH)
  buf.writeBigUInt64LE(batch.epoch, OFF_EPOCH)
  writeU64(buf, batch.sequence, OFF_BATCH_SEQ)
  buf.writeUInt32LE(batch.records.length, OFF_RECORD_COUNT)
  let at = HEADER_SIZE
  batch.records.forEach((r, i) => {
    const key = keys[i]!
    const hasHash = r.explicitHashKey !== undefined
    buf[at + REC_OFF_FLAGS] = (r.clockSynced ? RecordFlag.clockSynced : 0) | (hasHash ? RecordFlag.explicitHashKey : 0)
    buf.writeUInt16LE(key.length, at + REC_OFF_KEY_LENGTH)
    buf.writeUInt32LE(r.data.length, at + REC_OFF_DATA_LENGTH)
    buf.writeDoubleLE(r.producerTimeMs, at + REC_OFF_TIME)
    at += RECORD_HEADER_SIZE
    if (hasHash) {
      bigintToU128BE(r.explicitHashKey!, buf, at)
      at += HASH_KEY_SIZE
    }
    key.copy(buf, at)
    at += key.length
    buf.set(r.data, at)
    at += r.data.length
  })
  buf.writeUInt32LE(checksum(buf, 0, BODY_START, size), OFF_CRC)
  return buf
}

const fail = (code: ErrorCode, message: string): never => {
  throw new FrameError(code, message)
}

/**
 * Finds and verifies every record of a batch frame in one pass, without an object per record: the
 * result is a table (see `BATCH_STRIDE`). Total: any input either scans or throws a FrameError; no
 * length field is trusted before it has been checked against the bytes actually present.
 */
export function scanBatch(buf: Buffer, checksum: (buf: Uint8Array, initial: number, start: number, end: number) => number = crc32c): BatchScan {
  if (buf.length < HEADER_SIZE) fail(ErrorCode.FRAME_TRUNCATED, `frame is ${buf.length} bytes, shorter than the ${HEADER_SIZE}-byte header`)
  if (buf.length > MAX_FRAME_BYTES) fail(ErrorCode.FRAME_TOO_LARGE, `frame is ${buf.length} bytes`)
  if (buf[OFF_MAGIC] !== FRAME_MAGIC_0 || buf[OFF_MAGIC + 1] !== FRAME_MAGIC_1) fail(ErrorCode.FRAME_BAD_MAGIC, 'not a Tributary batch frame (bad magic)')
  if (buf[OFF_VERSION] !== FRAME_VERSION) fail(ErrorCode.FRAME_BAD_VERSION, `unsupported frame version ${buf[OFF_VERSION]}`)
  // The flags byte sits before the checksummed body, so it is checked by value: reserved means 0.
  if (buf[OFF_FLAGS] !== 0) fail(ErrorCode.FRAME_BAD_FIELD, `frame flags 0x${buf[OFF_FLAGS]!.toString(16)} are reserved and must be 0`)
  const bodyLength = buf.readUInt32LE(OFF_BODY_LENGTH)
  if (bodyLength !== buf.length - BODY_START) {
    fail(bodyLength > buf.length - BODY_START ? ErrorCode.FRAME_TRUNCATED : ErrorCode.FRAME_BAD_FIELD,
      `frame body length says ${bodyLength} bytes but ${buf.length - BODY_START} are present`)
  }
  if (checksum(buf, 0, BODY_START, buf.length) !== buf.readUInt32LE(OFF_CRC)) fail(ErrorCode.FRAME_BAD_CHECKSUM, 'frame checksum does not match its body')
  // The header is long enough and carries the magic (checked above), so it is readable.
  const { epoch, sequence } = batchIdentity(buf)!
  if (!Number.isSafeInteger(sequence)) fail(ErrorCode.FRAME_BAD_FIELD, 'batch sequence is above 2^53-1')
  const count = buf.readUInt32LE(OFF_RECORD_COUNT)
  if (count === 0) fail(ErrorCode.FRAME_BAD_FIELD, 'batch holds no records')
  // Each record takes at least its header, so a count the payload cannot hold is refused before allocating.
  if (count > (buf.length - HEADER_SIZE) / RECORD_HEADER_SIZE) fail(ErrorCode.FRAME_TRUNCATED, `record count ${count} cannot fit in ${buf.length} bytes`)
  const times = new Float64Array(count)
  const fields = new Uint32Array(count * BATCH_STRIDE)
  let at = HEADER_SIZE
  for (let i = 0; i < count; i++) {
    if (at + RECORD_HEADER_SIZE > buf.length) fail(ErrorCode.FRAME_TRUNCATED, `record ${i} header runs past the end of the frame`)
    const flags = buf[at + REC_OFF_FLAGS]!
    const keyLength = buf.readUInt16LE(at + REC_OFF_KEY_LENGTH)
    const dataLength = buf.readUInt32LE(at + REC_OFF_DATA_LENGTH)
    const producerTimeMs = buf.readDoubleLE(at + REC_OFF_TIME)
    if (flags & ~(RecordFlag.clockSynced | RecordFlag.explicitHashKey)) fail(ErrorCode.FRAME_BAD_FIELD, `record ${i} has unknown flags 0x${flags.toString(16)}`)
    if (keyLength > MAX_KEY_BYTES) fail(ErrorCode.FRAME_BAD_FIELD, `record ${i} partition key is ${keyLength} bytes, over ${MAX_KEY_BYTES}`)
    if (dataLength > MAX_FRAME_DATA) fail(ErrorCode.FRAME_BAD_FIELD, `record ${i} data length ${dataLength} is beyond any acceptable record`)
    if (!Number.isFinite(producerTimeMs)) fail(ErrorCode.FRAME_BAD_FIELD, `record ${i} producer time is not a finite number`)
    at += RECORD_HEADER_SIZE
    let hashAt = 0
    if (flags & RecordFlag.explicitHashKey) {
      if (at + HASH_KEY_SIZE > buf.length) fail(ErrorCode.FRAME_TRUNCATED, `record ${i} hash key runs past the end of the frame`)
      hashAt = at
      at += HASH_KEY_SIZE
    }
    if (at + keyLength + dataLength > buf.length) fail(ErrorCode.FRAME_TRUNCATED, `record ${i} runs past the end of the frame`)
    const f = i * BATCH_STRIDE
    fields[f + BATCH_KEY_START] = at
    fields[f + BATCH_KEY_LENGTH] = keyLength
    fields[f + BATCH_DATA_START] = at + keyLength
    fields[f + BATCH_DATA_LENGTH] = dataLength
    fields[f + BATCH_FLAGS] = flags | (keyIsValidUtf8(buf, at, keyLength) ? KEY_VALID_UTF8 : 0)
    fields[f + BATCH_HASH_KEY_AT] = hashAt
    times[i] = producerTimeMs
    at += keyLength + dataLength
  }
  if (at !== buf.length) fail(ErrorCode.FRAME_BAD_FIELD, `${buf.length - at} bytes follow the last record`)
  return { epoch, sequence, times, fields }
}

/**
 * A frame's producer epoch and batch sequence, read from its header, or null when the header is
 * unreadable (shorter than a header, or not a batch frame's magic). Nothing else is checked: a
 * sequence above 2^53-1 comes back inexact, for the caller to refuse.
 */
export function batchIdentity(buf: Buffer): BatchIdentity | null {
  if (buf.length < HEADER_SIZE || buf[OFF_MAGIC] !== FRAME_MAGIC_0 || buf[OFF_MAGIC + 1] !== FRAME_MAGIC_1) return null
  return headerIdentity(buf)
}

function headerIdentity(buf: Buffer): BatchIdentity {
  return { epoch: buf.readBigUInt64LE(OFF_EPOCH), sequence: readU64(buf, OFF_BATCH_SEQ) }
}

/** The decoder can only see a bad sequence once it has become U+FFFD, so a real U+FFFD counts too. */
function keyIsValidUtf8(buf: Buffer, at: number, length: number): boolean {
  let ascii = true
  for (let i = at; i < at + length; i++) if (buf[i]! >= 0x80) { ascii = false; break }
  if (ascii) return true
  const key = buf.toString('utf8', at, at + length)
  return Buffer.byteLength(key) === length && !key.includes('\ufffd')
}

/** Decodes a batch frame into one object per record (for tests and tools; ingest uses the table). */
export function decodeBatch(buf: Buffer, checksum: (buf: Uint8Array, initial: number, start: number, end: number) => number = crc32c): DecodedBatch {
  return batchRecords(buf, scanBatch(buf, checksum))
}

export function batchRecords(buf: Buffer, scan: BatchScan): DecodedBatch {
  const view = new BatchView(buf, scan)
  const records: DecodedRecord[] = new Array(view.count)
  for (let i = 0; i < view.count; i++) {
    const hashAt = view.hashKeyAt(i)
    records[i] = {
      partitionKey: view.partitionKey(i),
      keyValidUtf8: view.keyIsValidUtf8(i),
      data: view.data(i),
      explicitHashKey: hashAt ? u128BEToBigint(buf, hashAt) : undefined,
      producerTimeMs: view.producerTimeMs(i),
      clockSynced: (view.flags(i) & RecordFlag.clockSynced) !== 0,
    }
  }
  return { epoch: scan.epoch, sequence: scan.sequence, records }
}

/** Base64 digits' values; 64 for '='; 255 for anything else. */
const B64_VALUES = new Uint8Array(256).fill(255)
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => { B64_VALUES[c.charCodeAt(0)] = i })
B64_VALUES[0x3d] = 64

/**
 * Decodes ranges `[ranges[2i], ranges[2i+1])` of `src`, each canonical padded base64 (a multiple of 4,
 * the standard alphabet, at most two '=' at the end, no stray bits in the last digit), one after
 * another into `out`. Returns the bytes written, or -(i+1) when range i is not canonical base64 or
 * `out` has no room for it.
 */
export function base64DecodeRanges(src: Uint8Array, ranges: Uint32Array, out: Uint8Array): number {
  const T = B64_VALUES
  let o = 0
  for (let r = 0; r < ranges.length; r += 2) {
    const start = ranges[r]!
    const end = ranges[r + 1]!
    if (start > end || end > src.length) throw new RangeError('base64DecodeRanges: a range lies outside src')
    const n = end - start
    const pads = n >= 2 && src[end - 1] === 0x3d ? (src[end - 2] === 0x3d ? 2 : 1) : 0
    if (n % 4 || (n / 4) * 3 - pads > out.length - o) return -(r / 2) - 1
    const whole = pads ? n - 4 : n
    for (let j = start; j < start + whole; j += 4) {
      const v0 = T[src[j]!]!, v1 = T[src[j + 1]!]!, v2 = T[src[j + 2]!]!, v3 = T[src[j + 3]!]!
      // Any value ≥ 64 ('=' or a byte outside the alphabet) sets bit 6 or 7.
      if ((v0 | v1 | v2 | v3) & 0xc0) return -(r / 2) - 1
      const v = (v0 << 18) | (v1 << 12) | (v2 << 6) | v3
      out[o++] = v >> 16
      out[o++] = (v >> 8) & 0xff
      out[o++] = v & 0xff
    }
    if (pads) {
      const j = start + whole
      const v0 = T[src[j]!]!, v1 = T[src[j + 1]!]!
      if ((v0 | v1) & 0xc0) return -(r / 2) - 1
      if (pads === 2) {
        if (v1 & 0x0f) return -(r / 2) - 1
        out[o++] = (v0 << 2) | (v1 >> 4)
      } else {
        const v2 = T[src[j + 2]!]!
        if (v2 & 0xc0 || v2 & 0x03) return -(r / 2) - 1
        out[o++] = (v0 << 2) | (v1 >> 4)
        out[o++] = ((v1 & 0x0f) << 4) | (v2 >> 2)
      }
    }
  }
  return o
}

/**
 * The shard slot of each record of a scanned batch: MD5 of its key (or its explicit hash key) against
 * `bounds`, the open shards' starting hash keys as ascending 16-byte big-endian values.
 */
export function hashRoute(buf: Buffer, fields: Uint32Array, bounds: Uint8Array): Uint16Array {
  const n = fields.length / BATCH_STRIDE
  const slots = new Uint16Array(n)
  const shards = bounds.length / 16
  const b = Buffer.from(bounds.buffer, bounds.byteOffset, bounds.length)
  for (let i = 0; i < n; i++) {
    const f = i * BATCH_STRIDE
    const hashAt = fields[f + BATCH_HASH_KEY_AT]!
    const keyAt = fields[f + BATCH_KEY_START]!
    const hash = hashAt
      ? buf.subarray(hashAt, hashAt + HASH_KEY_SIZE)
      : createHash('md5').update(buf.subarray(keyAt, keyAt + fields[f + BATCH_KEY_LENGTH]!)).digest()
    let lo = 0
    let hi = shards - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (b.compare(hash, 0, 16, mid * 16, mid * 16 + 16) <= 0) lo = mid
      else hi = mid - 1
    }
    slots[i] = lo
  }
  return slots
}

/** Bytes the chosen records of a scanned batch take as log records. */
export function logBatchSize(fields: Uint32Array, indices: Uint32Array, deviceLength: number): number {
  let size = 0
  for (let j = 0; j < indices.length; j++) {
    const f = indices[j]! * BATCH_STRIDE
    size += LOG_HEADER_SIZE + fields[f + BATCH_KEY_LENGTH]! + deviceLength + fields[f + BATCH_DATA_LENGTH]!
  }
  return size
}

/**
 * Writes the chosen records of a scanned batch at `out[at]` as log records numbered from
 * `firstOffset`, each carrying the device's identity; `positions` receives where each starts
 * (relative to `at`). Returns the bytes written.
 */
export function encodeLogBatch(out: Buffer, at: number, frame: Buffer, fields: Uint32Array, times: Float64Array,
  indices: Uint32Array, firstOffset: number, arrivalMs: number, device: Buffer, positions: Uint32Array,
  checksum: (buf: Uint8Array, initial: number, start: number, end: number) => number = crc32c): number {
  const { epoch, sequence } = headerIdentity(frame)
  const view = new BatchView(frame, { fields, times })
  const begin = at
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j]!
    const keyLength = view.keyLength(i)
    const dataLength = view.dataLength(i)
    const length = LOG_HEADER_SIZE + keyLength + device.length + dataLength
    positions[j] = at - begin
    out.writeUInt32LE(length, at + LOG_OFF_LENGTH)
    writeU64(out, firstOffset + j, at + LOG_OFF_OFFSET)
    out.writeDoubleLE(arrivalMs, at + LOG_OFF_ARRIVAL)
    out.writeDoubleLE(view.producerTimeMs(i), at + LOG_OFF_PRODUCER_TIME)
    out[at + LOG_OFF_FLAGS] = (view.flags(i) & (RecordFlag.clockSynced | RecordFlag.explicitHashKey)) | LogFlag.fromDevice
    out[at + LOG_OFF_FLAGS + 1] = 0
    out.writeUInt16LE(keyLength, at + LOG_OFF_KEY_LENGTH)
    out.writeUInt16LE(device.length, at + LOG_OFF_DEVICE_LENGTH)
    out.writeUInt16LE(i, at + LOG_OFF_BATCH_INDEX)
    out.writeBigUInt64LE(epoch, at + LOG_OFF_EPOCH)
    writeU64(out, sequence, at + LOG_OFF_BATCH_SEQ)
    out.fill(0, at + 56, at + LOG_HEADER_SIZE)
    const keyAt = view.keyStart(i)
    const dataAt = view.dataStart(i)
    frame.copy(out, at + LOG_HEADER_SIZE, keyAt, keyAt + keyLength)
    device.copy(out, at + LOG_HEADER_SIZE + keyLength)
    frame.copy(out, at + LOG_HEADER_SIZE + keyLength + device.length, dataAt, dataAt + dataLength)
    out.writeUInt32LE(checksum(out, 0, at + LOG_CRC_START, at + length), at + LOG_OFF_CRC)
    at += length
  }
  return at - begin
}

// ---- log records ----

const EMPTY = Buffer.alloc(0)

export function logRecordSize(input: LogRecordInput): number {
  return LOG_HEADER_SIZE + Buffer.byteLength(input.partitionKey) + (input.device ? Buffer.byteLength(input.device) : 0) + input.data.length
}

/** Writes one log record at `at` of `buf` (which must have room) and returns its length. */
export function encodeLogRecord(buf: Buffer, at: number, offset: number, arrivalMs: number, input: LogRecordInput,
  checksum: (buf: Uint8Array, initial: number, start: number, end: number) => number = crc32c): number {
  const key = input.partitionKey
  const device = input.device
  const data = input.data
  const keyLength = writeText(buf, key, at + LOG_HEADER_SIZE)
  const deviceLength = device ? writeText(buf, device, at + LOG_HEADER_SIZE + keyLength) : 0
  const batchIndex = input.batchIndex ?? 0
  const epoch = input.epoch ?? 0n
  // The header's fields are written byte by byte, which would wrap what Buffer's writers refused.
  if (keyLength > 0xffff || deviceLength > 0xffff || batchIndex > 0xffff || batchIndex < 0 || epoch < 0n || epoch >= 1n << 64n) {
    throw new RangeError(`a log record's key (${keyLength} bytes), device (${deviceLength} bytes), batch index (${batchIndex}) or epoch (${epoch}) does not fit its header field`)
  }
  const dataAt = at + LOG_HEADER_SIZE + keyLength + deviceLength
  setBytes(buf, data, dataAt)
  const length = dataAt + data.length - at
  // The header byte by byte: Buffer's write methods are each a call with range checks, and on this path
  // V8 loads every one of them through its generic handler (callgrind: `Builtins_LoadIC`).
  putU32(buf, at + LOG_OFF_LENGTH, length)
  putU32(buf, at + LOG_OFF_OFFSET, offset % 0x1_0000_0000)
  putU32(buf, at + LOG_OFF_OFFSET + 4, Math.floor(offset / 0x1_0000_0000))
  putF64(buf, at + LOG_OFF_ARRIVAL, arrivalMs)
  putF64(buf, at + LOG_OFF_PRODUCER_TIME, input.producerTimeMs)
  buf[at + LOG_OFF_FLAGS] = input.flags
  buf[at + LOG_OFF_FLAGS + 1] = 0
  putU16(buf, at + LOG_OFF_KEY_LENGTH, keyLength)
  putU16(buf, at + LOG_OFF_DEVICE_LENGTH, deviceLength)
  putU16(buf, at + LOG_OFF_BATCH_INDEX, batchIndex)
  putU32(buf, at + LOG_OFF_EPOCH, Number(epoch & 0xffff_ffffn))
  putU32(buf, at + LOG_OFF_EPOCH + 4, Number(epoch >> 32n))
  const sequence = input.batchSequence ?? 0
  putU32(buf, at + LOG_OFF_BATCH_SEQ, sequence % 0x1_0000_0000)
  putU32(buf, at + LOG_OFF_BATCH_SEQ + 4, Math.floor(sequence / 0x1_0000_0000))
  for (let i = at + 56; i < at + LOG_HEADER_SIZE; i++) buf[i] = 0
  putU32(buf, at + LOG_OFF_CRC, checksum(buf, 0, at + LOG_CRC_START, at + length))
  return length
}

/** Writes `text` as UTF-8 at `at`: plain ASCII by hand (a key is short), anything else by Buffer's encoder. */
function writeText(buf: Buffer, text: string, at: number): number {
  const n = text.length
  if (n > 64) return buf.write(text, at, 'utf8')
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0x80) return buf.write(text, at, 'utf8')
    buf[at + i] = c
  }
  return n
}

const putU16 = (buf: Uint8Array, at: number, value: number) => {
  buf[at] = value & 0xff
  buf[at + 1] = (value >>> 8) & 0xff
}
const putU32 = (buf: Uint8Array, at: number, value: number) => {
  buf[at] = value & 0xff
  buf[at + 1] = (value >>> 8) & 0xff
  buf[at + 2] = (value >>> 16) & 0xff
  buf[at + 3] = (value >>> 24) & 0xff
}
const putF64 = (buf: Uint8Array, at: number, value: number) => {
  F64[0] = value
  if (BIG_ENDIAN) for (let i = 0; i < 8; i++) buf[at + i] = F64_BYTES[7 - i]!
  else for (let i = 0; i < 8; i++) buf[at + i] = F64_BYTES[i]!
}

/**
 * Walks the log records in `buf[start, end)`, verifying each checksum. Stops at the first record
 * that is incomplete (a torn tail) or damaged, and says which; offsets are where each good record
 * begins. `expectedOffset`, when given, must match the first record's offset and then count up.
 */
export function scanLog(buf: Buffer, start = 0, end = buf.length, expectedOffset = -1): LogScan {
  const positions: number[] = []
  let at = start
  let next = expectedOffset
  while (at < end) {
    if (end - at < LOG_HEADER_SIZE) return { positions, end: at, stop: 'torn' }
    const length = buf.readUInt32LE(at + LOG_OFF_LENGTH)
    if (length < LOG_HEADER_SIZE || length > LOG_MAX_FRAME) return { positions, end: at, stop: 'damaged' }
    if (end - at < length) return { positions, end: at, stop: 'torn' }
    if (crc32c(buf, 0, at + LOG_CRC_START, at + length) !== buf.readUInt32LE(at + LOG_OFF_CRC)) return { positions, end: at, stop: 'damaged' }
    const offset = readU64(buf, at + LOG_OFF_OFFSET)
    if (next >= 0 && offset !== next) return { positions, end: at, stop: 'damaged' }
    next = offset + 1
    positions.push(at)
    at += length
  }
  return { positions, end: at, stop: 'end' }
}

/** Reads the record at `at`; the caller has verified it with scanLog or trusts the index. */
export function decodeLogRecord(buf: Buffer, at: number): LogRecord {
  const length = getU32(buf, at + LOG_OFF_LENGTH)
  const keyLength = getU16(buf, at + LOG_OFF_KEY_LENGTH)
  const deviceLength = getU16(buf, at + LOG_OFF_DEVICE_LENGTH)
  const keyAt = at + LOG_HEADER_SIZE
  const dataAt = keyAt + keyLength + deviceLength
  const epochLow = getU32(buf, at + LOG_OFF_EPOCH)
  const epochHigh = getU32(buf, at + LOG_OFF_EPOCH + 4)
  return {
    offset: readU64(buf, at + LOG_OFF_OFFSET),
    arrivalMs: getF64(buf, at + LOG_OFF_ARRIVAL),
    producerTimeMs: getF64(buf, at + LOG_OFF_PRODUCER_TIME),
    flags: buf[at + LOG_OFF_FLAGS]!,
    partitionKey: buf.toString('utf8', keyAt, keyAt + keyLength),
    device: deviceLength ? buf.toString('utf8', keyAt + keyLength, dataAt) : '',
    epoch: epochHigh === 0 && epochLow === 0 ? 0n : (BigInt(epochHigh) << 32n) | BigInt(epochLow),
    batchSequence: readU64(buf, at + LOG_OFF_BATCH_SEQ),
    batchIndex: getU16(buf, at + LOG_OFF_BATCH_INDEX),
    data: length > dataAt - at ? viewOf(buf, dataAt, at + length) : EMPTY,
  }
}

export function readLogOffset(buf: Buffer, at: number): number {
  return readU64(buf, at + LOG_OFF_OFFSET)
}
export function readLogArrival(buf: Buffer, at: number): number {
  return getF64(buf, at + LOG_OFF_ARRIVAL)
}
export function readLogLength(buf: Buffer, at: number): number {
  return getU32(buf, at + LOG_OFF_LENGTH)
}
