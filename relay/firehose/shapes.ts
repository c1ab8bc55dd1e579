/**
 * Firehose's shapes and Tributary's DeliveryStreamConfig, both ways: `configOf` turns a validated
 * CreateDeliveryStream request into a config (refusing, with InvalidArgumentException, what the
 * relay cannot do), `describeStream` turns a DeliveryStreamDescription into AWS's
 * DescribeDeliveryStream answer. Secrets (an HTTP endpoint's AccessKey, Redshift's Password,
 * Splunk's HECToken) go in and never come back out.
 *
 * Mappings that AWS has no counterpart for, decided here:
 * - Redshift is PostgreSQL: ClusterJDBCURL `jdbc:redshift://host:port/db` or `jdbc:postgresql://…`,
 *   Username and Password make the connection string, CopyCommand.DataTableName the table.
 * - A bucket ARN `arn:aws:s3:::NAME` is the relay's bucket NAME (DeliveryService.bucket): a directory
 *   or an S3 bucket, as the relay config says. The ARN is parsed whole (`bucketOfArn`) and NAME must
 *   follow S3's bucket-name rules, so a bucket can never be a path (`x/../../tmp`) into the file system.
 * - Prefix and ErrorOutputPrefix are the start of every object key, so they are refused (not
 *   rewritten) when no key could follow them: a leading `/`, or a `.`, `..` or empty path segment,
 *   which S3-style keys and the files sink refuse. Nothing is stripped: the caller sees the prefix
 *   they sent described back. Their `!{…}` expressions are checked here too, and an error prefix may
 *   not use `!{partitionKeyFromQuery:…}` or `!{partitionKeyFromLambda:…}`, as Firehose forbids: a
 *   record that failed may have no partition keys.
 * - A Lambda processor's LambdaArn names a transform of the relay config by its function name.
 * - Parquet conversion has no Glue: SchemaConfiguration must say DatabaseName `tributary` and give the
 *   columns as TableName, `name:type,…` (`name=dotted.path:type` to read a nested field), so that
 *   the AWS SDK and CLI can send it unchanged. Any other DatabaseName is refused, naming this form.
 * - The secondary destinations (S3Configuration of Redshift, HTTP endpoint and Splunk, where AWS
 *   backs up failed data) are where failed records go: the config's errorTarget and errorPrefix.
 */
import { basename } from 'node:path'
import {
  DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_INTERVAL_MS,
  type Column, type Compression, type DeliveryService, type DeliveryStreamConfig, type DeliveryStreamDescription, type ObjectTarget, type OutputFormat, type Processing, type SinkTarget,
} from '../delivery/types.js'
import { checkPrefix, FormatError, prefixUses } from '../delivery/index.js'
import { invalidArgument } from './errors.js'

const MiB = 1024 * 1024
/** The backing stream of a direct-put delivery stream: one shard per MiB/s of throughput hint (a Kinesis shard's write rate). */
const DEFAULT_DIRECT_SHARDS = 1
/** Firehose's default cap on active partitions of one delivery stream. */
export const DEFAULT_MAX_ACTIVE_PARTITIONS = 500
/** Retry durations, as Firehose's defaults: object storage a day, Redshift an hour, HTTP endpoints and Splunk 300 s. */
const RETRY_OBJECTS_MS = 86_400_000
const RETRY_REDSHIFT_MS = 3_600_000
const RETRY_HTTP_MS = 300_000
const HTTP_TIMEOUT_MS = 60_000
const SPLUNK_ACK_TIMEOUT_S = 180
const TRANSFORM_BATCH_RECORDS = 1000
const TRANSFORM_TIMEOUT_MS = 180_000
/** The DatabaseName that marks a SchemaConfiguration as Tributary's inline column list. */
export const INLINE_SCHEMA_DATABASE = 'tributary'
const COLUMN_TYPES: readonly NonNullable<Column['type']>[] = ['string', 'int32', 'int64', 'double', 'boolean', 'timestamp-millis', 'json']

// ---- Request shapes (after validation) ----

