/**
 * The loader: the C addon (built by `npm install` with node-gyp-build from ./binding.gyp) when it
 * loads, else the TypeScript fallback, and it says which runs and why. `TRIBUTARY_NATIVE=0` forces
 * the fallback. The addon is used only above the input sizes where crossing into C pays
 * (measured by bench/native.ts; below them JavaScript is as fast or faster).
 */
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as js from './fallback.js'
import { FrameError, ErrorCode } from '../../shared/errors.js'
import { HEADER_SIZE, OFF_RECORD_COUNT, type Batch } from '../../shared/frame.js'
import type { BatchScan, Codec, LogScan } from './types.js'

export type { BatchIdentity, BatchScan, Codec, DecodedBatch, DecodedRecord, LogScan } from './types.js'
export {
  BATCH_DATA_LENGTH, BATCH_DATA_START, BATCH_FLAGS, BATCH_HASH_KEY_AT, BATCH_KEY_LENGTH, BATCH_KEY_START, BATCH_STRIDE, KEY_VALID_UTF8,
} from './types.js'
export { BatchView } from './batch-view.js'
export { u128BEToBigint, readLogOffset, readLogArrival, readLogLength, logBatchSize, batchIdentity } from './fallback.js'

/** Bytes below which CRC-32C stays in JavaScript (bench/native.ts). */
export const NATIVE_CRC_MIN_BYTES = 128
/** Keys below which MD5 stays in JavaScript. */
export const NATIVE_MD5_MIN_KEYS = 1
/**
 * Records below which a batch frame is encoded in JavaScript: all of them. Reading each record's
 * fields through N-API costs more than JavaScript's own walk (bench/native.ts: the addon's encoder
 * runs at 0.3-0.75x), so encoding stays in JavaScript with the addon's CRC-32C.
 */
export const NATIVE_ENCODE_MIN_RECORDS = Number.POSITIVE_INFINITY
/** Records below which a batch frame is scanned in JavaScript (the addon pays from 4 records). */
export const NATIVE_SCAN_BATCH_MIN_RECORDS = 4
/** Bytes of log below which the scan stays in JavaScript. */
export const NATIVE_SCAN_MIN_BYTES = 2048

export interface Addon {
  crc32c(buf: Uint8Array, initial: number, start: number, end: number): number
  md5Many(keys: readonly string[]): Buffer
  scanLog(buf: Uint8Array, start: number, end: number, expected: number): [Uint32Array, number, number]
  scanBatch(frame: Uint8Array): [Float64Array, Uint32Array] | number
  encodeBatch(batch: Batch): Buffer
  hashRoute(frame: Uint8Array, fields: Uint32Array, bounds: Uint8Array): Uint16Array
  base64DecodeRanges(src: Uint8Array, ranges: Uint32Array, out: Uint8Array): number
  encodeLogBatch(out: Uint8Array, at: number, frame: Uint8Array, fields: Uint32Array, times: Float64Array, indices: Uint32Array,
    firstOffset: number, arrivalMs: number, device: Uint8Array, positions: Uint32Array): number
  crc32cImplementation: string
}

const STOPS = ['end', 'torn', 'damaged'] as const

function fallback(reason: string): Codec {
  return {
    implementation: 'js',
    reason,
    crc32c: js.crc32c,
    md5Many: js.md5Many,
    encodeBatch: js.encodeBatch,
    decodeBatch: js.decodeBatch,
    scanBatch: js.scanBatch,
    hashRoute: js.hashRoute,
    base64DecodeRanges: js.base64DecodeRanges,
    encodeLogBatch: js.encodeLogBatch,
    logRecordSize: js.logRecordSize,
    encodeLogRecord: js.encodeLogRecord,
    scanLog: js.scanLog,
    decodeLogRecord: js.decodeLogRecord,
  }
}

