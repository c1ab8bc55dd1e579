/**
 * Delivery streams (Kinesis Data Firehose): the shapes every part shares. A delivery stream reads a
 * data stream (or its own backing stream, for direct put), cuts each shard's records into batches by
 * the buffering hints, processes each batch (transform, partition, convert, compress) and loads it
 * into one sink. A batch is always records of one shard, named by (shard, first and last sequence
 * number), so a batch rebuilt after a crash is the same batch with the same object and row keys.
 */

/** Firehose's default buffering for object storage: 5 MiB or 300 s, whichever comes first. */
export const DEFAULT_BUFFER_BYTES = 5 * 1024 * 1024
export const DEFAULT_BUFFER_INTERVAL_MS = 300_000

/** Where a delivery stream's records come from. */
export type DeliverySource =
  /** A data stream, read from its start, its end, or a time (the first time only: then from the checkpoints). */
  | { type: 'stream'; stream: string; startingPosition: 'TRIM_HORIZON' | 'LATEST' | { timestampMs: number } }
  /** PutRecord/PutRecordBatch to the delivery stream: stored first in its own backing data stream. */
  | { type: 'direct'; shards: number }

/** A column of a CSV or Parquet file: a field of the JSON record, found by a dotted path (the name by default). */
export interface Column {
  name: string
  /** Dotted path into the record (`a.b.c`); the column's name when absent. */
  path?: string
  /** Parquet's type; CSV writes every value as text. */
  type?: 'string' | 'int32' | 'int64' | 'double' | 'boolean' | 'timestamp-millis' | 'json'
}

/** What a batch's records become: their bytes as they are, or JSON records converted. */
export type OutputFormat =
  | { type: 'raw' }
  | { type: 'csv'; columns: Column[]; header: boolean }
  | { type: 'parquet'; columns: Column[]; compression: 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP' }

export type Compression = 'UNCOMPRESSED' | 'GZIP' | 'Snappy'

export interface Processing {
  /** A transform module named in the relay's delivery config (`transforms`), called with Firehose's Lambda event. */
  transform?: { name: string; batchRecords: number; timeoutMs: number }
  format: OutputFormat
  /** Raw records only: a newline after each record (Firehose's AppendDelimiterToRecord). */
  newlineDelimiter: boolean
  /** Of each object (files, S3); Parquet compresses inside the file and takes UNCOMPRESSED here. */
  compression: Compression
  /** Dynamic partitioning: prefix values from record fields (jq expressions over the JSON record). */
  partitioning?: { keys: Record<string, string>; maxActivePartitions: number }
}

/** S3 API settings of a bucket (any S3-compatible endpoint). */
export interface S3Target {
  bucket: string
  /** e.g. http://127.0.0.1:8080; absent: AWS's own endpoint for the region. */
  endpoint?: string
  region: string
  credentials?: { accessKeyId: string; secretAccessKey: string }
  forcePathStyle: boolean
  /** Objects at least this large go up in parts (multipart upload). */
  multipartThresholdBytes: number
  partBytes: number
}

/** Where objects go: a directory or a bucket. */
export type ObjectTarget = { type: 'files'; directory: string } | ({ type: 's3' } & S3Target)

export interface PostgresTarget {
  type: 'postgres'
  connectionString: string
  /** The table, created when absent with the default layout (see sinks/postgres.ts); schema-qualified names allowed. */
  table: string
  /** Batched COPY into a staging table then INSERT … ON CONFLICT DO NOTHING, or multi-row INSERT … ON CONFLICT DO NOTHING. */
  mode: 'copy' | 'insert'
}

export interface HttpTarget {
  type: 'http'
  url: string
  name?: string
  /** Sent as X-Amz-Firehose-Access-Key. */
  accessKey?: string
  contentEncoding: 'NONE' | 'GZIP'
  /** Sent as X-Amz-Firehose-Common-Attributes. */
  commonAttributes: Record<string, string>
  /** PEM file of a CA to trust for https:// besides the system's. */
  caFile?: string
  timeoutMs: number
}

/** Splunk's HTTP Event Collector, the HTTP endpoint's preset. */
export interface SplunkTarget {
  type: 'splunk'
  /** e.g. https://splunk:8088 (the collector's path is added). */
  url: string
  token: string
  /** Raw: each record's bytes as an event's text; Event: each record is a JSON event object. */
  endpointType: 'Raw' | 'Event'
  source?: string
  sourcetype?: string
  index?: string
  caFile?: string
  timeoutMs: number
}

export type SinkTarget = ObjectTarget | PostgresTarget | HttpTarget | SplunkTarget

export interface DeliveryStreamConfig {
  name: string
  source: DeliverySource
  buffering: { sizeBytes: number; intervalMs: number }
  processing: Processing
  sink: SinkTarget
  /** Object sinks: the key prefix, with `!{timestamp:…}` and `!{partitionKeyFromQuery:…}`/`!{partitionKeyFromLambda:…}`. */
  prefix: string
  /** Where failed records go, as prefix of the error target; `!{firehose:error-output-type}` names the failure. */
  errorPrefix: string
  /** Failed records' target: absent, the sink itself for object sinks and a directory under the relay's data dir otherwise. */
  errorTarget?: ObjectTarget
  /** How long a failing batch is retried before its records go to the error target. */
  retryDurationMs: number
}

/** A record as delivery reads it from a shard. */
export interface SourceRecord {
  shardId: string
  sequenceNumber: string
  partitionKey: string
  arrivalMs: number
  data: Buffer
}

/** A record after processing: its data may be transformed; partition values come from jq or the transform. */
export interface OutputRecord extends SourceRecord {
  partitionKeys: Record<string, string>
}

/** What names a batch everywhere: object keys, row keys, HTTP request ids. */
export interface BatchId {
  deliveryStream: string
  shardId: string
  firstSequence: string
  lastSequence: string
}

/** A batch of one shard's records for a record sink (PostgreSQL, HTTP endpoint, Splunk). */
export interface RecordBatch extends BatchId {
  records: OutputRecord[]
  /** ARN of the source (data stream or delivery stream), for X-Amz-Firehose-Source-Arn. */
  sourceArn: string
}

/**
 * A bucket or a directory: where object sinks write. `put` replaces whatever is at the key and
 * resolves once the object is durable (fsynced; acknowledged by the S3 server).
 */
export interface ObjectStore {
  readonly description: string
  put(key: string, body: Buffer, info: { contentType: string; contentEncoding?: string }): Promise<void>
  /** The object at `key`, or undefined. */
  get(key: string): Promise<Buffer | undefined>
  /** Keys under `prefix`, sorted. */
  list(prefix: string): Promise<string[]>
  close(): Promise<void>
}

/**
 * A sink of records: loads a batch and resolves once the sink has acknowledged it. Where the sink
 * can, loading the same batch twice leaves one copy (rows keyed by (stream, shard, sequence number)).
 * Throws a DeliveryError.
 */
export interface RecordSink {
  readonly description: string
  deliver(batch: RecordBatch, signal: AbortSignal): Promise<void>
  close(): Promise<void>
}

/** Firehose's names for what failed, as they appear in error records and `!{firehose:error-output-type}`. */
export const ErrorOutputType = {
  processing: 'processing-failed',
  conversion: 'format-conversion-failed',
  partitioning: 'dynamic-partitioning-failed',
  s3: 's3-failed',
  files: 'files-failed',
  postgres: 'postgres-failed',
  http: 'http-endpoint-failed',
  splunk: 'splunk-failed',
} as const
export type ErrorOutputType = (typeof ErrorOutputType)[keyof typeof ErrorOutputType]

/** A failure to load or process, with Firehose-style code (e.g. `HttpEndpoint.ResponseErrorStatus`) and whether retrying may help. */
export class DeliveryError extends Error {
  readonly code: string
  readonly retryable: boolean
  constructor(code: string, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause })
    this.name = 'DeliveryError'
    this.code = code
    this.retryable = options.retryable
  }
}