interface Hints { SizeInMBs?: number; IntervalInSeconds?: number }
interface ProcessorIn { Type: string; Parameters?: { ParameterName: string; ParameterValue: string }[] }
interface ProcessingIn { Enabled?: boolean; Processors?: ProcessorIn[] }
interface S3In { BucketARN: string; Prefix?: string; ErrorOutputPrefix?: string; BufferingHints?: Hints; CompressionFormat?: string }
interface ExtendedS3In extends S3In {
  ProcessingConfiguration?: ProcessingIn
  S3BackupMode?: string
  DataFormatConversionConfiguration?: {
    Enabled?: boolean
    SchemaConfiguration?: { DatabaseName?: string; TableName?: string }
    OutputFormatConfiguration?: { Serializer?: { ParquetSerDe?: { Compression?: string }; OrcSerDe?: object } }
  }
  DynamicPartitioningConfiguration?: { Enabled?: boolean; RetryOptions?: { DurationInSeconds?: number } }
  FileExtension?: string
  CustomTimeZone?: string
}
interface RedshiftIn {
  ClusterJDBCURL: string; CopyCommand: { DataTableName: string }; Username?: string; Password?: string
  RetryOptions?: { DurationInSeconds?: number }; S3Configuration?: S3In; ProcessingConfiguration?: ProcessingIn; S3BackupMode?: string
}
interface HttpIn {
  EndpointConfiguration: { Url: string; Name?: string; AccessKey?: string }
  BufferingHints?: Hints
  RequestConfiguration?: { ContentEncoding?: string; CommonAttributes?: { AttributeName: string; AttributeValue: string }[] }
  ProcessingConfiguration?: ProcessingIn; RetryOptions?: { DurationInSeconds?: number }; S3BackupMode?: string; S3Configuration?: S3In
}
interface SplunkIn {
  HECEndpoint: string; HECEndpointType: string; HECToken?: string; HECAcknowledgmentTimeoutInSeconds?: number
  RetryOptions?: { DurationInSeconds?: number }; S3BackupMode?: string; S3Configuration?: S3In; ProcessingConfiguration?: ProcessingIn; BufferingHints?: Hints
}

export interface CreateRequest {
  DeliveryStreamName: string
  DeliveryStreamType?: string
  DirectPutSourceConfiguration?: { ThroughputHintInMBs: number }
  KinesisStreamSourceConfiguration?: { KinesisStreamARN: string }
  S3DestinationConfiguration?: S3In
  ExtendedS3DestinationConfiguration?: ExtendedS3In
  RedshiftDestinationConfiguration?: RedshiftIn
  HttpEndpointDestinationConfiguration?: HttpIn
  SplunkDestinationConfiguration?: SplunkIn
  Tags?: { Key: string; Value?: string }[]
  [other: string]: unknown
}

const UNSUPPORTED_DESTINATIONS = [
  'ElasticsearchDestinationConfiguration', 'AmazonopensearchserviceDestinationConfiguration', 'AmazonOpenSearchServerlessDestinationConfiguration',
  'SnowflakeDestinationConfiguration', 'IcebergDestinationConfiguration',
] as const
const DESTINATIONS = ['S3DestinationConfiguration', 'ExtendedS3DestinationConfiguration', 'RedshiftDestinationConfiguration', 'HttpEndpointDestinationConfiguration', 'SplunkDestinationConfiguration', ...UNSUPPORTED_DESTINATIONS] as const

// ---- Request → config ----

/** A bucket ARN, whole: any partition, then a bucket name as S3 allows it (3–63 of a-z, 0-9, '.', '-'). */
const BUCKET_ARN = /^arn:[a-z0-9-]+:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$/

/** The bucket name of an S3 ARN (`arn:aws:s3:::name`); anything else is refused, never sliced. */
export function bucketOfArn(arn: string, field = 'BucketARN'): string {
  const name = BUCKET_ARN.exec(arn)?.[1]
  if (name === undefined || name.includes('..')) {
    throw invalidArgument(`${field} ${JSON.stringify(arn)} is not an S3 bucket ARN: arn:aws:s3:::NAME, NAME 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit, no '..'.`)
  }
  return name
}

/**
 * A Prefix or ErrorOutputPrefix as given, once it is known to start valid object keys: its
 * expressions parse, and its literal path segments are neither absolute, empty, `.` nor `..`.
 */
