/**
 * The Firehose API's actions over an in-memory delivery service: what each Firehose shape becomes
 * in a DeliveryStreamConfig, how a delivery stream is described back in AWS's shape (secrets never
 * echoed), and the refusals, by Firehose's error types.
 */
import t from 'tap'
import { ErrorCode, StorageError, TributaryError } from '../../shared/errors.js'
import type { DeliveryService, DeliveryStats, DeliveryStreamConfig, DeliveryStreamDescription, ObjectTarget, PutResult } from '../../relay/delivery/types.js'
import { FirehoseApi } from '../../relay/firehose/api.js'
import { bucketOfArn, partitionKeysOf } from '../../relay/firehose/shapes.js'
import { JqPartitioner } from '../../relay/delivery/format/index.js'

/**
 * An in-memory DeliveryService for the Firehose API's unit tests: it keeps what the API asks of it
 * (configs, tags, put records) so a test can read what a request became, and refuses as the real
 * service does (CONFLICT, NOT_FOUND). `failPuts` makes the next puts fail as full storage does.
 */
const emptyStats = (): DeliveryStats => ({
  recordsDelivered: 0, bytesDelivered: 0, batchesDelivered: 0, recordsFailed: {}, failuresByCode: {}, backlogRecords: 0, freshnessSeconds: 0, lastDeliveryMs: null, lastError: null,
})

class MemoryDelivery implements DeliveryService {
  readonly region = 'us-east-1'
  readonly accountId = '000000000000'
  readonly streams = new Map<string, DeliveryStreamDescription>()
  readonly records = new Map<string, Buffer[]>()
  failPuts = 0
  private sequence = 0n

  constructor(readonly transforms: string[] = [], readonly dataStreams: string[] = []) {}

  async create(config: DeliveryStreamConfig, tags: Record<string, string> = {}): Promise<DeliveryStreamDescription> {
    if (this.streams.has(config.name)) throw new TributaryError(ErrorCode.CONFLICT, `delivery stream ${config.name} exists`)
    const d: DeliveryStreamDescription = {
      config, status: 'ACTIVE', arn: `arn:aws:firehose:${this.region}:${this.accountId}:deliverystream/${config.name}`,
      createdMs: 1_700_000_000_000, versionId: '1', declared: false, tags: { ...tags }, stats: emptyStats(),
    }
    this.streams.set(config.name, d)
    this.records.set(config.name, [])
    return d
  }

  describe(name: string) { return this.streams.get(name) }
  list() { return [...this.streams.values()] }

  async delete(name: string) {
    if (!this.streams.delete(name)) throw new TributaryError(ErrorCode.NOT_FOUND, `no delivery stream ${name}`)
  }

  async put(name: string, records: Buffer[]): Promise<PutResult[]> {
    if (this.failPuts > 0) {
      this.failPuts--
      throw new StorageError(ErrorCode.STORAGE_FULL, 'the data directory is full')
    }
    const list = this.records.get(name)
    if (!list) throw new TributaryError(ErrorCode.NOT_FOUND, `no delivery stream ${name}`)
    list.push(...records)
    return records.map(() => ({ recordId: String(++this.sequence).padStart(20, '0') }))
  }

  async putTags(name: string, tags: Record<string, string>) { Object.assign(this.streams.get(name)!.tags, tags) }
  async removeTags(name: string, keys: string[]) { for (const k of keys) delete this.streams.get(name)!.tags[k] }
  bucket(name: string): ObjectTarget { return { type: 'files', directory: `/data/buckets/${name}` } }
  hasTransform(name: string) { return this.transforms.includes(name) }
  streamNameFromArn(arn: string) {
    const m = /^arn:aws:kinesis:us-east-1:000000000000:stream\/(.+)$/.exec(arn)
    return m && this.dataStreams.includes(m[1]!) ? m[1]! : null
  }
}

/** A Firehose API over a MemoryDelivery, and `call(action, body)` answering { status, body }. */
function memoryApi(service = new MemoryDelivery()) {
  const requests: [string, string][] = []
  const api = new FirehoseApi({ service, accessKeys: [], now: () => 1_700_000_000_000, log: () => {}, onRequest: (a, o) => requests.push([a, o]) })
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const call = async (action: string, body: unknown): Promise<{ status: number; body: any }> => api.handle(`Firehose_20150804.${action}`, Buffer.from(JSON.stringify(body)))
  return { api, service, call, requests }
}

const S3 = (extra: Record<string, unknown> = {}) => ({ RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: 'arn:aws:s3:::logs', ...extra })

