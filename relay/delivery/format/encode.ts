/**
 * One object from one batch's records: the format (raw, CSV, Parquet), then the object's
 * compression. Records a format cannot convert are left out and returned in `failed`.
 */
import { DeliveryConfigError } from '../types.js'
import type { Column, OutputRecord, Processing } from '../types.js'
import { encodeCsv } from './csv.js'
import { encodeParquet } from './parquet.js'
import { COMPRESSED, compressAsync, compressSync } from './compress.js'
import type { FailedRecord } from './types.js'

export interface EncodedObject {
  body: Buffer
  contentType: string
  /** Appended to the object key: '', '.gz', '.snappy' or '.parquet'. */
  extension: string
  failed: FailedRecord[]
}

const COLUMN_TYPES = new Set<string>(['string', 'int32', 'int64', 'double', 'boolean', 'timestamp-millis', 'json'])

function checkColumns(field: string, columns: readonly Column[]): void {
  if (columns.length === 0) throw new DeliveryConfigError(field, 'at least one column is needed')
  const seen = new Set<string>()
  columns.forEach((c, i) => {
    if (typeof c.name !== 'string' || c.name === '') throw new DeliveryConfigError(`${field}[${i}].name`, 'a column needs a name')
    if (seen.has(c.name)) throw new DeliveryConfigError(`${field}[${i}].name`, `column ${c.name} appears twice`)
    seen.add(c.name)
    const path = c.path ?? c.name
    if (path.split('.').some((step) => step === '')) throw new DeliveryConfigError(`${field}[${i}].path`, `"${path}" has an empty step`)
    if (c.type !== undefined && !COLUMN_TYPES.has(c.type)) {
      throw new DeliveryConfigError(`${field}[${i}].type`, `"${String(c.type)}" is not one of ${[...COLUMN_TYPES].join(', ')}`)
    }
  })
}

/** Whether encodeObject can work with these settings; a DeliveryConfigError names the field at fault. */
export function checkFormat(processing: Processing): void {
  const format = processing.format
  if (format.type === 'csv') checkColumns('processing.format.columns', format.columns)
  if (format.type === 'parquet') {
    checkColumns('processing.format.columns', format.columns)
    if (processing.compression !== 'UNCOMPRESSED') {
      throw new DeliveryConfigError('processing.compression', `Parquet compresses inside the file (format.compression); the object's compression must be UNCOMPRESSED, not ${processing.compression}`)
    }
    if (!['UNCOMPRESSED', 'SNAPPY', 'GZIP'].includes(format.compression)) {
      throw new DeliveryConfigError('processing.format.compression', `"${format.compression}" is not UNCOMPRESSED, SNAPPY or GZIP`)
    }
  }
  if (!['UNCOMPRESSED', 'GZIP', 'Snappy'].includes(processing.compression)) {
    throw new DeliveryConfigError('processing.compression', `"${processing.compression}" is not UNCOMPRESSED, GZIP or Snappy`)
  }
}

function raw(records: readonly OutputRecord[], newline: boolean): Buffer {
  let size = 0
  for (const r of records) size += r.data.length
  if (newline) size += records.length
  const out = Buffer.allocUnsafe(size)
  let at = 0
  for (const r of records) {
    at += r.data.copy(out, at)
    if (newline) out[at++] = 0x0a
  }
  return out
}

/** The format step alone: the uncompressed body, its content type, and the records left out. */
function format(records: readonly OutputRecord[], processing: Processing): { body: Buffer; contentType: string; failed: FailedRecord[] } {
  const f = processing.format
  switch (f.type) {
    case 'raw': return { body: raw(records, processing.newlineDelimiter), contentType: 'application/octet-stream', failed: [] }
    case 'csv': return { ...encodeCsv(records, f.columns, f.header), contentType: 'text/csv' }
    case 'parquet': return { ...encodeParquet(records, f.columns, f.compression), contentType: 'application/vnd.apache.parquet' }
  }
}

function finish(formatted: { contentType: string; failed: FailedRecord[] }, body: Buffer, processing: Processing): EncodedObject {
  if (processing.format.type === 'parquet') return { body, contentType: formatted.contentType, extension: '.parquet', failed: formatted.failed }
  const c = COMPRESSED[processing.compression]
  return { body, contentType: c.contentType ?? formatted.contentType, extension: c.extension, failed: formatted.failed }
}

/**
 * Formats then compresses one object (synchronously). Parquet files take their compression
 * inside and none at the object level (checkFormat refuses the rest). When every record failed,
 * the body is still a valid empty object of the format (a Parquet file of no rows); the caller
 * decides whether to write it.
 */
export function encodeObject(records: readonly OutputRecord[], processing: Processing): EncodedObject {
  const formatted = format(records, processing)
  const body = processing.format.type === 'parquet' ? formatted.body : compressSync(formatted.body, processing.compression)
  return finish(formatted, body, processing)
}

/** As encodeObject, with gzip off the event loop (libuv's thread pool). */
export async function encodeObjectAsync(records: readonly OutputRecord[], processing: Processing): Promise<EncodedObject> {
  const formatted = format(records, processing)
  const body = processing.format.type === 'parquet' ? formatted.body : await compressAsync(formatted.body, processing.compression)
  return finish(formatted, body, processing)
}