function objectKeyPrefix(prefix: string | undefined, field: string, error: boolean): string {
  const p = prefix ?? ''
  if (p.startsWith('/')) throw invalidArgument(`${field} ${JSON.stringify(p)} starts with /: a prefix must not start with /, as an object key does not.`)
  try {
    checkPrefix(p)
  } catch (err) {
    if (err instanceof FormatError) throw invalidArgument(`${field}: ${err.message}`)
    throw err
  }
  // The last segment runs on into the rest of the key, so only the segments before it are whole.
  const segments = p.replace(/!\{[^}]*\}/g, 'x').split('/').slice(0, -1)
  const bad = segments.find((s) => s === '' || s === '.' || s === '..')
  if (bad !== undefined) throw invalidArgument(`${field} ${JSON.stringify(p)} has ${bad === '' ? 'an empty segment (//)' : `a "${bad}" segment`}, which no object key may have.`)
  if (error && prefixUses(p).partitionKeys.length) {
    throw invalidArgument(`${field} ${JSON.stringify(p)} uses partitionKeyFromQuery or partitionKeyFromLambda, which an error prefix cannot: a record that failed may have no partition keys.`)
  }
  return p
}

function buffering(hints: Hints | undefined, defaults: { sizeMiB: number; intervalS: number }): DeliveryStreamConfig['buffering'] {
  return { sizeBytes: (hints?.SizeInMBs ?? defaults.sizeMiB) * MiB, intervalMs: (hints?.IntervalInSeconds ?? defaults.intervalS) * 1000 }
}

function compression(format: string | undefined, field: string): Compression {
  const f = format ?? 'UNCOMPRESSED'
  if (f === 'UNCOMPRESSED' || f === 'GZIP' || f === 'Snappy') return f
  throw invalidArgument(`${field} ${f} is not supported by Tributary; use UNCOMPRESSED, GZIP or Snappy.`)
}

/** The objects target of a bucket ARN, and where failed records go for a record sink. */
function bucket(arn: string, service: DeliveryService, field = 'BucketARN'): ObjectTarget {
  return service.bucket(bucketOfArn(arn, field))
}

/**
 * The keys of a MetadataExtractionQuery, a jq object construction such as
 * `{device: .device, day: .ts | strftime("%d")}`: each member's key and its jq expression
 * (`{device}` is jq's shorthand for `{device: .device}`).
 */
export function partitionKeysOf(query: string): Record<string, string> {
  const text = query.trim()
  if (!text.startsWith('{') || !text.endsWith('}')) throw invalidArgument(`MetadataExtractionQuery ${JSON.stringify(query)} must be a jq object such as {device: .device}.`)
  const members: string[] = []
  let depth = 0
  let quote = false
  let start = 1
  for (let i = 1; i < text.length - 1; i++) {
    const c = text[i]!
    if (quote) {
      if (c === '\\') i++
      else if (c === '"') quote = false
      continue
    }
    if (c === '"') quote = true
    else if (c === '(' || c === '[' || c === '{') depth++
    else if (c === ')' || c === ']' || c === '}') depth--
    else if (c === ',' && depth === 0) {
      members.push(text.slice(start, i))
      start = i + 1
    }
  }
  members.push(text.slice(start, text.length - 1))
  const keys: Record<string, string> = {}
  for (const raw of members) {
    const member = raw.trim()
    if (!member) continue
    const m = /^("(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([\s\S]+))?$/.exec(member)
    if (!m) throw invalidArgument(`MetadataExtractionQuery member ${JSON.stringify(member)} must be KEY: EXPRESSION.`)
    const key = m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!
    const expression = m[2]?.trim() ?? `.${key}`
    if (key in keys) throw invalidArgument(`MetadataExtractionQuery names the key ${key} twice.`)
    keys[key] = expression
  }
  if (!Object.keys(keys).length) throw invalidArgument('MetadataExtractionQuery names no partition key.')
  return keys
}

/** The jq object expression of partition keys (the inverse of partitionKeysOf). */
export function queryOfPartitionKeys(keys: Record<string, string>): string {
  return `{${Object.entries(keys).map(([k, e]) => `${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k)}: ${e}`).join(', ')}}`
}

