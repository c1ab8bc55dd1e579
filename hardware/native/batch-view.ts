/**
 * Named reads of a scanned batch frame's table (see BATCH_STRIDE in ./types.ts), so no caller
 * indexes `fields` by bare number. Called per record on the ingest path: each accessor is one
 * typed-array read on fields fixed at construction, which V8 inlines.
 */
import {
  BATCH_DATA_LENGTH, BATCH_DATA_START, BATCH_FLAGS, BATCH_HASH_KEY_AT, BATCH_KEY_LENGTH, BATCH_KEY_START, BATCH_STRIDE,
  KEY_VALID_UTF8, type BatchScan,
} from './types.js'

// Module-local copies: V8 folds a module's own constants, but loads an imported binding at each use
// (about 1 ns per read, measured in the ingest loop).
const STRIDE = BATCH_STRIDE
const KEY_START = BATCH_KEY_START
const KEY_LENGTH = BATCH_KEY_LENGTH
const DATA_START = BATCH_DATA_START
const DATA_LENGTH = BATCH_DATA_LENGTH
const FLAGS = BATCH_FLAGS
const HASH_KEY_AT = BATCH_HASH_KEY_AT
const VALID_UTF8 = KEY_VALID_UTF8

export class BatchView {
  readonly frame: Buffer
  readonly fields: Uint32Array
  readonly times: Float64Array
  /** Records in the batch. */
  readonly count: number

  constructor(frame: Buffer, scan: Pick<BatchScan, 'fields' | 'times'>) {
    this.frame = frame
    this.fields = scan.fields
    this.times = scan.times
    this.count = scan.times.length
  }

  /** Where record i's partition key starts in the frame. */
  keyStart(i: number): number {
    return this.fields[i * STRIDE + KEY_START]!
  }

  /** Record i's partition key length in bytes. */
  keyLength(i: number): number {
    return this.fields[i * STRIDE + KEY_LENGTH]!
  }

  /** Where record i's data starts in the frame. */
  dataStart(i: number): number {
    return this.fields[i * STRIDE + DATA_START]!
  }

  /** Record i's data length in bytes. */
  dataLength(i: number): number {
    return this.fields[i * STRIDE + DATA_LENGTH]!
  }

  /** Record i's frame flags (RecordFlag) with KEY_VALID_UTF8 added by the scan. */
  flags(i: number): number {
    return this.fields[i * STRIDE + FLAGS]!
  }

  keyIsValidUtf8(i: number): boolean {
    return (this.fields[i * STRIDE + FLAGS]! & VALID_UTF8) !== 0
  }

  /** Where record i's 16-byte explicit hash key starts in the frame; 0 when it has none. */
  hashKeyAt(i: number): number {
    return this.fields[i * STRIDE + HASH_KEY_AT]!
  }

  /** Record i's producer time (ms). */
  producerTimeMs(i: number): number {
    return this.times[i]!
  }

  /** Record i's partition key as a string (invalid UTF-8 becomes U+FFFD: check keyIsValidUtf8 first). */
  partitionKey(i: number): string {
    const at = this.fields[i * STRIDE + KEY_START]!
    return this.frame.toString('utf8', at, at + this.fields[i * STRIDE + KEY_LENGTH]!)
  }

  /** Record i's data, a view into the frame (no copy). */
  data(i: number): Buffer {
    const at = this.fields[i * STRIDE + DATA_START]!
    return this.frame.subarray(at, at + this.fields[i * STRIDE + DATA_LENGTH]!)
  }
}