/** One failed record as written to the error target (a JSON line), in Firehose's shape plus where it came from. */
export interface ErrorRecord {
  attemptsMade: number
  arrivalTimestamp: number
  errorCode: string
  errorMessage: string
  attemptEndingTimestamp: number
  /** The record's data as read from the source, base64. */
  rawData: string
  shardId: string
  sequenceNumber: string
  partitionKey: string
}

export type DeliveryStreamStatus = 'CREATING' | 'ACTIVE' | 'DELETING'

/** What a delivery stream has done so far (since the relay started, except backlog and freshness, which are read now). */
export interface DeliveryStats {
  recordsDelivered: number
  bytesDelivered: number
  /** Batches delivered (objects written, batches loaded). */
  batchesDelivered: number
  /** Records sent to the error target, by error output type. */
  recordsFailed: Record<string, number>
  /** Failed attempts (retried or not), by error code. */
  failuresByCode: Record<string, number>
  /** Records in the source not yet delivered. */
  backlogRecords: number
  /** Age of the oldest record not yet delivered (0 when none): Firehose's DataFreshness. */
  freshnessSeconds: number
  lastDeliveryMs: number | null
  lastError: { code: string; message: string; atMs: number } | null
}

export interface DeliveryStreamDescription {
  config: DeliveryStreamConfig
  status: DeliveryStreamStatus
  /** ARN: arn:aws:firehose:{region}:{account}:deliverystream/{name}. */
  arn: string
  createdMs: number
  /** Changes with every update (Firehose's VersionId, "1", "2", …). */
  versionId: string
  /** Declared in the relay's config file (created at start, not deletable through the API). */
  declared: boolean
  tags: Record<string, string>
  stats: DeliveryStats
}

/** A record put to a direct-put delivery stream: its id (Firehose's RecordId) is its sequence number in the backing stream. */
export interface PutResult { recordId: string }

/**
 * The relay's delivery streams, as the Firehose API and the CLI use them. Names follow Firehose:
 * 1–64 characters of [a-zA-Z0-9_.-]. Errors are DeliveryConfigError (bad config), or TributaryError
 * with codes NOT_FOUND, CONFLICT (name taken), LIMIT_EXCEEDED.
 */
export interface DeliveryService {
  create(config: DeliveryStreamConfig, tags?: Record<string, string>): Promise<DeliveryStreamDescription>
  describe(name: string): DeliveryStreamDescription | undefined
  list(): DeliveryStreamDescription[]
  delete(name: string): Promise<void>
  /** Direct put: stores the records durably in the backing stream; resolves once they are. */
  put(name: string, records: Buffer[]): Promise<PutResult[]>
  putTags(name: string, tags: Record<string, string>): Promise<void>
  removeTags(name: string, keys: string[]): Promise<void>
  /** The target of a bucket named in an S3 ARN: the relay config's entry, or a directory under the data dir. */
  bucket(name: string): ObjectTarget
  /** Whether the relay config names a transform (the API's LambdaArn resolves to it by function name). */
  hasTransform(name: string): boolean
  /** ARN of a data stream, for KinesisStreamSourceConfiguration; the stream's name of an ARN, or null. */
  streamNameFromArn(arn: string): string | null
  readonly region: string
  readonly accountId: string
}

/** A delivery stream's config that cannot work, with the field at fault (e.g. `buffering.sizeBytes`). */
export class DeliveryConfigError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(`${field}: ${message}`)
    this.name = 'DeliveryConfigError'
    this.field = field
  }
}