/** The columns of an inline schema's TableName: `name:type,…`, `name=path:type`, type defaulting to string. */
export function columnsOf(spec: string): Column[] {
  return spec.split(',').map((part) => {
    const m = /^\s*([^=:\s]+)(?:=([^:\s]+))?(?::([a-z0-9-]+))?\s*$/.exec(part)
    if (!m) throw invalidArgument(`SchemaConfiguration.TableName column ${JSON.stringify(part)} must be NAME[=PATH][:TYPE].`)
    const type = (m[3] ?? 'string') as NonNullable<Column['type']>
    if (!COLUMN_TYPES.includes(type)) throw invalidArgument(`SchemaConfiguration.TableName column ${m[1]} has type ${type}; the types are ${COLUMN_TYPES.join(', ')}.`)
    return { name: m[1]!, ...(m[2] ? { path: m[2] } : {}), type }
  })
}

export function specOfColumns(columns: Column[]): string {
  return columns.map((c) => `${c.name}${c.path && c.path !== c.name ? `=${c.path}` : ''}:${c.type ?? 'string'}`).join(',')
}

const lambdaFunction = (arn: string) => /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$/.exec(arn)?.[1] ?? null

interface ProcessingParts { transform?: Processing['transform']; newlineDelimiter: boolean; partitionKeys?: Record<string, string> }

function processors(p: ProcessingIn | undefined, service: DeliveryService): ProcessingParts {
  const out: ProcessingParts = { newlineDelimiter: false }
  if (!p || p.Enabled === false) return out
  for (const processor of p.Processors ?? []) {
    const params = new Map((processor.Parameters ?? []).map((x) => [x.ParameterName, x.ParameterValue]))
    switch (processor.Type) {
      case 'Lambda': {
        const arn = params.get('LambdaArn')
        if (!arn) throw invalidArgument('A Lambda processor needs the parameter LambdaArn.')
        const name = lambdaFunction(arn)
        if (!name) throw invalidArgument(`LambdaArn ${arn} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME).`)
        if (!service.hasTransform(name)) throw invalidArgument(`LambdaArn ${arn} names the function ${name}, which is not a transform of the relay's delivery config.`)
        // BufferSizeInMBs, BufferIntervalInSeconds and NumberOfRetries tune AWS's Lambda invocations; a local transform takes batches of records.
        out.transform = { name, batchRecords: TRANSFORM_BATCH_RECORDS, timeoutMs: TRANSFORM_TIMEOUT_MS }
        break
      }
      case 'AppendDelimiterToRecord':
        out.newlineDelimiter = true
        break
      case 'MetadataExtraction': {
        const query = params.get('MetadataExtractionQuery')
        if (!query) throw invalidArgument('A MetadataExtraction processor needs the parameter MetadataExtractionQuery.')
        const engine = params.get('JsonParsingEngine') ?? 'JQ-1.6'
        if (engine !== 'JQ-1.6') throw invalidArgument(`JsonParsingEngine ${engine} is not supported; use JQ-1.6.`)
        out.partitionKeys = partitionKeysOf(query)
        break
      }
      default:
        throw invalidArgument(`Processor type ${processor.Type} is not supported by Tributary; use Lambda, MetadataExtraction or AppendDelimiterToRecord.`)
    }
  }
  return out
}