t.test('an extended S3 destination becomes a config with the bucket, prefixes, hints, compression and processors', async (t) => {
  const { call, service } = memoryApi(new MemoryDelivery(['enrich']))
  const out = await call('CreateDeliveryStream', {
    DeliveryStreamName: 'clicks',
    DeliveryStreamType: 'DirectPut',
    ExtendedS3DestinationConfiguration: S3({
      Prefix: 'clicks/!{partitionKeyFromQuery:device}/!{timestamp:yyyy/MM/dd}/',
      ErrorOutputPrefix: 'errors/!{firehose:error-output-type}/',
      BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 60 },
      CompressionFormat: 'GZIP',
      ProcessingConfiguration: {
        Enabled: true,
        Processors: [
          { Type: 'Lambda', Parameters: [{ ParameterName: 'LambdaArn', ParameterValue: 'arn:aws:lambda:us-east-1:000000000000:function:enrich:$LATEST' }, { ParameterName: 'NumberOfRetries', ParameterValue: '3' }] },
          { Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{device: .device, "day of week": .ts | strftime("%a"), site}' }, { ParameterName: 'JsonParsingEngine', ParameterValue: 'JQ-1.6' }] },
          { Type: 'AppendDelimiterToRecord', Parameters: [] },
        ],
      },
      DynamicPartitioningConfiguration: { Enabled: true },
    }),
  })
  t.same(out, { status: 200, body: { DeliveryStreamARN: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks' } })
  t.same(service.describe('clicks')!.config, {
    name: 'clicks',
    source: { type: 'direct', shards: 1 },
    processing: {
      transform: { name: 'enrich', batchRecords: 1000, timeoutMs: 180_000 },
      format: { type: 'raw' },
      newlineDelimiter: true,
      compression: 'GZIP',
      partitioning: { keys: { device: '.device', 'day of week': '.ts | strftime("%a")', site: '.site' }, maxActivePartitions: 500 },
    },
    buffering: { sizeBytes: 64 * 1024 * 1024, intervalMs: 60_000 },
    sink: { type: 'files', directory: '/data/buckets/logs' },
    prefix: 'clicks/!{partitionKeyFromQuery:device}/!{timestamp:yyyy/MM/dd}/',
    errorPrefix: 'errors/!{firehose:error-output-type}/',
    retryDurationMs: 86_400_000,
  })
})

t.test('a plain S3 destination takes Firehose defaults of 5 MiB, 300 s and no compression', async (t) => {
  const { call, service } = memoryApi()
  t.equal((await call('CreateDeliveryStream', { DeliveryStreamName: 'plain', S3DestinationConfiguration: S3() })).status, 200)
  const c = service.describe('plain')!.config
  t.same([c.buffering, c.processing.compression, c.processing.newlineDelimiter, c.prefix], [{ sizeBytes: 5 * 1024 * 1024, intervalMs: 300_000 }, 'UNCOMPRESSED', false, ''])
})

t.test('Parquet conversion reads its columns from the inline schema, and a Glue table is refused naming that form', async (t) => {
  const { call, service } = memoryApi()
  const conversion = (schema: Record<string, string>) => ({
    Enabled: true, SchemaConfiguration: schema,
    InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
    OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: 'GZIP' } } },
  })
  const ok = await call('CreateDeliveryStream', { DeliveryStreamName: 'pq', ExtendedS3DestinationConfiguration: S3({ DataFormatConversionConfiguration: conversion({ DatabaseName: 'tributary', TableName: 'id:int64,device:string,temp=reading.celsius:double' }) }) })
  t.equal(ok.status, 200)
  t.same(service.describe('pq')!.config.processing.format, {
    type: 'parquet', compression: 'GZIP',
    columns: [{ name: 'id', type: 'int64' }, { name: 'device', type: 'string' }, { name: 'temp', path: 'reading.celsius', type: 'double' }],
  })
  const glue = await call('CreateDeliveryStream', { DeliveryStreamName: 'glue', ExtendedS3DestinationConfiguration: S3({ DataFormatConversionConfiguration: conversion({ DatabaseName: 'analytics', TableName: 'events' }) }) })
  t.equal(glue.body.__type, 'InvalidArgumentException')
  t.match(glue.body.message, /AWS Glue table \(DatabaseName analytics, TableName events\); Tributary has no Glue: set DatabaseName to "tributary"/)
  const gz = await call('CreateDeliveryStream', { DeliveryStreamName: 'pqgz', ExtendedS3DestinationConfiguration: S3({ CompressionFormat: 'GZIP', DataFormatConversionConfiguration: conversion({ DatabaseName: 'tributary', TableName: 'id:int64' }) }) })
  t.match(gz.body, { __type: 'InvalidArgumentException', message: /CompressionFormat must be UNCOMPRESSED when data format conversion is enabled/ })
})