function native(addon: Addon): Codec {
  const crc32c = (buf: Uint8Array, initial = 0, start = 0, end = buf.length) =>
    end - start >= NATIVE_CRC_MIN_BYTES ? addon.crc32c(buf, initial, start, end) : js.crc32c(buf, initial, start, end)
  const scanLog = (buf: Buffer, start = 0, end = buf.length, expectedOffset = -1): LogScan => {
    if (end - start < NATIVE_SCAN_MIN_BYTES) return js.scanLog(buf, start, end, expectedOffset)
    const [positions, stopAt, stop] = addon.scanLog(buf, start, end, expectedOffset)
    return { positions, end: stopAt, stop: STOPS[stop] ?? 'damaged' }
  }
  const scanBatch = (buf: Buffer): BatchScan => {
    // The record count is read unverified here only to choose; the chosen scan verifies everything.
    if (buf.length < HEADER_SIZE || buf.readUInt32LE(OFF_RECORD_COUNT) < NATIVE_SCAN_BATCH_MIN_RECORDS) return js.scanBatch(buf, crc32c)
    const scanned = addon.scanBatch(buf)
    if (typeof scanned === 'number') {
      // The fallback walks the same rules and throws the FrameError with its full message.
      js.scanBatch(buf, crc32c)
      throw new FrameError(ErrorCode.FRAME_BAD_FIELD, `the native and TypeScript frame scans disagree (kind ${scanned})`)
    }
    // The addon verified the header, so it is readable.
    return { ...js.batchIdentity(buf)!, times: scanned[0], fields: scanned[1] }
  }
  return {
    ...fallback(''),
    implementation: 'native',
    reason: `the C addon is loaded (CRC-32C by ${addon.crc32cImplementation})`,
    crc32c,
    md5Many: (keys) => (keys.length >= NATIVE_MD5_MIN_KEYS ? addon.md5Many(keys) : js.md5Many(keys)),
    scanLog,
    scanBatch,
    decodeBatch: (buf) => js.batchRecords(buf, scanBatch(buf)),
    encodeBatch: (batch) => (batch.records.length >= NATIVE_ENCODE_MIN_RECORDS ? addon.encodeBatch(batch) : js.encodeBatch(batch, crc32c)),
    hashRoute: (frame, fields, bounds) => addon.hashRoute(frame, fields, bounds),
    base64DecodeRanges: (src, ranges, out) => addon.base64DecodeRanges(src, ranges, out),
    encodeLogBatch: (out, at, frame, fields, times, indices, firstOffset, arrivalMs, device, positions) =>
      addon.encodeLogBatch(out, at, frame, fields, times, indices, firstOffset, arrivalMs, device, positions),
    encodeLogRecord: (buf, at, offset, arrivalMs, input) => js.encodeLogRecord(buf, at, offset, arrivalMs, input, crc32c),
  }
}

/** The folder holding binding.gyp, from the sources or from dist/. */
function addonDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url))
  for (const candidate of [here, join(here, '..', '..', '..', 'hardware', 'native')]) {
    if (existsSync(join(candidate, 'binding.gyp'))) return candidate
  }
  return null
}

/** The raw addon, for tests and benchmarks that compare it with the fallback directly. */
export function loadAddon(): Addon {
  const dir = addonDir()
  if (!dir) throw new Error('hardware/native/binding.gyp not found')
  const require = createRequire(import.meta.url)
  const load = require('node-gyp-build') as (dir: string) => Addon
  return load(dir)
}

export function loadCodec(env: NodeJS.ProcessEnv = process.env, warn: (line: string) => void = (l) => process.stderr.write(l + '\n')): Codec {
  if (env.TRIBUTARY_NATIVE === '0') return fallback('TRIBUTARY_NATIVE=0 forces the TypeScript implementation')
  try {
    return native(loadAddon())
  } catch (err) {
    const reason = `the native addon is not available (${(err as Error).message.split('\n')[0]}); using the TypeScript implementation`
    warn(`tributary: ${reason}`)
    return fallback(reason)
  }
}

/** The codec every module uses unless a test passes another. */
export const codec: Codec = loadCodec()