function format(c: ExtendedS3In['DataFormatConversionConfiguration']): OutputFormat {
  if (!c || c.Enabled === false) return { type: 'raw' }
  const serializer = c.OutputFormatConfiguration?.Serializer
  if (serializer?.OrcSerDe) throw invalidArgument('OrcSerDe is not supported by Tributary; use ParquetSerDe.')
  if (!serializer?.ParquetSerDe) throw invalidArgument('DataFormatConversionConfiguration needs OutputFormatConfiguration.Serializer.ParquetSerDe.')
  const schema = c.SchemaConfiguration
  if (schema?.DatabaseName !== INLINE_SCHEMA_DATABASE || !schema.TableName) {
    throw invalidArgument(`SchemaConfiguration refers to an AWS Glue table (DatabaseName ${schema?.DatabaseName ?? 'null'}, TableName ${schema?.TableName ?? 'null'}); Tributary has no Glue: set DatabaseName to "${INLINE_SCHEMA_DATABASE}" and TableName to the columns, e.g. "id:int64,device:string,temperature:double".`)
  }
  const parquet = serializer.ParquetSerDe.Compression ?? 'SNAPPY'
  return { type: 'parquet', columns: columnsOf(schema.TableName), compression: parquet as 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP' }
}

function retryMs(options: { DurationInSeconds?: number } | undefined, defaultMs: number): number {
  return options?.DurationInSeconds === undefined ? defaultMs : options.DurationInSeconds * 1000
}

/** Record sinks keep failed records where their S3Configuration says, as AWS backs them up there. */
function errorLocation(s3: S3In | undefined, service: DeliveryService): Pick<DeliveryStreamConfig, 'errorTarget' | 'errorPrefix'> {
  if (!s3) return { errorPrefix: '' }
  const [prefix, field] = s3.ErrorOutputPrefix !== undefined ? [s3.ErrorOutputPrefix, 'S3Configuration.ErrorOutputPrefix'] : [s3.Prefix, 'S3Configuration.Prefix']
  return { errorTarget: bucket(s3.BucketARN, service, 'S3Configuration.BucketARN'), errorPrefix: objectKeyPrefix(prefix, field, true) }
}

/** A record sink's processing: what processors give, raw records, no object compression. */
function recordProcessing(p: ProcessingIn | undefined, service: DeliveryService, destination: string): Processing {
  const parts = processors(p, service)
  if (parts.partitionKeys) throw invalidArgument(`Dynamic partitioning (MetadataExtraction) is only supported for ExtendedS3DestinationConfiguration, not ${destination}.`)
  return { ...(parts.transform ? { transform: parts.transform } : {}), format: { type: 'raw' }, newlineDelimiter: parts.newlineDelimiter, compression: 'UNCOMPRESSED' }
}

/** The connection string of a Redshift JDBC URL, read as PostgreSQL's. */
function connectionString(jdbc: string, user: string | undefined, password: string | undefined): string {
  let url: URL
  try {
    url = new URL(jdbc.replace(/^jdbc:(redshift|postgresql):/, 'postgres:'))
  } catch {
    throw invalidArgument(`ClusterJDBCURL ${jdbc} is not jdbc:redshift://HOST:PORT/DATABASE or jdbc:postgresql://HOST:PORT/DATABASE.`)
  }
  if (!url.hostname || url.pathname.length < 2) throw invalidArgument(`ClusterJDBCURL ${jdbc} must name a host and a database: jdbc:postgresql://HOST:PORT/DATABASE.`)
  if (user !== undefined) url.username = encodeURIComponent(user)
  if (password !== undefined) url.password = encodeURIComponent(password)
  return url.toString()
}

function sourceOf(req: CreateRequest, service: DeliveryService): DeliveryStreamConfig['source'] {
  const type = req.DeliveryStreamType ?? 'DirectPut'
  if (type === 'MSKAsSource' || type === 'DatabaseAsSource') throw invalidArgument(`DeliveryStreamType ${type} is not supported by Tributary; use DirectPut or KinesisStreamAsSource.`)
  if (type === 'DirectPut') {
    if (req.KinesisStreamSourceConfiguration) throw invalidArgument('KinesisStreamSourceConfiguration is only allowed with DeliveryStreamType KinesisStreamAsSource.')
    return { type: 'direct', shards: req.DirectPutSourceConfiguration?.ThroughputHintInMBs ?? DEFAULT_DIRECT_SHARDS }
  }
  const arn = req.KinesisStreamSourceConfiguration?.KinesisStreamARN
  if (!arn) throw invalidArgument('DeliveryStreamType KinesisStreamAsSource needs KinesisStreamSourceConfiguration.KinesisStreamARN.')
  if (req.DirectPutSourceConfiguration) throw invalidArgument('DirectPutSourceConfiguration is only allowed with DeliveryStreamType DirectPut.')
  const stream = service.streamNameFromArn(arn)
  if (stream === null) throw invalidArgument(`KinesisStreamARN ${arn} does not name a data stream of this relay.`)
  // Firehose starts reading a Kinesis source at LATEST when the delivery stream is created.
  return { type: 'stream', stream, startingPosition: 'LATEST' }
}

/** The DeliveryStreamConfig of a validated CreateDeliveryStream request. */
export function configOf(req: CreateRequest, service: DeliveryService): DeliveryStreamConfig {
  const given = DESTINATIONS.filter((d) => req[d] !== undefined)
  if (given.length === 0) throw invalidArgument('A delivery stream needs one destination: ExtendedS3DestinationConfiguration, S3DestinationConfiguration, RedshiftDestinationConfiguration, HttpEndpointDestinationConfiguration or SplunkDestinationConfiguration.')
  if (given.length > 1) throw invalidArgument(`Only one destination can be configured, got ${given.join(' and ')}.`)
  const destination = given[0]!
  if ((UNSUPPORTED_DESTINATIONS as readonly string[]).includes(destination)) throw invalidArgument(`${destination} is not supported by Tributary; its sinks are S3 (files or an S3 API), Redshift (PostgreSQL), HTTP endpoints and Splunk.`)
  const name = req.DeliveryStreamName
  const source = sourceOf(req, service)

  const s3 = req.ExtendedS3DestinationConfiguration ?? req.S3DestinationConfiguration
  if (s3) {
    const ext: ExtendedS3In = s3
    if (ext.S3BackupMode === 'Enabled') throw invalidArgument('S3BackupMode Enabled (a copy of the source records in a second bucket) is not supported by Tributary.')
    if (ext.FileExtension) throw invalidArgument('FileExtension is not supported by Tributary: object keys end as the sink names them.')
    if (ext.CustomTimeZone && ext.CustomTimeZone !== 'UTC') throw invalidArgument(`CustomTimeZone ${ext.CustomTimeZone} is not supported by Tributary; prefixes are in UTC.`)
    const parts = processors(ext.ProcessingConfiguration, service)
    const dynamic = ext.DynamicPartitioningConfiguration?.Enabled === true
    if (parts.partitionKeys && !dynamic) throw invalidArgument('The MetadataExtraction processor needs DynamicPartitioningConfiguration.Enabled true.')
    if (dynamic && !parts.partitionKeys && !parts.transform) throw invalidArgument('Dynamic partitioning needs a MetadataExtraction processor (jq) or a Lambda processor that returns partition keys.')
    const outputFormat = format(ext.DataFormatConversionConfiguration)
    const objectCompression = compression(ext.CompressionFormat, 'CompressionFormat')
    if (outputFormat.type === 'parquet' && objectCompression !== 'UNCOMPRESSED') throw invalidArgument('CompressionFormat must be UNCOMPRESSED when data format conversion is enabled; set ParquetSerDe.Compression instead.')
    const processing: Processing = {
      ...(parts.transform ? { transform: parts.transform } : {}),
      format: outputFormat,
      newlineDelimiter: parts.newlineDelimiter,
      compression: objectCompression,
      ...(dynamic ? { partitioning: { keys: parts.partitionKeys ?? {}, maxActivePartitions: DEFAULT_MAX_ACTIVE_PARTITIONS } } : {}),
    }
    return {
      name, source, processing,
      buffering: buffering(ext.BufferingHints, { sizeMiB: DEFAULT_BUFFER_BYTES / MiB, intervalS: DEFAULT_BUFFER_INTERVAL_MS / 1000 }),
      sink: bucket(ext.BucketARN, service),
      prefix: objectKeyPrefix(ext.Prefix, 'Prefix', false),
      errorPrefix: objectKeyPrefix(ext.ErrorOutputPrefix, 'ErrorOutputPrefix', true),
      retryDurationMs: RETRY_OBJECTS_MS,
    }
  }

  const redshift = req.RedshiftDestinationConfiguration
  if (redshift) {
    if (redshift.S3BackupMode === 'Enabled') throw invalidArgument('S3BackupMode Enabled is not supported by Tributary.')
    return {
      name, source,
      buffering: buffering(redshift.S3Configuration?.BufferingHints, { sizeMiB: 5, intervalS: 300 }),
      processing: recordProcessing(redshift.ProcessingConfiguration, service, 'RedshiftDestinationConfiguration'),
      sink: { type: 'postgres', connectionString: connectionString(redshift.ClusterJDBCURL, redshift.Username, redshift.Password), table: redshift.CopyCommand.DataTableName, mode: 'copy' },
      prefix: '',
      ...errorLocation(redshift.S3Configuration, service),
      retryDurationMs: retryMs(redshift.RetryOptions, RETRY_REDSHIFT_MS),
    }
  }

  const http = req.HttpEndpointDestinationConfiguration
  if (http) {
    if (http.S3BackupMode === 'AllData') throw invalidArgument('S3BackupMode AllData is not supported by Tributary; failed data goes to S3Configuration (FailedDataOnly).')
    const encoding = http.RequestConfiguration?.ContentEncoding ?? 'NONE'
    return {
      name, source,
      buffering: buffering(http.BufferingHints, { sizeMiB: 5, intervalS: 300 }),
      processing: recordProcessing(http.ProcessingConfiguration, service, 'HttpEndpointDestinationConfiguration'),
      sink: {
        type: 'http', url: http.EndpointConfiguration.Url,
        ...(http.EndpointConfiguration.Name !== undefined ? { name: http.EndpointConfiguration.Name } : {}),
        ...(http.EndpointConfiguration.AccessKey !== undefined ? { accessKey: http.EndpointConfiguration.AccessKey } : {}),
        contentEncoding: encoding === 'GZIP' ? 'GZIP' : 'NONE',
        commonAttributes: Object.fromEntries((http.RequestConfiguration?.CommonAttributes ?? []).map((a) => [a.AttributeName, a.AttributeValue])),
        timeoutMs: HTTP_TIMEOUT_MS,
      },
      prefix: '',
      ...errorLocation(http.S3Configuration, service),
      retryDurationMs: retryMs(http.RetryOptions, RETRY_HTTP_MS),
    }
  }

  const splunk = req.SplunkDestinationConfiguration!
  if (splunk.S3BackupMode === 'AllEvents') throw invalidArgument('S3BackupMode AllEvents is not supported by Tributary; failed events go to S3Configuration (FailedEventsOnly).')
  if (!splunk.HECToken) throw invalidArgument('SplunkDestinationConfiguration needs HECToken.')
  return {
    name, source,
    buffering: buffering(splunk.BufferingHints, { sizeMiB: 5, intervalS: 60 }),
    processing: recordProcessing(splunk.ProcessingConfiguration, service, 'SplunkDestinationConfiguration'),
    sink: {
      type: 'splunk', url: splunk.HECEndpoint, token: splunk.HECToken, endpointType: splunk.HECEndpointType === 'Event' ? 'Event' : 'Raw',
      timeoutMs: (splunk.HECAcknowledgmentTimeoutInSeconds ?? SPLUNK_ACK_TIMEOUT_S) * 1000,
    },
    prefix: '',
    ...errorLocation(splunk.S3Configuration, service),
    retryDurationMs: retryMs(splunk.RetryOptions, RETRY_HTTP_MS),
  }
}

// ---- Config → DescribeDeliveryStream ----

const seconds = (ms: number) => ms / 1000

/** The bucket name a target was resolved from: an S3 bucket's name, a directory's last component. */
function bucketName(target: ObjectTarget): string {
  return target.type === 's3' ? target.bucket : basename(target.directory)
}

function hintsOf(b: DeliveryStreamConfig['buffering']) {
  return { SizeInMBs: Math.max(1, Math.round(b.sizeBytes / MiB)), IntervalInSeconds: Math.round(b.intervalMs / 1000) }
}

function processingOf(c: DeliveryStreamConfig, region: string, account: string) {
  const list: ProcessorIn[] = []
  const p = c.processing
  if (p.transform) list.push({ Type: 'Lambda', Parameters: [{ ParameterName: 'LambdaArn', ParameterValue: `arn:aws:lambda:${region}:${account}:function:${p.transform.name}` }] })
  if (p.partitioning && Object.keys(p.partitioning.keys).length) {
    list.push({ Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: queryOfPartitionKeys(p.partitioning.keys) }, { ParameterName: 'JsonParsingEngine', ParameterValue: 'JQ-1.6' }] })
  }
  if (p.newlineDelimiter) list.push({ Type: 'AppendDelimiterToRecord' })
  return { Enabled: list.length > 0, Processors: list }
}