t.test('a delivery stream is described in AWS shape, and that description creates the same config again', async (t) => {
  const { call, service } = memoryApi(new MemoryDelivery(['enrich']))
  const created = {
    Prefix: 'p/!{partitionKeyFromQuery:device}/', ErrorOutputPrefix: 'e/', BufferingHints: { SizeInMBs: 8, IntervalInSeconds: 30 }, CompressionFormat: 'Snappy',
    ProcessingConfiguration: { Enabled: true, Processors: [
      { Type: 'Lambda', Parameters: [{ ParameterName: 'LambdaArn', ParameterValue: 'arn:aws:lambda:us-east-1:000000000000:function:enrich' }] },
      { Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{device:.device}' }, { ParameterName: 'JsonParsingEngine', ParameterValue: 'JQ-1.6' }] },
      { Type: 'AppendDelimiterToRecord' },
    ] },
    DynamicPartitioningConfiguration: { Enabled: true },
  }
  await call('CreateDeliveryStream', { DeliveryStreamName: 'round', ExtendedS3DestinationConfiguration: S3(created) })
  const { status, body } = await call('DescribeDeliveryStream', { DeliveryStreamName: 'round' })
  t.equal(status, 200)
  const d = body.DeliveryStreamDescription
  t.match(d, {
    DeliveryStreamName: 'round', DeliveryStreamARN: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/round', DeliveryStreamStatus: 'ACTIVE',
    DeliveryStreamType: 'DirectPut', VersionId: '1', CreateTimestamp: 1_700_000_000, HasMoreDestinations: false,
    Source: { DirectPutSourceDescription: { ThroughputHintInMBs: 1 } },
  })
  t.equal(d.Destinations.length, 1)
  const dest = d.Destinations[0]
  t.equal(dest.DestinationId, 'destinationId-000000000001')
  t.match(dest.ExtendedS3DestinationDescription, {
    BucketARN: 'arn:aws:s3:::logs', Prefix: 'p/!{partitionKeyFromQuery:device}/', ErrorOutputPrefix: 'e/', BufferingHints: { SizeInMBs: 8, IntervalInSeconds: 30 },
    CompressionFormat: 'Snappy', EncryptionConfiguration: { NoEncryptionConfig: 'NoEncryption' }, DynamicPartitioningConfiguration: { Enabled: true },
  })
  const { S3BackupMode: _mode, EncryptionConfiguration: _enc, CloudWatchLoggingOptions: _cw, ...again } = dest.ExtendedS3DestinationDescription
  t.same(await call('CreateDeliveryStream', { DeliveryStreamName: 'round2', ExtendedS3DestinationConfiguration: again }), { status: 200, body: { DeliveryStreamARN: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/round2' } })
  t.same({ ...service.describe('round2')!.config, name: 'round' }, service.describe('round')!.config, 'the description is a config that creates the same delivery stream')
})

t.test('a Kinesis stream source names a data stream of the relay by its ARN and starts at LATEST', async (t) => {
  const { call, service } = memoryApi(new MemoryDelivery([], ['sensors']))
  const arn = 'arn:aws:kinesis:us-east-1:000000000000:stream/sensors'
  t.equal((await call('CreateDeliveryStream', { DeliveryStreamName: 'from-sensors', DeliveryStreamType: 'KinesisStreamAsSource', KinesisStreamSourceConfiguration: { KinesisStreamARN: arn, RoleARN: 'arn:aws:iam::000000000000:role/r' }, S3DestinationConfiguration: S3() })).status, 200)
  t.same(service.describe('from-sensors')!.config.source, { type: 'stream', stream: 'sensors', startingPosition: 'LATEST' })
  const { body } = await call('DescribeDeliveryStream', { DeliveryStreamName: 'from-sensors' })
  t.match(body.DeliveryStreamDescription, { DeliveryStreamType: 'KinesisStreamAsSource', Source: { KinesisStreamSourceDescription: { KinesisStreamARN: arn } } })
  const missing = await call('CreateDeliveryStream', { DeliveryStreamName: 'from-nothing', DeliveryStreamType: 'KinesisStreamAsSource', KinesisStreamSourceConfiguration: { KinesisStreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/absent' }, S3DestinationConfiguration: S3() })
  t.same(missing.body, { __type: 'InvalidArgumentException', message: 'KinesisStreamARN arn:aws:kinesis:us-east-1:000000000000:stream/absent does not name a data stream of this relay.' })
  const put = await call('PutRecord', { DeliveryStreamName: 'from-sensors', Record: { Data: 'eA==' } })
  t.same(put.body, { __type: 'InvalidArgumentException', message: 'This operation is not permitted on KinesisStreamAsSource type DeliveryStream from-sensors under account 000000000000.' })
})

t.test('Redshift is PostgreSQL: the JDBC URL and user make the connection, and the password is never described', async (t) => {
  const { call, service } = memoryApi()
  const out = await call('CreateDeliveryStream', {
    DeliveryStreamName: 'rows',
    RedshiftDestinationConfiguration: {
      RoleARN: 'arn:aws:iam::000000000000:role/r', ClusterJDBCURL: 'jdbc:redshift://db.example:5439/analytics', Username: 'loader', Password: 's3cr3t/pw',
      CopyCommand: { DataTableName: 'public.events' }, RetryOptions: { DurationInSeconds: 120 },
      S3Configuration: S3({ ErrorOutputPrefix: 'failed/' }),
    },
  })
  t.equal(out.status, 200)
  const c = service.describe('rows')!.config
  t.same(c.sink, { type: 'postgres', connectionString: 'postgres://loader:s3cr3t%2Fpw@db.example:5439/analytics', table: 'public.events', mode: 'copy' })
  t.same([c.retryDurationMs, c.errorTarget, c.errorPrefix], [120_000, { type: 'files', directory: '/data/buckets/logs' }, 'failed/'])
  const { body } = await call('DescribeDeliveryStream', { DeliveryStreamName: 'rows' })
  const r = body.DeliveryStreamDescription.Destinations[0].RedshiftDestinationDescription
  t.match(r, { ClusterJDBCURL: 'jdbc:postgresql://db.example:5439/analytics', Username: 'loader', CopyCommand: { DataTableName: 'public.events' }, RetryOptions: { DurationInSeconds: 120 }, S3DestinationDescription: { BucketARN: 'arn:aws:s3:::logs', ErrorOutputPrefix: 'failed/' } })
  t.notMatch(JSON.stringify(body), /s3cr3t/, 'the password is not in the description')
})

t.test('an HTTP endpoint keeps its access key, attributes and retry duration, and its access key is never described', async (t) => {
  const { call, service } = memoryApi()
  await call('CreateDeliveryStream', {
    DeliveryStreamName: 'hook',
    HttpEndpointDestinationConfiguration: {
      EndpointConfiguration: { Url: 'http://10.0.0.5:8080/ingest', Name: 'collector', AccessKey: 'key-123456' },
      RequestConfiguration: { ContentEncoding: 'GZIP', CommonAttributes: [{ AttributeName: 'env', AttributeValue: 'test' }] },
      RetryOptions: { DurationInSeconds: 30 }, BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 5 },
      S3Configuration: S3(),
    },
  })
  const c = service.describe('hook')!.config
  t.same(c.sink, { type: 'http', url: 'http://10.0.0.5:8080/ingest', name: 'collector', accessKey: 'key-123456', contentEncoding: 'GZIP', commonAttributes: { env: 'test' }, timeoutMs: 60_000 })
  t.same([c.retryDurationMs, c.buffering], [30_000, { sizeBytes: 1024 * 1024, intervalMs: 5000 }])
  const { body } = await call('DescribeDeliveryStream', { DeliveryStreamName: 'hook' })
  t.match(body.DeliveryStreamDescription.Destinations[0].HttpEndpointDestinationDescription, {
    EndpointConfiguration: { Url: 'http://10.0.0.5:8080/ingest', Name: 'collector' },
    RequestConfiguration: { ContentEncoding: 'GZIP', CommonAttributes: [{ AttributeName: 'env', AttributeValue: 'test' }] },
  })
  t.notMatch(JSON.stringify(body), /key-123456/, 'the access key is not in the description')
})

t.test('Splunk takes its HEC endpoint, type, token and acknowledgement timeout; the token is never described', async (t) => {
  const { call, service } = memoryApi()
  await call('CreateDeliveryStream', {
    DeliveryStreamName: 'splunk',
    SplunkDestinationConfiguration: { HECEndpoint: 'https://splunk.local:8088', HECEndpointType: 'Event', HECToken: 'tok-abcdef', HECAcknowledgmentTimeoutInSeconds: 200, RetryOptions: { DurationInSeconds: 60 }, S3Configuration: S3() },
  })
  t.same(service.describe('splunk')!.config.sink, { type: 'splunk', url: 'https://splunk.local:8088', token: 'tok-abcdef', endpointType: 'Event', timeoutMs: 200_000 })
  const { body } = await call('DescribeDeliveryStream', { DeliveryStreamName: 'splunk' })
  t.match(body.DeliveryStreamDescription.Destinations[0].SplunkDestinationDescription, { HECEndpoint: 'https://splunk.local:8088', HECEndpointType: 'Event', HECAcknowledgmentTimeoutInSeconds: 200 })
  t.notMatch(JSON.stringify(body), /tok-abcdef/)
})

t.test('what the relay cannot do is refused with InvalidArgumentException naming it', async (t) => {
  const { call } = memoryApi(new MemoryDelivery(['enrich']))
  const refused = async (extra: Record<string, unknown>, message: RegExp, name = 'bad') => {
    const out = await call('CreateDeliveryStream', { DeliveryStreamName: name, ...extra })
    t.match(out, { status: 400, body: { __type: 'InvalidArgumentException', message } }, String(message))
  }
  await refused({ ExtendedS3DestinationConfiguration: S3({ CompressionFormat: 'ZIP' }) }, /^CompressionFormat ZIP is not supported by Tributary; use UNCOMPRESSED, GZIP or Snappy\.$/)
  await refused({ ExtendedS3DestinationConfiguration: S3({ CompressionFormat: 'HADOOP_SNAPPY' }) }, /CompressionFormat HADOOP_SNAPPY is not supported/)
  await refused({ ExtendedS3DestinationConfiguration: S3({ ProcessingConfiguration: { Enabled: true, Processors: [{ Type: 'Lambda', Parameters: [{ ParameterName: 'LambdaArn', ParameterValue: 'arn:aws:lambda:us-east-1:000000000000:function:missing' }] }] } }) }, /names the function missing, which is not a transform of the relay's delivery config/)
  await refused({ ExtendedS3DestinationConfiguration: S3({ ProcessingConfiguration: { Processors: [{ Type: 'RecordDeAggregation' }] } }) }, /Processor type RecordDeAggregation is not supported/)
  await refused({ ExtendedS3DestinationConfiguration: S3({ ProcessingConfiguration: { Processors: [{ Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{d: .d}' }] }] } }) }, /needs DynamicPartitioningConfiguration.Enabled true/)
  await refused({ ExtendedS3DestinationConfiguration: S3({ DynamicPartitioningConfiguration: { Enabled: true } }) }, /Dynamic partitioning needs a MetadataExtraction processor/)
  await refused({}, /needs one destination/)
  await refused({ S3DestinationConfiguration: S3(), HttpEndpointDestinationConfiguration: { EndpointConfiguration: { Url: 'http://x' } } }, /Only one destination can be configured, got S3DestinationConfiguration and HttpEndpointDestinationConfiguration/)
  await refused({ ElasticsearchDestinationConfiguration: { DomainARN: 'x' } }, /ElasticsearchDestinationConfiguration is not supported by Tributary/)
  await refused({ DeliveryStreamType: 'KinesisStreamAsSource', S3DestinationConfiguration: S3() }, /needs KinesisStreamSourceConfiguration.KinesisStreamARN/)
  await refused({ RedshiftDestinationConfiguration: { ClusterJDBCURL: 'jdbc:postgresql://hostonly', CopyCommand: { DataTableName: 't' } } }, /must name a host and a database/)
  await refused({ SplunkDestinationConfiguration: { HECEndpoint: 'http://s', HECEndpointType: 'Raw' } }, /needs HECToken/)
  await refused({ S3DestinationConfiguration: S3(), Tags: [{ Key: 'aws:owner', Value: 'x' }] }, /reserved/)
})

t.test('shape constraints are ValidationExceptions and JSON type errors SerializationExceptions, worded as AWS', async (t) => {
  const { call } = memoryApi()
  t.same(await call('CreateDeliveryStream', { DeliveryStreamName: 'hints', S3DestinationConfiguration: S3({ BufferingHints: { SizeInMBs: 129, IntervalInSeconds: 901 } }) }), {
    status: 400,
    body: { __type: 'ValidationException', message: "2 validation errors detected: Value '901' at 's3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to satisfy constraint: Member must have value less than or equal to 900; Value '129' at 's3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 128" },
  })
  t.match(await call('CreateDeliveryStream', { DeliveryStreamName: 'a b', S3DestinationConfiguration: S3() }), { status: 400, body: { __type: 'ValidationException', message: /at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern/ } })
  t.match(await call('PutRecord', { DeliveryStreamName: 'x', Record: { Data: 5 } }), { status: 400, body: { __type: 'SerializationException' } })
})

t.test('a name taken, a stream absent and an unknown action answer ResourceInUse, ResourceNotFound and UnknownOperation', async (t) => {
  const { call, requests } = memoryApi()
  await call('CreateDeliveryStream', { DeliveryStreamName: 'once', S3DestinationConfiguration: S3() })
  t.same(await call('CreateDeliveryStream', { DeliveryStreamName: 'once', S3DestinationConfiguration: S3() }), { status: 400, body: { __type: 'ResourceInUseException', message: 'Firehose once under accountId 000000000000 already exists.' } })
  for (const action of ['DescribeDeliveryStream', 'DeleteDeliveryStream', 'ListTagsForDeliveryStream']) {
    t.same(await call(action, { DeliveryStreamName: 'nope' }), { status: 400, body: { __type: 'ResourceNotFoundException', message: 'Firehose nope under account 000000000000 not found.' } }, action)
  }
  t.same(await call('UpdateDestination', {}), { status: 400, body: { __type: 'UnknownOperationException', message: "Operation UpdateDestination is not supported by Tributary's Firehose API." } })
  t.same(requests.at(-1), ['unknown', 'UnknownOperationException'], 'an unknown action is counted as unknown, not by its name')
})

t.test('ListDeliveryStreams pages by name after ExclusiveStartDeliveryStreamName and filters by type', async (t) => {
  const { call } = memoryApi(new MemoryDelivery([], ['src']))
  for (const n of ['c', 'a', 'd', 'b']) await call('CreateDeliveryStream', { DeliveryStreamName: n, S3DestinationConfiguration: S3() })
  await call('CreateDeliveryStream', { DeliveryStreamName: 'k', DeliveryStreamType: 'KinesisStreamAsSource', KinesisStreamSourceConfiguration: { KinesisStreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/src' }, S3DestinationConfiguration: S3() })
  t.same((await call('ListDeliveryStreams', {})).body, { DeliveryStreamNames: ['a', 'b', 'c', 'd', 'k'], HasMoreDeliveryStreams: false })
  t.same((await call('ListDeliveryStreams', { Limit: 2 })).body, { DeliveryStreamNames: ['a', 'b'], HasMoreDeliveryStreams: true })
  t.same((await call('ListDeliveryStreams', { Limit: 2, ExclusiveStartDeliveryStreamName: 'b' })).body, { DeliveryStreamNames: ['c', 'd'], HasMoreDeliveryStreams: true })
  t.same((await call('ListDeliveryStreams', { DeliveryStreamType: 'KinesisStreamAsSource' })).body, { DeliveryStreamNames: ['k'], HasMoreDeliveryStreams: false })
  t.same((await call('ListDeliveryStreams', { DeliveryStreamType: 'DirectPut', ExclusiveStartDeliveryStreamName: 'c' })).body, { DeliveryStreamNames: ['d'], HasMoreDeliveryStreams: false })
})

t.test('PutRecord and PutRecordBatch store the records in order and answer a RecordId for each', async (t) => {
  const { call, service } = memoryApi()
  await call('CreateDeliveryStream', { DeliveryStreamName: 'direct', S3DestinationConfiguration: S3() })
  const one = await call('PutRecord', { DeliveryStreamName: 'direct', Record: { Data: Buffer.from('first').toString('base64') } })
  t.same(one, { status: 200, body: { RecordId: '00000000000000000001', Encrypted: false } })
  const batch = await call('PutRecordBatch', { DeliveryStreamName: 'direct', Records: ['a', 'b', 'c'].map((s) => ({ Data: Buffer.from(s).toString('base64') })) })
  t.same(batch.body, { FailedPutCount: 0, Encrypted: false, RequestResponses: [{ RecordId: '00000000000000000002' }, { RecordId: '00000000000000000003' }, { RecordId: '00000000000000000004' }] })
  t.same(service.records.get('direct')!.map(String), ['first', 'a', 'b', 'c'])
})

t.test('PutRecordBatch refuses more than 500 records, more than 4 MiB, a record over 1,000 KiB; storage trouble fails each record', async (t) => {
  const { call, service } = memoryApi()
  await call('CreateDeliveryStream', { DeliveryStreamName: 'limits', S3DestinationConfiguration: S3() })
  const rec = (bytes: number) => ({ Data: Buffer.alloc(bytes, 1).toString('base64') })
  t.match(await call('PutRecordBatch', { DeliveryStreamName: 'limits', Records: Array.from({ length: 501 }, () => rec(1)) }), { status: 400, body: { __type: 'ValidationException', message: /at 'records' failed to satisfy constraint: Member must have length less than or equal to 500/ } })
  t.same(await call('PutRecordBatch', { DeliveryStreamName: 'limits', Records: Array.from({ length: 5 }, () => rec(900_000)) }), { status: 400, body: { __type: 'InvalidArgumentException', message: 'Records size 4500000 bytes exceeds the 4194304 bytes limit of a PutRecordBatch request.' } })
  t.match(await call('PutRecord', { DeliveryStreamName: 'limits', Record: rec(1_024_001) }), { status: 400, body: { __type: 'ValidationException', message: /at 'record.data' failed to satisfy constraint: Member must have length less than or equal to 1024000/ } })
  t.equal((await call('PutRecord', { DeliveryStreamName: 'limits', Record: rec(1_024_000) })).status, 200, 'exactly 1,000 KiB is taken')
  service.failPuts = 1
  t.same((await call('PutRecordBatch', { DeliveryStreamName: 'limits', Records: [rec(1), rec(2)] })).body, {
    FailedPutCount: 2, Encrypted: false,
    RequestResponses: [{ ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'the data directory is full' }, { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'the data directory is full' }],
  })
  service.failPuts = 1
  t.same(await call('PutRecord', { DeliveryStreamName: 'limits', Record: rec(1) }), { status: 503, body: { __type: 'ServiceUnavailableException', message: 'the data directory is full' } })
})

t.test('tags are added, listed in key order with paging, removed, and capped at 50', async (t) => {
  const { call } = memoryApi()
  await call('CreateDeliveryStream', { DeliveryStreamName: 'tagged', S3DestinationConfiguration: S3(), Tags: [{ Key: 'team', Value: 'data' }] })
  t.equal((await call('TagDeliveryStream', { DeliveryStreamName: 'tagged', Tags: [{ Key: 'env', Value: 'prod' }, { Key: 'cost', Value: '' }] })).status, 200)
  t.same((await call('ListTagsForDeliveryStream', { DeliveryStreamName: 'tagged' })).body, { Tags: [{ Key: 'cost', Value: '' }, { Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'data' }], HasMoreTags: false })
  t.same((await call('ListTagsForDeliveryStream', { DeliveryStreamName: 'tagged', ExclusiveStartTagKey: 'cost', Limit: 1 })).body, { Tags: [{ Key: 'env', Value: 'prod' }], HasMoreTags: true })
  await call('UntagDeliveryStream', { DeliveryStreamName: 'tagged', TagKeys: ['env', 'absent'] })
  t.same((await call('ListTagsForDeliveryStream', { DeliveryStreamName: 'tagged' })).body.Tags.map((x: { Key: string }) => x.Key), ['cost', 'team'])
  const many = Array.from({ length: 49 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }))
  t.same(await call('TagDeliveryStream', { DeliveryStreamName: 'tagged', Tags: many }), { status: 400, body: { __type: 'LimitExceededException', message: 'Firehose tagged under account 000000000000 cannot have more than 50 tags.' } })
})

t.test('DeleteDeliveryStream removes an API-made stream and refuses one the relay config declares', async (t) => {
  const { call, service } = memoryApi()
  await call('CreateDeliveryStream', { DeliveryStreamName: 'gone', S3DestinationConfiguration: S3() })
  await call('CreateDeliveryStream', { DeliveryStreamName: 'kept', S3DestinationConfiguration: S3() })
  service.streams.get('kept')!.declared = true
  t.same(await call('DeleteDeliveryStream', { DeliveryStreamName: 'gone' }), { status: 200, body: {} })
  t.equal(service.describe('gone'), undefined)
  t.match(await call('DeleteDeliveryStream', { DeliveryStreamName: 'kept' }), { status: 400, body: { __type: 'ResourceInUseException', message: /declared in the relay's config file/ } })
})

t.test('a MetadataExtractionQuery is split into partition keys by its top-level members', async (t) => {
  t.same(partitionKeysOf('{a: .a, b: [.x, .y] | join(","), "c d": {e: .f}.e, g}'), { a: '.a', b: '[.x, .y] | join(",")', 'c d': '{e: .f}.e', g: '.g' })
  t.throws(() => partitionKeysOf('.device'), { message: /must be a jq object/ })
  t.throws(() => partitionKeysOf('{a: .a, a: .b}'), { message: /names the key a twice/ })
})

t.test('a BucketARN is a bucket name and nothing else: a path in it is refused wherever a bucket is named, and nothing reaches the service', async (t) => {
  const { call, service } = memoryApi()
  const escape = 'arn:aws:s3:::x/../../../../tmp/escaped:s3:::b'
  const http = { EndpointConfiguration: { Url: 'http://hook.local' } }
  const cases: [string, Record<string, unknown>][] = [
    ['ExtendedS3', { ExtendedS3DestinationConfiguration: S3({ BucketARN: escape }) }],
    ['S3', { S3DestinationConfiguration: S3({ BucketARN: escape }) }],
    ['HTTP S3Configuration', { HttpEndpointDestinationConfiguration: { ...http, S3Configuration: S3({ BucketARN: escape }) } }],
    ['Redshift S3Configuration', { RedshiftDestinationConfiguration: { ClusterJDBCURL: 'jdbc:postgresql://db:5432/d', CopyCommand: { DataTableName: 't' }, S3Configuration: S3({ BucketARN: escape }) } }],
    ['Splunk S3Configuration', { SplunkDestinationConfiguration: { HECEndpoint: 'http://s', HECEndpointType: 'Raw', HECToken: 'tok', S3Configuration: S3({ BucketARN: escape }) } }],
    ['upper case', { S3DestinationConfiguration: S3({ BucketARN: 'arn:aws:s3:::Logs' }) }],
    ['a dot-dot name', { S3DestinationConfiguration: S3({ BucketARN: 'arn:aws:s3:::..' }) }],
  ]
  for (const [what, body] of cases) {
    t.match(await call('CreateDeliveryStream', { DeliveryStreamName: 'escape', ...body }),
      { status: 400, body: { __type: 'ValidationException', message: /\.bucketARN' failed to satisfy constraint: Member must satisfy regular expression pattern/ } }, what)
  }
  t.equal(service.streams.size, 0, 'no delivery stream was made')
  // Behind the shape check, the ARN is parsed whole too, never sliced at its first ":::".
  t.throws(() => bucketOfArn(escape), { name: 'InvalidArgumentException', message: /BucketARN "arn:aws:s3:::x\/\.\.\/.*" is not an S3 bucket ARN/ })
  t.throws(() => bucketOfArn('arn:aws:s3:::a..b'), { name: 'InvalidArgumentException' })
  t.equal(bucketOfArn('arn:aws-cn:s3:::logs.2024-eu'), 'logs.2024-eu', 'another partition and S3\'s dots and dashes are a bucket name')
})

t.test('a bad Prefix or ErrorOutputPrefix is InvalidArgumentException naming it, and nothing reaches the service', async (t) => {
  const { call, service } = memoryApi()
  const refused = async (extra: Record<string, unknown>, message: RegExp) => {
    t.match(await call('CreateDeliveryStream', { DeliveryStreamName: 'prefixed', ...extra }), { status: 400, body: { __type: 'InvalidArgumentException', message } }, String(message))
  }
  await refused({ ExtendedS3DestinationConfiguration: S3({ Prefix: 'a/!{bogus:x}/' }) }, /^Prefix: prefix "a\/!\{bogus:x\}\/": /)
  await refused({ ExtendedS3DestinationConfiguration: S3({ ErrorOutputPrefix: 'e/!{timestamp}/' }) }, /^ErrorOutputPrefix: prefix "e\/!\{timestamp\}\/"/)
  await refused({ ExtendedS3DestinationConfiguration: S3({ Prefix: '/logs/' }) }, /^Prefix "\/logs\/" starts with \/: a prefix must not start with \//)
  await refused({ ExtendedS3DestinationConfiguration: S3({ ErrorOutputPrefix: '/errors/' }) }, /^ErrorOutputPrefix "\/errors\/" starts with \//)
  await refused({ S3DestinationConfiguration: S3({ Prefix: 'logs/../../up/' }) }, /^Prefix "logs\/\.\.\/\.\.\/up\/" has a "\.\." segment/)
  await refused({ S3DestinationConfiguration: S3({ Prefix: 'logs//day/' }) }, /has an empty segment/)
  await refused({ S3DestinationConfiguration: S3({ Prefix: '!{timestamp:yyyy}/./' }) }, /has a "\." segment/)
  for (const source of ['partitionKeyFromQuery', 'partitionKeyFromLambda']) {
    await refused({
      ExtendedS3DestinationConfiguration: S3({
        Prefix: 'p/!{partitionKeyFromQuery:d}/', ErrorOutputPrefix: `e/!{${source}:d}/`, DynamicPartitioningConfiguration: { Enabled: true },
        ProcessingConfiguration: { Enabled: true, Processors: [{ Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{d: .d}' }] }] },
      }),
    }, new RegExp(`^ErrorOutputPrefix "e/!\\{${source}:d\\}/" uses partitionKeyFromQuery or partitionKeyFromLambda, which an error prefix cannot`))
  }
  // A record sink's S3Configuration is its error location: the same rules.
  await refused({ HttpEndpointDestinationConfiguration: { EndpointConfiguration: { Url: 'http://hook.local' }, S3Configuration: S3({ ErrorOutputPrefix: 'f/!{partitionKeyFromQuery:d}/' }) } }, /^S3Configuration.ErrorOutputPrefix .* uses partitionKeyFromQuery/)
  await refused({ HttpEndpointDestinationConfiguration: { EndpointConfiguration: { Url: 'http://hook.local' }, S3Configuration: S3({ Prefix: '/failed/' }) } }, /^S3Configuration.Prefix "\/failed\/" starts with \//)
  t.equal(service.streams.size, 0, 'no delivery stream was made')
  t.equal((await call('CreateDeliveryStream', { DeliveryStreamName: 'fine', S3DestinationConfiguration: S3({ Prefix: 'a.b/..x/!{timestamp:yyyy}/', ErrorOutputPrefix: 'err/!{firehose:error-output-type}/' }) })).status, 200,
    'dots inside a segment and expressions are fine')
})

/** A MemoryDelivery that, as the real service does when it starts a stream, compiles its partition keys with jq. */
class JqDelivery extends MemoryDelivery {
  constructor(readonly jqPath?: string) { super() }
  override async create(config: DeliveryStreamConfig, tags: Record<string, string> = {}): Promise<DeliveryStreamDescription> {
    if (config.processing.partitioning) await (await JqPartitioner.create(config.processing.partitioning.keys, this.jqPath ? { jqPath: this.jqPath } : {})).close()
    return super.create(config, tags)
  }
}

t.test('the format layer\'s refusals are the caller\'s (InvalidArgumentException, not a retried 500); jq not running is ServiceUnavailableException', async (t) => {
  const partitioned = (query: string) => ({
    DeliveryStreamName: 'jq',
    ExtendedS3DestinationConfiguration: S3({
      Prefix: 'p/!{partitionKeyFromQuery:d}/', ErrorOutputPrefix: 'e/', DynamicPartitioningConfiguration: { Enabled: true },
      ProcessingConfiguration: { Enabled: true, Processors: [{ Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: query }] }] },
    }),
  })
  const real = memoryApi(new JqDelivery())
  t.match(await real.call('CreateDeliveryStream', partitioned('{d: .d | no_such_function}')), { status: 400, body: { __type: 'InvalidArgumentException', message: /partition key "d": the jq expression/ } })
  t.same(real.requests.at(-1), ['CreateDeliveryStream', 'InvalidArgumentException'])
  t.equal((await real.call('CreateDeliveryStream', partitioned('{d: .d}'))).status, 200, 'a query that compiles is taken')
  const missing = memoryApi(new JqDelivery('/nonexistent/jq'))
  t.match(await missing.call('CreateDeliveryStream', partitioned('{d: .d}')), { status: 503, body: { __type: 'ServiceUnavailableException', message: /cannot run \/nonexistent\/jq/ } })
})
