/**
 * A delivery stream's config as a person writes it (the relay's delivery file) or as the Firehose API
 * maps it: checked field by field, with Firehose's defaults filled in. Everything past here trusts the
 * config. Also the relay's delivery file itself: buckets (S3 endpoints by bucket name), transforms
 * (modules by name) and declared delivery streams.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import {
  DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_INTERVAL_MS, DeliveryConfigError,
  type Column, type DeliverySource, type DeliveryStreamConfig, type ObjectTarget, type OutputFormat, type Processing, type SinkTarget,
} from './types.js'

export const DELIVERY_NAME = /^[a-zA-Z0-9_.-]{1,64}$/
const MIB = 1024 * 1024

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function obj(v: unknown, field: string): Obj {
  if (v === undefined) return {}
  if (!isObj(v)) throw new DeliveryConfigError(field, `must be an object, got ${JSON.stringify(v)}`)
  return v
}

function str(v: unknown, field: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback
  if (typeof v !== 'string') throw new DeliveryConfigError(field, `must be a string, got ${JSON.stringify(v)}`)
  return v
}

function optStr(v: unknown, field: string): string | undefined {
  return v === undefined ? undefined : str(v, field)
}

function int(v: unknown, field: string, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new DeliveryConfigError(field, `must be an integer, got ${JSON.stringify(v)}`)
  if (v < min || v > max) throw new DeliveryConfigError(field, `must be between ${min} and ${max}, got ${v}`)
  return v
}

function bool(v: unknown, field: string, fallback: boolean): boolean {
  if (v === undefined) return fallback
  if (typeof v !== 'boolean') throw new DeliveryConfigError(field, `must be true or false, got ${JSON.stringify(v)}`)
  return v
}

function oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new DeliveryConfigError(field, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`)
  return v as T
}

function url(v: unknown, field: string): string {
  const text = str(v, field)
  let parsed: URL
  try {
    parsed = new URL(text)
  } catch {
    throw new DeliveryConfigError(field, `is not a URL: ${JSON.stringify(text)}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DeliveryConfigError(field, `must be an http:// or https:// URL, got ${JSON.stringify(text)}`)
  return text
}

function source(v: unknown): DeliverySource {
  const o = obj(v, 'source')
  const type = oneOf(o.type, 'source.type', ['stream', 'direct'] as const, 'direct')
  if (type === 'direct') return { type, shards: int(o.shards, 'source.shards', 1, 1, 64) }
  const stream = str(o.stream, 'source.stream')
  const p = o.startingPosition
  let startingPosition: Extract<DeliverySource, { type: 'stream' }>['startingPosition'] = 'TRIM_HORIZON'
  if (p === 'TRIM_HORIZON' || p === 'LATEST') startingPosition = p
  else if (isObj(p)) startingPosition = { timestampMs: int(p.timestampMs, 'source.startingPosition.timestampMs', 0, 0, Number.MAX_SAFE_INTEGER) }
  else if (p !== undefined) throw new DeliveryConfigError('source.startingPosition', `must be TRIM_HORIZON, LATEST or {"timestampMs": …}, got ${JSON.stringify(p)}`)
  return { type, stream, startingPosition }
}

const COLUMN_TYPES = ['string', 'int32', 'int64', 'double', 'boolean', 'timestamp-millis', 'json'] as const

function columns(v: unknown, field: string): Column[] {
  if (!Array.isArray(v) || v.length === 0) throw new DeliveryConfigError(field, 'must be a non-empty list of columns ({"name", "path"?, "type"?})')
  const seen = new Set<string>()
  return v.map((c, i) => {
    const o = obj(c, `${field}[${i}]`)
    const name = str(o.name, `${field}[${i}].name`)
    if (!name || seen.has(name)) throw new DeliveryConfigError(`${field}[${i}].name`, `must be a non-empty name used once, got ${JSON.stringify(name)}`)
    seen.add(name)
    const path = optStr(o.path, `${field}[${i}].path`)
    return { name, ...(path !== undefined ? { path } : {}), type: oneOf(o.type, `${field}[${i}].type`, COLUMN_TYPES, 'string') }
  })
}

function format(v: unknown): OutputFormat {
  const o = obj(v, 'processing.format')
  const type = oneOf(o.type, 'processing.format.type', ['raw', 'csv', 'parquet'] as const, 'raw')
  if (type === 'raw') return { type }
  if (type === 'csv') return { type, columns: columns(o.columns, 'processing.format.columns'), header: bool(o.header, 'processing.format.header', true) }
  return { type, columns: columns(o.columns, 'processing.format.columns'), compression: oneOf(o.compression, 'processing.format.compression', ['UNCOMPRESSED', 'SNAPPY', 'GZIP'] as const, 'SNAPPY') }
}

function processing(v: unknown, transformExists: (name: string) => boolean): Processing {
  const o = obj(v, 'processing')
  const out: Processing = {
    format: format(o.format),
    newlineDelimiter: bool(o.newlineDelimiter, 'processing.newlineDelimiter', false),
    compression: oneOf(o.compression, 'processing.compression', ['UNCOMPRESSED', 'GZIP', 'Snappy'] as const, 'UNCOMPRESSED'),
  }
  if (out.format.type === 'parquet' && out.compression !== 'UNCOMPRESSED') {
    throw new DeliveryConfigError('processing.compression', 'Parquet output compresses inside the file (processing.format.compression); the object compression must be UNCOMPRESSED')
  }
  if (o.transform !== undefined) {
    const t = obj(o.transform, 'processing.transform')
    const name = str(t.name, 'processing.transform.name')
    if (!transformExists(name)) throw new DeliveryConfigError('processing.transform.name', `no transform ${JSON.stringify(name)} in the relay's delivery config (transforms)`)
    out.transform = { name, batchRecords: int(t.batchRecords, 'processing.transform.batchRecords', 1000, 1, 10_000), timeoutMs: int(t.timeoutMs, 'processing.transform.timeoutMs', 60_000, 1000, 900_000) }
  }
  if (o.partitioning !== undefined) {
    const p = obj(o.partitioning, 'processing.partitioning')
    const keys = obj(p.keys, 'processing.partitioning.keys')
    if (Object.keys(keys).length === 0) throw new DeliveryConfigError('processing.partitioning.keys', 'must name at least one key (name → jq expression)')
    for (const [k, expr] of Object.entries(keys)) {
      if (!/^[a-zA-Z0-9_]{1,64}$/.test(k)) throw new DeliveryConfigError(`processing.partitioning.keys.${k}`, 'key names are 1–64 characters of [a-zA-Z0-9_]')
      str(expr, `processing.partitioning.keys.${k}`)
    }
    out.partitioning = { keys: keys as Record<string, string>, maxActivePartitions: int(p.maxActivePartitions, 'processing.partitioning.maxActivePartitions', 500, 1, 5000) }
  }
  return out
}

function s3(o: Obj, field: string): ObjectTarget {
  const credentials = o.credentials === undefined ? undefined : obj(o.credentials, `${field}.credentials`)
  const bucket = str(o.bucket, `${field}.bucket`)
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new DeliveryConfigError(`${field}.bucket`, `is not a valid bucket name: ${JSON.stringify(bucket)}`)
  return {
    type: 's3', bucket,
    ...(o.endpoint !== undefined ? { endpoint: url(o.endpoint, `${field}.endpoint`) } : {}),
    region: str(o.region, `${field}.region`, 'us-east-1'),
    ...(credentials ? { credentials: { accessKeyId: str(credentials.accessKeyId, `${field}.credentials.accessKeyId`), secretAccessKey: str(credentials.secretAccessKey, `${field}.credentials.secretAccessKey`) } } : {}),
    forcePathStyle: bool(o.forcePathStyle, `${field}.forcePathStyle`, o.endpoint !== undefined),
    multipartThresholdBytes: int(o.multipartThresholdBytes, `${field}.multipartThresholdBytes`, 16 * MIB, 5 * MIB, 5 * 1024 * MIB),
    partBytes: int(o.partBytes, `${field}.partBytes`, 8 * MIB, 5 * MIB, 5 * 1024 * MIB),
  }
}

export function objectTarget(v: unknown, field: string): ObjectTarget {
  const o = obj(v, field)
  const type = oneOf(o.type, `${field}.type`, ['files', 's3'] as const, 'files')
  if (type === 's3') return s3(o, field)
  const directory = str(o.directory, `${field}.directory`)
  if (!isAbsolute(directory)) throw new DeliveryConfigError(`${field}.directory`, `must be an absolute path, got ${JSON.stringify(directory)}`)
  return { type, directory }
}

function sink(v: unknown): SinkTarget {
  const o = obj(v, 'sink')
  const type = oneOf(o.type, 'sink.type', ['files', 's3', 'postgres', 'http', 'splunk'] as const, 'files')
  switch (type) {
    case 'files':
    case 's3':
      return objectTarget(o, 'sink')
    case 'postgres': {
      const table = str(o.table, 'sink.table')
      if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/.test(table)) throw new DeliveryConfigError('sink.table', `must be a table name (optionally schema.table) of letters, digits and _, got ${JSON.stringify(table)}`)
      return { type, connectionString: str(o.connectionString, 'sink.connectionString'), table, mode: oneOf(o.mode, 'sink.mode', ['copy', 'insert'] as const, 'copy') }
    }
    case 'http': {
      const attrs = obj(o.commonAttributes, 'sink.commonAttributes')
      for (const [k, val] of Object.entries(attrs)) str(val, `sink.commonAttributes.${k}`)
      return {
        type, url: url(o.url, 'sink.url'),
        ...(o.name !== undefined ? { name: str(o.name, 'sink.name') } : {}),
        ...(o.accessKey !== undefined ? { accessKey: str(o.accessKey, 'sink.accessKey') } : {}),
        contentEncoding: oneOf(o.contentEncoding, 'sink.contentEncoding', ['NONE', 'GZIP'] as const, 'NONE'),
        commonAttributes: attrs as Record<string, string>,
        ...(o.caFile !== undefined ? { caFile: str(o.caFile, 'sink.caFile') } : {}),
        timeoutMs: int(o.timeoutMs, 'sink.timeoutMs', 60_000, 1000, 600_000),
      }
    }
    case 'splunk':
      return {
        type, url: url(o.url, 'sink.url'), token: str(o.token, 'sink.token'),
        endpointType: oneOf(o.endpointType, 'sink.endpointType', ['Raw', 'Event'] as const, 'Raw'),
        ...(o.source !== undefined ? { source: str(o.source, 'sink.source') } : {}),
        ...(o.sourcetype !== undefined ? { sourcetype: str(o.sourcetype, 'sink.sourcetype') } : {}),
        ...(o.index !== undefined ? { index: str(o.index, 'sink.index') } : {}),
        ...(o.caFile !== undefined ? { caFile: str(o.caFile, 'sink.caFile') } : {}),
        timeoutMs: int(o.timeoutMs, 'sink.timeoutMs', 180_000, 1000, 600_000),
      }
  }
}

/** Firehose's defaults by destination: how long a failing batch is retried before it goes to the error target. */
const RETRY_DEFAULT_S: Record<SinkTarget['type'], number> = { files: 86_400, s3: 86_400, postgres: 3600, http: 300, splunk: 300 }
const INTERVAL_DEFAULT_S: Record<SinkTarget['type'], number> = { files: 300, s3: 300, postgres: 300, http: 300, splunk: 60 }