const NO_LOGGING = { Enabled: false }
const NO_ENCRYPTION = { NoEncryptionConfig: 'NoEncryption' }

function s3Description(target: ObjectTarget, prefix: string, errorPrefix: string, c: DeliveryStreamConfig) {
  return {
    BucketARN: `arn:aws:s3:::${bucketName(target)}`,
    Prefix: prefix,
    ...(errorPrefix ? { ErrorOutputPrefix: errorPrefix } : {}),
    BufferingHints: hintsOf(c.buffering),
    CompressionFormat: c.processing.compression,
    EncryptionConfiguration: NO_ENCRYPTION,
    CloudWatchLoggingOptions: NO_LOGGING,
  }
}

function destinationOf(d: DeliveryStreamDescription, region: string, account: string): Record<string, unknown> {
  const c = d.config
  const sink: SinkTarget = c.sink
  const retry = { DurationInSeconds: Math.round(c.retryDurationMs / 1000) }
  const errorS3 = c.errorTarget ? { S3DestinationDescription: s3Description(c.errorTarget, '', c.errorPrefix, c) } : {}
  switch (sink.type) {
    case 'files':
    case 's3': {
      const f = c.processing.format
      return {
        ExtendedS3DestinationDescription: {
          ...s3Description(sink, c.prefix, c.errorPrefix, c),
          ProcessingConfiguration: processingOf(c, region, account),
          S3BackupMode: 'Disabled',
          ...(f.type === 'parquet' ? {
            DataFormatConversionConfiguration: {
              Enabled: true,
              SchemaConfiguration: { DatabaseName: INLINE_SCHEMA_DATABASE, TableName: specOfColumns(f.columns) },
              InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
              OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: f.compression } } },
            },
          } : {}),
          DynamicPartitioningConfiguration: { Enabled: Boolean(c.processing.partitioning) },
        },
      }
    }
    case 'postgres': {
      const url = new URL(sink.connectionString)
      const username = decodeURIComponent(url.username)
      // The password stays in the relay: the JDBC URL is rebuilt without credentials.
      return {
        RedshiftDestinationDescription: {
          ClusterJDBCURL: `jdbc:postgresql://${url.host}${url.pathname}`,
          CopyCommand: { DataTableName: sink.table },
          ...(username ? { Username: username } : {}),
          RetryOptions: retry,
          ProcessingConfiguration: processingOf(c, region, account),
          S3BackupMode: 'Disabled',
          CloudWatchLoggingOptions: NO_LOGGING,
          ...errorS3,
        },
      }
    }
    case 'http':
      return {
        HttpEndpointDestinationDescription: {
          EndpointConfiguration: { Url: sink.url, ...(sink.name !== undefined ? { Name: sink.name } : {}) },
          BufferingHints: hintsOf(c.buffering),
          CloudWatchLoggingOptions: NO_LOGGING,
          RequestConfiguration: {
            ContentEncoding: sink.contentEncoding,
            CommonAttributes: Object.entries(sink.commonAttributes).map(([AttributeName, AttributeValue]) => ({ AttributeName, AttributeValue })),
          },
          ProcessingConfiguration: processingOf(c, region, account),
          RetryOptions: retry,
          S3BackupMode: 'FailedDataOnly',
          ...errorS3,
        },
      }
    case 'splunk':
      return {
        SplunkDestinationDescription: {
          HECEndpoint: sink.url,
          HECEndpointType: sink.endpointType,
          HECAcknowledgmentTimeoutInSeconds: Math.round(sink.timeoutMs / 1000),
          RetryOptions: retry,
          S3BackupMode: 'FailedEventsOnly',
          ProcessingConfiguration: processingOf(c, region, account),
          CloudWatchLoggingOptions: NO_LOGGING,
          BufferingHints: hintsOf(c.buffering),
          ...errorS3,
        },
      }
  }
}

export function streamArn(region: string, account: string, stream: string): string {
  return `arn:aws:kinesis:${region}:${account}:stream/${stream}`
}

/** DescribeDeliveryStream's DeliveryStreamDescription, in AWS's shape. */
export function describeStream(d: DeliveryStreamDescription, region: string, account: string): Record<string, unknown> {
  const c = d.config
  const source = c.source.type === 'stream'
    ? { KinesisStreamSourceDescription: { KinesisStreamARN: streamArn(region, account, c.source.stream), DeliveryStartTimestamp: seconds(d.createdMs) } }
    : { DirectPutSourceDescription: { ThroughputHintInMBs: c.source.shards } }
  return {
    DeliveryStreamName: c.name,
    DeliveryStreamARN: d.arn,
    DeliveryStreamStatus: d.status,
    DeliveryStreamEncryptionConfiguration: { Status: 'DISABLED' },
    DeliveryStreamType: c.source.type === 'stream' ? 'KinesisStreamAsSource' : 'DirectPut',
    VersionId: d.versionId,
    CreateTimestamp: seconds(d.createdMs),
    Source: source,
    Destinations: [{ DestinationId: 'destinationId-000000000001', ...destinationOf(d, region, account) }],
    HasMoreDestinations: false,
  }
}
