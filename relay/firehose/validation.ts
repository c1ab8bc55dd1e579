/**
 * The request shapes of the Firehose actions, with AWS's constraints, declared for validate.ts (the
 * Kinesis layer's checker, which words a type error as SerializationException and a broken
 * constraint as ValidationException, as every AWS JSON 1.1 service does). Members the relay ignores
 * (RoleARN, CloudWatchLoggingOptions, encryption) are declared so that they are type-checked, never
 * refused for being there.
 */
import type { Shape } from '../kinesis/validate.js'
import { invalidArgument } from './errors.js'

const str = (min: number, max: number, extra: Partial<Extract<Shape, { type: 'string' }>> = {}): Shape => ({ type: 'string', min, max, ...extra })
const req = (shape: Shape): Shape => ({ ...shape, required: true } as Shape)
const struct = (fields: Record<string, Shape>, required = false): Shape => ({ type: 'structure', fields, required })

export const DeliveryStreamName: Shape = str(1, 64, { pattern: '[a-zA-Z0-9_.-]+' })
const RoleARN = str(1, 512)
// Stricter than AWS's `arn:.*:s3:::[\w.-]{1,255}`, whose `.*` lets a "bucket" carry a path: the ARN
// is matched whole (validate anchors it) and the name follows S3's bucket-name rules (shapes.ts bucketOfArn).
const BucketARN = str(1, 2048, { pattern: 'arn:[a-z0-9-]+:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]' })
const Prefix = str(0, 1024)
const BufferingHints = struct({ SizeInMBs: { type: 'integer', min: 1, max: 128 }, IntervalInSeconds: { type: 'integer', min: 0, max: 900 } })
const CompressionFormat = str(0, 64, { enum: ['UNCOMPRESSED', 'GZIP', 'ZIP', 'Snappy', 'HADOOP_SNAPPY'] })
const EncryptionConfiguration = struct({ NoEncryptionConfig: str(0, 64), KMSEncryptionConfig: struct({ AWSKMSKeyARN: str(1, 512) }) })
const CloudWatchLoggingOptions = struct({ Enabled: { type: 'boolean' }, LogGroupName: str(0, 512), LogStreamName: str(0, 512) })
const RetryOptions = struct({ DurationInSeconds: { type: 'integer', min: 0, max: 7200 } })

const ProcessorParameter: Shape = struct({
  ParameterName: req(str(1, 64, { enum: ['LambdaArn', 'NumberOfRetries', 'MetadataExtractionQuery', 'JsonParsingEngine', 'RoleArn', 'BufferSizeInMBs', 'BufferIntervalInSeconds', 'SubRecordType', 'Delimiter', 'CompressionFormat', 'DataMessageExtraction'] })),
  ParameterValue: req(str(1, 5120)),
})
const Processor: Shape = struct({
  Type: req(str(1, 64, { enum: ['RecordDeAggregation', 'Decompression', 'CloudWatchLogProcessing', 'Lambda', 'MetadataExtraction', 'AppendDelimiterToRecord'] })),
  Parameters: { type: 'list', member: ProcessorParameter },
})
const ProcessingConfiguration = struct({ Enabled: { type: 'boolean' }, Processors: { type: 'list', member: Processor } })

export const S3DestinationConfiguration = struct({
  RoleARN, BucketARN: req(BucketARN), Prefix, ErrorOutputPrefix: Prefix, BufferingHints, CompressionFormat, EncryptionConfiguration, CloudWatchLoggingOptions,
})

const ParquetSerDe = struct({
  BlockSizeBytes: { type: 'integer', min: 67108864 }, PageSizeBytes: { type: 'integer', min: 65536 },
  Compression: str(0, 64, { enum: ['UNCOMPRESSED', 'GZIP', 'SNAPPY'] }), EnableDictionaryCompression: { type: 'boolean' },
  MaxPaddingBytes: { type: 'integer', min: 0 }, WriterVersion: str(0, 64, { enum: ['V1', 'V2'] }),
})
const DataFormatConversionConfiguration = struct({
  Enabled: { type: 'boolean' },
  SchemaConfiguration: struct({ RoleARN, CatalogId: str(1, 1024), DatabaseName: str(1, 1024), TableName: str(1, 1024), Region: str(1, 1024), VersionId: str(1, 1024) }),
  InputFormatConfiguration: struct({ Deserializer: struct({ OpenXJsonSerDe: struct({ ConvertDotsInJsonKeysToUnderscores: { type: 'boolean' }, CaseInsensitive: { type: 'boolean' } }), HiveJsonSerDe: struct({}) }) }),
  OutputFormatConfiguration: struct({ Serializer: struct({ ParquetSerDe, OrcSerDe: struct({}) }) }),
})

export const ExtendedS3DestinationConfiguration = struct({
  RoleARN, BucketARN: req(BucketARN), Prefix, ErrorOutputPrefix: Prefix, BufferingHints, CompressionFormat, EncryptionConfiguration, CloudWatchLoggingOptions,
  ProcessingConfiguration, S3BackupMode: str(0, 64, { enum: ['Disabled', 'Enabled'] }), S3BackupConfiguration: S3DestinationConfiguration,
  DataFormatConversionConfiguration,
  DynamicPartitioningConfiguration: struct({ Enabled: { type: 'boolean' }, RetryOptions }),
  FileExtension: str(0, 128, { pattern: '^$|\\.[0-9a-z!\\-_.*\'()]+' }),
  CustomTimeZone: str(0, 50),
})

