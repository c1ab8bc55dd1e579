/**
 * JSON records to one Parquet file (hyparquet-writer): one column per configured column, every
 * column OPTIONAL so a missing field is null. A record that is not a JSON object, or that has a
 * value its column's type cannot hold, is left out and reported with Firehose's error code.
 *
 * Internal compression: UNCOMPRESSED, SNAPPY (the writer's own) and GZIP (zlib, handed to the
 * writer as its GZIP compressor): all three that Processing allows.
 */
import { gzipSync } from 'node:zlib'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { Column, OutputRecord } from '../types.js'
import { columnPath, parseObject, valueAt } from './fields.js'
import { RecordErrorCode } from './errors.js'
import type { FailedRecord } from './types.js'

type ColumnType = NonNullable<Column['type']>
type ParquetCompression = 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP'

/** A value the column cannot hold (a sentinel, so converting allocates nothing per value). */
const BAD: unique symbol = Symbol('bad value')

const INT32_MIN = -(2 ** 31)
const INT32_MAX = 2 ** 31 - 1
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const INTEGER_TEXT = /^-?\d{1,19}$/

/** hyparquet-writer's basic type for each column type; json is written as its JSON text in a string column. */
const WRITER_TYPE = {
  string: 'STRING',
  int32: 'INT32',
  int64: 'INT64',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  'timestamp-millis': 'TIMESTAMP',
  json: 'STRING',
} as const satisfies Record<ColumnType, string>

type Convert = (value: unknown) => unknown

/**
 * From a JSON value to what the writer takes, or BAD. Like Hive's JSON SerDe: numbers and
 * booleans are accepted as text in a string column; integer text in integer columns; a timestamp
 * is epoch milliseconds or a date-time string.
 */
const CONVERT: Record<ColumnType, Convert> = {
  string: (v) => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : BAD),
  int32: (v) => {
    const n = typeof v === 'string' && INTEGER_TEXT.test(v) ? Number(v) : v
    return typeof n === 'number' && Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX ? n : BAD
  },
  int64: (v) => {
    if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : BAD
    if (typeof v === 'string' && INTEGER_TEXT.test(v)) {
      const n = BigInt(v)
      return n >= INT64_MIN && n <= INT64_MAX ? n : BAD
    }
    return BAD
  },
  double: (v) => (typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : BAD),
  boolean: (v) => (typeof v === 'boolean' ? v : BAD),
  'timestamp-millis': (v) => {
    if (typeof v === 'number') return Number.isSafeInteger(v) ? v : BAD
    if (typeof v === 'string') {
      const ms = Date.parse(v)
      return Number.isNaN(ms) ? BAD : ms
    }
    return BAD
  },
  json: (v) => JSON.stringify(v),
}

function describe(value: unknown): string {
  const text = JSON.stringify(value)
  return text.length > 64 ? `${text.slice(0, 61)}...` : text
}

export function encodeParquet(records: readonly OutputRecord[], columns: readonly Column[], compression: ParquetCompression): { body: Buffer; failed: FailedRecord[] } {
  const paths = columns.map(columnPath)
  const converts = columns.map((c) => CONVERT[c.type ?? 'string'])
  const data: unknown[][] = columns.map(() => [])
  const failed: FailedRecord[] = []
  const row: unknown[] = new Array(columns.length)
  records: for (const record of records) {
    const parsed = parseObject(record.data)
    if ('error' in parsed) {
      failed.push({ record, code: RecordErrorCode.malformedData, message: parsed.error })
      continue
    }
    for (let i = 0; i < columns.length; i++) {
      const value = valueAt(parsed.value, paths[i]!)
      if (value === undefined || value === null) {
        row[i] = null
        continue
      }
      const converted = converts[i]!(value)
      if (converted === BAD) {
        const column = columns[i]!
        failed.push({
          record,
          code: RecordErrorCode.malformedData,
          message: `column ${column.name} (${column.type ?? 'string'}) cannot hold ${describe(value)}`,
        })
        continue records
      }
      row[i] = converted
    }
    // The row is added only once every value converted, so the columns stay the same length.
    for (let i = 0; i < columns.length; i++) data[i]!.push(row[i])
  }
  const buffer = parquetWriteBuffer({
    columnData: columns.map((c, i) => ({ name: c.name, data: data[i]!, type: WRITER_TYPE[c.type ?? 'string'] })),
    codec: compression,
    compressors: { GZIP: (input: Uint8Array) => gzipSync(input) },
    // One row group: an object holds at most a buffer's worth of records (128 MiB at most).
    rowGroupSize: Math.max(1, data[0]?.length ?? 1),
    createdBy: 'tributary',
  })
  return { body: Buffer.from(buffer), failed }
}
