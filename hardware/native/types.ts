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
  logRecordSize(input: LogRecordInput): number
  encodeLogRecord(buf: Buffer, at: number, offset: number, arrivalMs: number, input: LogRecordInput): number
  scanLog(buf: Buffer, start?: number, end?: number, expectedOffset?: number): LogScan
  decodeLogRecord(buf: Buffer, at: number): LogRecord
}