export const RedshiftDestinationConfiguration = struct({
  RoleARN,
  ClusterJDBCURL: req(str(1, 512, { pattern: 'jdbc:(redshift|postgresql)://.+' })),
  CopyCommand: req(struct({ DataTableName: req(str(1, 512)), DataTableColumns: str(0, 204800), CopyOptions: str(0, 204800) })),
  Username: str(1, 512), Password: str(6, 512),
  RetryOptions, S3Configuration: S3DestinationConfiguration, ProcessingConfiguration,
  S3BackupMode: str(0, 64, { enum: ['Disabled', 'Enabled'] }), S3BackupConfiguration: S3DestinationConfiguration, CloudWatchLoggingOptions,
})

export const HttpEndpointDestinationConfiguration = struct({
  // AWS requires https://; a self-hosted network may use http:// (issue 14).
  EndpointConfiguration: req(struct({ Url: req(str(1, 1000, { pattern: 'https?://.*' })), Name: str(1, 256), AccessKey: str(0, 4096) })),
  BufferingHints, CloudWatchLoggingOptions,
  RequestConfiguration: struct({
    ContentEncoding: str(0, 64, { enum: ['NONE', 'GZIP'] }),
    CommonAttributes: { type: 'list', min: 0, max: 50, member: struct({ AttributeName: req(str(1, 256)), AttributeValue: req(str(0, 1024)) }) },
  }),
  ProcessingConfiguration, RoleARN, RetryOptions,
  S3BackupMode: str(0, 64, { enum: ['FailedDataOnly', 'AllData'] }), S3Configuration: S3DestinationConfiguration,
})

export const SplunkDestinationConfiguration = struct({
  HECEndpoint: req(str(0, 2048, { pattern: 'https?://.*' })),
  HECEndpointType: req(str(0, 64, { enum: ['Raw', 'Event'] })),
  HECToken: str(0, 2048),
  HECAcknowledgmentTimeoutInSeconds: { type: 'integer', min: 180, max: 600 },
  RetryOptions, S3BackupMode: str(0, 64, { enum: ['FailedEventsOnly', 'AllEvents'] }), S3Configuration: S3DestinationConfiguration,
  ProcessingConfiguration, CloudWatchLoggingOptions,
  BufferingHints: struct({ IntervalInSeconds: { type: 'integer', min: 0, max: 60 }, SizeInMBs: { type: 'integer', min: 1, max: 5 } }),
})

const TagKey = str(1, 128)
export const Tag: Shape = struct({ Key: req(TagKey), Value: str(0, 256) })
export const TagList: Shape = { type: 'list', min: 1, max: 50, member: Tag }
export const TagKeyList: Shape = { type: 'list', min: 1, max: 50, member: TagKey }
export { TagKey }

export const CreateDeliveryStreamInput: Record<string, Shape> = {
  DeliveryStreamName: req(DeliveryStreamName),
  DeliveryStreamType: str(0, 64, { enum: ['DirectPut', 'KinesisStreamAsSource', 'MSKAsSource', 'DatabaseAsSource'] }),
  DirectPutSourceConfiguration: struct({ ThroughputHintInMBs: req({ type: 'integer', min: 1, max: 100 }) }),
  KinesisStreamSourceConfiguration: struct({ KinesisStreamARN: req(str(1, 512, { pattern: 'arn:.*:kinesis:[a-zA-Z0-9\\-]+:\\d{12}:stream/[a-zA-Z0-9_.-]+' })), RoleARN }),
  DeliveryStreamEncryptionConfigurationInput: struct({ KeyARN: str(1, 512), KeyType: str(0, 64, { enum: ['AWS_OWNED_CMK', 'CUSTOMER_MANAGED_CMK'] }) }),
  S3DestinationConfiguration,
  ExtendedS3DestinationConfiguration,
  RedshiftDestinationConfiguration,
  HttpEndpointDestinationConfiguration,
  SplunkDestinationConfiguration,
  // Destinations the relay has no sink for: declared so that naming one is refused by name, not ignored.
  ElasticsearchDestinationConfiguration: struct({}),
  AmazonopensearchserviceDestinationConfiguration: struct({}),
  AmazonOpenSearchServerlessDestinationConfiguration: struct({}),
  SnowflakeDestinationConfiguration: struct({}),
  IcebergDestinationConfiguration: struct({}),
  MSKSourceConfiguration: struct({}),
  DatabaseSourceConfiguration: struct({}),
  Tags: TagList,
}

/** PutRecord's Data: at most 1,000 KiB before base64. */
export const MAX_RECORD_BYTES = 1_024_000
export const RecordShape: Shape = struct({ Data: { type: 'blob', required: true, max: MAX_RECORD_BYTES } })
export const MAX_BATCH_RECORDS = 500
/** PutRecordBatch: at most 4 MiB of data in one request. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024

/** At most 50 tags on a delivery stream, as AWS. */
export const MAX_TAGS = 50
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@%]*$/u

/** Firehose's tag rules beyond lengths: its characters, and no key in AWS's own `aws:` namespace. */
export function checkTags(tags: Record<string, string>): void {
  for (const [key, value] of Object.entries(tags)) {
    if (key.toLowerCase().startsWith('aws:')) throw invalidArgument(`Tag key ${key} is reserved: keys starting with aws: are AWS's.`)
    if (!TAG_TEXT.test(key) || !TAG_TEXT.test(value)) throw invalidArgument(`Tag ${key} contains characters other than Unicode letters, digits, white space and _ . : / = + - @ %.`)
  }
}
