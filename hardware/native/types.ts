import type { Batch, BatchRecord } from '../../shared/frame.js'
import type { LogRecord, LogRecordInput } from '../../shared/logframe.js'

export interface DecodedRecord extends BatchRecord {
  data: Buffer
  /** False when the key's bytes were not valid UTF-8 (the record is then rejected, not the batch). */
  keyValidUtf8: boolean
}

export interface DecodedBatch {
  epoch: bigint
  sequence: number
  records: DecodedRecord[]
}

/**
 * A BatchScan's table: BATCH_STRIDE u32 fields per record, record i at `i * BATCH_STRIDE`.
 *
 * | field            | holds                                                     |
 * |------------------|-----------------------------------------------------------|
 * | BATCH_KEY_START  | where the partition key starts in the frame               |
 * | BATCH_KEY_LENGTH | the partition key's length in bytes                       |
 * | BATCH_DATA_START | where the data starts in the frame                        |
 * | BATCH_DATA_LENGTH| the data's length in bytes                                |
 * | BATCH_FLAGS      | the record's frame flags, plus KEY_VALID_UTF8             |
 * | BATCH_HASH_KEY_AT| where the 16-byte explicit hash key starts, 0 when none   |
 *
 * The C addon writes the same table (hardware/native/src/batch.c); read it through BatchView.
 */
export const BATCH_KEY_START = 0
export const BATCH_KEY_LENGTH = 1
export const BATCH_DATA_START = 2
export const BATCH_DATA_LENGTH = 3
export const BATCH_FLAGS = 4
export const BATCH_HASH_KEY_AT = 5
export const BATCH_STRIDE = 6
/** Set in a record's flags field when its key is valid UTF-8 (a record with an invalid key is refused, not its batch). */
export const KEY_VALID_UTF8 = 0x100

/** Who sent a batch: its producer epoch and batch sequence, from the frame's header. */
export interface BatchIdentity {
  epoch: bigint
  sequence: number
}

/** A verified batch frame as a table, one row per record (no object per record). */
export interface BatchScan extends BatchIdentity {
  /** Each record's producer time. Its length is the record count. */
  times: Float64Array
  /** BATCH_STRIDE fields per record, positions relative to the frame; hash key position 0 means none. */
  fields: Uint32Array
}

/** The result of walking a region of a log: where each good record starts and why the walk stopped. */
export interface LogScan {
  /** Where each good record starts (a number[] from TypeScript, a Uint32Array from the addon). */
  positions: ArrayLike<number> & Iterable<number>
  /** Byte position just past the last good record. */
  end: number
  stop: 'end' | 'torn' | 'damaged'
}

/**
 * The hot path, as one interface: the C addon and the TypeScript fallback both implement it and
 * must agree byte for byte.
 */
export interface Codec {
  readonly implementation: 'native' | 'js'
  /** Why this implementation was chosen. */
  readonly reason: string
  crc32c(buf: Uint8Array, initial?: number, start?: number, end?: number): number
  md5Many(keys: readonly string[]): Buffer
  encodeBatch(batch: Batch): Buffer
  decodeBatch(buf: Buffer): DecodedBatch
  /** Finds and verifies every record of a batch in one call. */
  scanBatch(buf: Buffer): BatchScan
  /** The shard slot of each record: MD5 of its key, or its explicit hash key, against ascending 16-byte BE bounds. */
  hashRoute(frame: Buffer, fields: Uint32Array, bounds: Uint8Array): Uint16Array
  /** Decodes ranges (pairs of positions) of `src`, each canonical padded base64, one after another into `out`: the bytes written, or -(i+1) for a bad range i. */
  base64DecodeRanges(src: Uint8Array, ranges: Uint32Array, out: Uint8Array): number
  /** Writes chosen records of a scanned batch as log records; returns the bytes written. */
  encodeLogBatch(out: Buffer, at: number, frame: Buffer, fields: Uint32Array, times: Float64Array, indices: Uint32Array,
    firstOffset: number, arrivalMs: number, device: Buffer, positions: Uint32Array): number
  logRecordSize(input: LogRecordInput): number
  encodeLogRecord(buf: Buffer, at: number, offset: number, arrivalMs: number, input: LogRecordInput): number
  scanLog(buf: Buffer, start?: number, end?: number, expectedOffset?: number): LogScan
  decodeLogRecord(buf: Buffer, at: number): LogRecord
}