/**
 * Checks and completes a delivery stream's config. `transformExists` tells whether the relay's
 * delivery file names a transform. Throws DeliveryConfigError naming the field.
 */
export function normalizeDeliveryConfig(input: unknown, transformExists: (name: string) => boolean = () => false): DeliveryStreamConfig {
  const o = obj(input, 'deliveryStream')
  const name = str(o.name, 'name')
  if (!DELIVERY_NAME.test(name)) throw new DeliveryConfigError('name', `must be 1–64 characters of [a-zA-Z0-9_.-], got ${JSON.stringify(name)}`)
  const target = sink(o.sink)
  const b = obj(o.buffering, 'buffering')
  const config: DeliveryStreamConfig = {
    name,
    source: source(o.source),
    buffering: {
      sizeBytes: int(b.sizeBytes, 'buffering.sizeBytes', DEFAULT_BUFFER_BYTES, MIB, 128 * MIB),
      intervalMs: int(b.intervalMs, 'buffering.intervalMs', INTERVAL_DEFAULT_S[target.type] * 1000 || DEFAULT_BUFFER_INTERVAL_MS, 0, 900_000),
    },
    processing: processing(o.processing, transformExists),
    sink: target,
    prefix: str(o.prefix, 'prefix', ''),
    errorPrefix: str(o.errorPrefix, 'errorPrefix', ''),
    retryDurationMs: int(o.retryDurationMs, 'retryDurationMs', RETRY_DEFAULT_S[target.type] * 1000, 0, 86_400_000),
  }
  for (const field of ['prefix', 'errorPrefix'] as const) {
    // Object keys never start with / (an S3 key would, but not a file's, and the two sinks keep one layout).
    if (config[field].startsWith('/')) throw new DeliveryConfigError(field, `must not start with /, got ${JSON.stringify(config[field])}`)
  }
  if (o.errorTarget !== undefined) config.errorTarget = objectTarget(o.errorTarget, 'errorTarget')
  const objects = target.type === 'files' || target.type === 's3'
  if (!objects && (config.processing.format.type !== 'raw' || config.processing.partitioning || config.processing.compression !== 'UNCOMPRESSED')) {
    throw new DeliveryConfigError('processing', `format conversion, compression and dynamic partitioning apply to object sinks (files, s3), not to ${target.type}`)
  }
  if (config.processing.partitioning && !/!\{partitionKeyFrom(Query|Lambda):/.test(config.prefix)) {
    throw new DeliveryConfigError('prefix', 'dynamic partitioning needs the prefix to use its keys (!{partitionKeyFromQuery:name})')
  }
  return config
}

/** The relay's delivery file: `{ "buckets": {...}, "transforms": {...}, "deliveryStreams": [...] }`. */
export interface DeliveryFile {
  /** S3 settings by bucket name; a bucket not named here is a directory under the data dir. */
  buckets: Record<string, ObjectTarget>
  /** Transform modules by name, as absolute paths. */
  transforms: Record<string, string>
  deliveryStreams: DeliveryStreamConfig[]
}

export function parseDeliveryFile(input: unknown, baseDir: string): DeliveryFile {
  const o = obj(input, 'delivery file')
  for (const key of Object.keys(o)) {
    if (!['buckets', 'transforms', 'deliveryStreams'].includes(key)) throw new DeliveryConfigError(key, 'is not a delivery file setting (buckets, transforms, deliveryStreams)')
  }
  const buckets: Record<string, ObjectTarget> = {}
  for (const [name, v] of Object.entries(obj(o.buckets, 'buckets'))) {
    const target = objectTarget({ type: 's3', bucket: name, ...obj(v, `buckets.${name}`) }, `buckets.${name}`)
    buckets[name] = target
  }
  const transforms: Record<string, string> = {}
  for (const [name, v] of Object.entries(obj(o.transforms, 'transforms'))) {
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) throw new DeliveryConfigError(`transforms.${name}`, 'transform names are 1–64 characters of [a-zA-Z0-9_-] (a Lambda function name)')
    const path = str(v, `transforms.${name}`)
    transforms[name] = isAbsolute(path) ? path : resolve(baseDir, path)
  }
  const list = o.deliveryStreams === undefined ? [] : o.deliveryStreams
  if (!Array.isArray(list)) throw new DeliveryConfigError('deliveryStreams', 'must be a list')
  const deliveryStreams = list.map((d, i) => {
    try {
      return normalizeDeliveryConfig(d, (t) => t in transforms)
    } catch (err) {
      if (err instanceof DeliveryConfigError) throw new DeliveryConfigError(`deliveryStreams[${i}].${err.field}`, err.message.slice(err.field.length + 2))
      throw err
    }
  })
  const names = new Set<string>()
  for (const d of deliveryStreams) {
    if (names.has(d.name)) throw new DeliveryConfigError('deliveryStreams', `delivery stream ${d.name} is declared twice`)
    names.add(d.name)
  }
  return { buckets, transforms, deliveryStreams }
}

/** Reads the delivery file (JSON); relative transform paths are relative to the file. */
export function readDeliveryFile(path: string): DeliveryFile {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new DeliveryConfigError('deliveryFile', `cannot read ${path}: ${(err as Error).message}`)
  }
  return parseDeliveryFile(parsed, dirname(resolve(path)))
}
