/**
 * The Kinesis Data Streams actions, one handler per action behind one dispatch table. Each handler
 * validates its input with `validate` (AWS's types and wording), then works on Streams and Ingest.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { ErrorCode, TributaryError } from '../../shared/errors.js'
import { Limits, MAX_HASH_KEY } from '../../shared/limits.js'
import { LogFlag, type LogRecord } from '../../shared/logframe.js'
import type { Ingest, IngestRecord } from '../ingest.js'
import type { ShardState, StreamState, Streams } from '../streams.js'
import { KinesisError } from './errors.js'
import type { IteratorCodec } from './iterator.js'
import { decodeSequence } from './sequence.js'
import { mergeShards, splitShard, updateShardCount } from './reshard.js'
import { addTagsToStream, listTagsForResource, listTagsForStream, removeTagsFromStream, tagResource, untagResource } from './tags.js'
import { describeLimits, rateExceeded, throughputOf, updateStreamMode } from './limits.js'
import { decreaseStreamRetentionPeriod, increaseStreamRetentionPeriod } from './retention.js'
import {
  Data, ExplicitHashKey, PartitionKey, SequenceNumber, ShardId, ShardIterator, StreamARN, StreamName, validate, type Shape,
} from './validate.js'

export interface ApiContext {
  streams: Streams
  ingest: Ingest
  iterators: IteratorCodec
  tokenKey: Buffer
  accountId: string
  region: string
  now: () => number
  onRead?: (stream: string, records: number, bytes: number) => void
  /** What the relay's extensions report about a stream: encryption, enhanced monitoring, consumers. */
  describeExtras?: (state: StreamState) => StreamExtras
}

export interface StreamExtras {
  EncryptionType: 'NONE' | 'KMS'
  KeyId?: string
  EnhancedMonitoring: { ShardLevelMetrics: string[] }[]
  ConsumerCount: number
}

function extrasOf(state: StreamState, ctx: ApiContext): StreamExtras {
  return ctx.describeExtras?.(state) ?? { EncryptionType: 'NONE', EnhancedMonitoring: [{ ShardLevelMetrics: [] }], ConsumerCount: 0 }
}

type Handler = (body: unknown, ctx: ApiContext) => Promise<unknown>

const seconds = (ms: number) => ms / 1000

// ---- helpers ----

export function notFound(name: string, ctx: ApiContext): KinesisError {
  return new KinesisError('ResourceNotFoundException', `Stream ${name} under account ${ctx.accountId} not found.`)
}

/** The stream a request names by StreamName or StreamARN (both may be given, and must agree). */
export function resolveStream(req: { StreamName?: string; StreamARN?: string }, ctx: ApiContext): StreamState {
  let name = req.StreamName
  if (req.StreamARN !== undefined) {
    const fromArn = ctx.streams.nameFromArn(req.StreamARN)
    if (fromArn === null || !req.StreamARN.includes(`:${ctx.accountId}:`)) {
      throw new KinesisError('ResourceNotFoundException', `Stream with ARN ${req.StreamARN} not found.`)
    }
    if (name !== undefined && name !== fromArn) {
      throw new KinesisError('InvalidArgumentException', `StreamName ${name} and StreamARN ${req.StreamARN} do not refer to the same stream.`)
    }
    name = fromArn
  }
  if (name === undefined) throw new KinesisError('InvalidArgumentException', 'Either StreamName or StreamARN should be provided.')
  const state = ctx.streams.get(name)
  if (!state || state.meta.status === 'DELETING') throw notFound(name, ctx)
  return state
}

export function findShard(state: StreamState, shardId: string, ctx: ApiContext): ShardState {
  const shard = state.shards.find((s) => s.meta.shardId === shardId)
  // A closed shard past retention is gone, as in Kinesis (its id lives on as a parent of its children).
  if (!shard || ctx.streams.expired(state, shard)) throw new KinesisError('ResourceNotFoundException', `Shard ${shardId} in stream ${state.meta.name} under account ${ctx.accountId} does not exist`)
  return shard
}

function shardJson(shard: ShardState, ctx: ApiContext) {
  // Before every record of the shard (record time 0): AFTER_SEQUENCE_NUMBER with it starts at the first record.
  const range: Record<string, string> = { StartingSequenceNumber: ctx.streams.sequenceOf(shard, 0, 0) }
  // The last offset with the largest record time: not below any sequence number the shard handed out.
  if (shard.meta.endOffset !== null) range.EndingSequenceNumber = ctx.streams.sequenceOf(shard, Math.max(shard.meta.endOffset - 1, 0), 0xfffffffff * 1000)
  return {
    ShardId: shard.meta.shardId,
    ...(shard.meta.parentShardId ? { ParentShardId: shard.meta.parentShardId } : {}),
    ...(shard.meta.adjacentParentShardId ? { AdjacentParentShardId: shard.meta.adjacentParentShardId } : {}),
    HashKeyRange: { StartingHashKey: shard.meta.hashStart, EndingHashKey: shard.meta.hashEnd },
    SequenceNumberRange: range,
  }
}

function modeJson(state: StreamState) {
  return { StreamMode: state.meta.mode }
}

/** Paging tokens (ListShards): authenticated and expiring like AWS's. */
function encodeToken(payload: object, ctx: ApiContext): string {
  const body = Buffer.from(JSON.stringify({ ...payload, t: ctx.now() }))
  const mac = createHmac('sha256', ctx.tokenKey).update(body).digest().subarray(0, 16)
  return Buffer.concat([mac, body]).toString('base64')
}

function decodeToken<T>(token: string, ctx: ApiContext, action: string): T {
  const raw = Buffer.from(token, 'base64')
  const invalid = () => new KinesisError('InvalidArgumentException', `Invalid NextToken.`)
  if (raw.length < 17) throw invalid()
  const mac = raw.subarray(0, 16)
  const body = raw.subarray(16)
  if (!timingSafeEqual(mac, createHmac('sha256', ctx.tokenKey).update(body).digest().subarray(0, 16))) throw invalid()
  const value = JSON.parse(body.toString()) as T & { t: number }
  if (ctx.now() - value.t > 300_000) throw new KinesisError('ExpiredNextTokenException', `The timestamp of the ${action} NextToken is expired.`)
  return value
}

const STREAM_REF: Record<string, Shape> = { StreamName, StreamARN }

// ---- stream actions ----

async function createStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName: string; ShardCount?: number; StreamModeDetails?: { StreamMode: string } }>(body, {
    StreamName: { ...StreamName, required: true } as Shape,
    ShardCount: { type: 'integer', min: 1, max: 100000 },
    StreamModeDetails: { type: 'structure', fields: { StreamMode: { type: 'string', required: true, enum: ['PROVISIONED', 'ON_DEMAND'] } } },
    Tags: { type: 'map', key: { type: 'string', min: 1, max: 128 }, value: { type: 'string', max: 256 }, max: 50 },
  }) as { StreamName: string; ShardCount?: number; StreamModeDetails?: { StreamMode: string }; Tags?: Record<string, string> }
  const onDemand = req.StreamModeDetails?.StreamMode === 'ON_DEMAND' || req.ShardCount === undefined
  if (onDemand && req.ShardCount !== undefined && req.StreamModeDetails?.StreamMode === 'ON_DEMAND') {
    throw new KinesisError('ValidationException', 'ShardCount must not be specified for streams in ON_DEMAND mode.')
  }
  const shardCount = req.ShardCount ?? 4
  if (shardCount > Limits.maxShardsPerStream) {
    throw new KinesisError('LimitExceededException',
      `This request would exceed the shard limit for the account ${ctx.accountId} in ${ctx.region}. Current shard count for the account: 0. Limit: ${Limits.maxShardsPerStream}. Number of additional shards that would have resulted from this request: ${shardCount}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.`)
  }
  try {
    await ctx.streams.create(req.StreamName, shardCount, undefined, { mode: onDemand ? 'ON_DEMAND' : 'PROVISIONED', tags: req.Tags })
  } catch (err) {
    if (err instanceof TributaryError && err.code === ErrorCode.CONFLICT) {
      throw new KinesisError('ResourceInUseException', `Stream ${req.StreamName} under account ${ctx.accountId} already exists.`)
    }
    throw err
  }
  return {}
}

async function deleteStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; EnforceConsumerDeletion?: boolean }>(body, { ...STREAM_REF, EnforceConsumerDeletion: { type: 'boolean' } })
  const state = resolveStream(req, ctx)
  if (!req.EnforceConsumerDeletion && extrasOf(state, ctx).ConsumerCount > 0) {
    throw new KinesisError('ResourceInUseException',
      `DeleteStream can't delete ${ctx.accountId}:${state.meta.name} because there are consumers associated with this data stream. To delete ${state.meta.name} anyway, set the EnforceConsumerDeletion parameter to true to force the deletion of all the consumers that are associated with it.`)
  }
  await ctx.streams.delete(state.meta.name)
  return {}
}

async function describeStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; Limit?: number; ExclusiveStartShardId?: string }>(body, {
    ...STREAM_REF, Limit: { type: 'integer', min: 1, max: 10000 }, ExclusiveStartShardId: ShardId,
  })
  const state = resolveStream(req, ctx)
  const limit = req.Limit ?? 100
  let shards = ctx.streams.retained(state)
  if (req.ExclusiveStartShardId) shards = shards.filter((s) => s.meta.shardId > req.ExclusiveStartShardId!)
  const page = shards.slice(0, limit)
  return {
    StreamDescription: {
      StreamName: state.meta.name,
      StreamARN: state.meta.arn,
      StreamStatus: state.meta.status,
      StreamModeDetails: modeJson(state),
      Shards: page.map((s) => shardJson(s, ctx)),
      HasMoreShards: shards.length > page.length,
      RetentionPeriodHours: state.meta.retentionHours,
      StreamCreationTimestamp: seconds(state.meta.createdMs),
      ...(({ ConsumerCount: _, ...extras }) => extras)(extrasOf(state, ctx)),
    },
  }
}

async function describeStreamSummary(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string }>(body, STREAM_REF)
  const state = resolveStream(req, ctx)
  return {
    StreamDescriptionSummary: {
      StreamName: state.meta.name,
      StreamARN: state.meta.arn,
      StreamStatus: state.meta.status,
      StreamModeDetails: modeJson(state),
      RetentionPeriodHours: state.meta.retentionHours,
      StreamCreationTimestamp: seconds(state.meta.createdMs),
      ...extrasOf(state, ctx),
      OpenShardCount: state.open.length,
    },
  }
}

async function listStreams(body: unknown, ctx: ApiContext) {
  const req = validate<{ Limit?: number; ExclusiveStartStreamName?: string; NextToken?: string }>(body, {
    Limit: { type: 'integer', min: 1, max: 10000 }, ExclusiveStartStreamName: StreamName, NextToken: { type: 'string', min: 1, max: 1048576 },
  })
  let after = req.ExclusiveStartStreamName
  if (req.NextToken !== undefined) after = decodeToken<{ after: string }>(req.NextToken, ctx, 'ListStreams').after
  const limit = req.Limit ?? 100
  const all = ctx.streams.list().filter((s) => after === undefined || s.meta.name > after)
  const page = all.slice(0, limit)
  const more = all.length > page.length
  return {
    StreamNames: page.map((s) => s.meta.name),
    HasMoreStreams: more,
    ...(more ? { NextToken: encodeToken({ after: page[page.length - 1]!.meta.name }, ctx) } : {}),
    StreamSummaries: page.map((s) => ({
      StreamName: s.meta.name, StreamARN: s.meta.arn, StreamStatus: s.meta.status,
      StreamModeDetails: modeJson(s), StreamCreationTimestamp: seconds(s.meta.createdMs),
    })),
  }
}

async function listShards(body: unknown, ctx: ApiContext) {
  const req = validate<{
    StreamName?: string; StreamARN?: string; NextToken?: string; ExclusiveStartShardId?: string; MaxResults?: number
    StreamCreationTimestamp?: number; ShardFilter?: { Type: string; ShardId?: string; Timestamp?: number }
  }>(body, {
    ...STREAM_REF,
    NextToken: { type: 'string', min: 1, max: 1048576 },
    ExclusiveStartShardId: ShardId,
    MaxResults: { type: 'integer', min: 1, max: 10000 },
    StreamCreationTimestamp: { type: 'timestamp' },
    ShardFilter: { type: 'structure', fields: {
      Type: { type: 'string', required: true, enum: ['AFTER_SHARD_ID', 'AT_TRIM_HORIZON', 'FROM_TRIM_HORIZON', 'AT_LATEST', 'AT_TIMESTAMP', 'FROM_TIMESTAMP'] },
      ShardId, Timestamp: { type: 'timestamp' },
    } },
  })
  if (req.NextToken !== undefined && (req.StreamName !== undefined || req.StreamARN !== undefined)) {
    throw new KinesisError('InvalidArgumentException', 'NextToken and StreamName cannot be provided together.')
  }
  // The token names the stream, the position and the filter (a ShardFilter sent again with it is ignored).
  if (req.NextToken !== undefined && req.ExclusiveStartShardId !== undefined) throw new KinesisError('InvalidArgumentException', 'NextToken and ExclusiveStartShardId cannot be provided together.')
  if (req.NextToken !== undefined && req.StreamCreationTimestamp !== undefined) throw new KinesisError('InvalidArgumentException', 'NextToken and StreamCreationTimestamp cannot be provided together.')
  let state: StreamState
  let after = req.ExclusiveStartShardId
  let filter = req.ShardFilter
  if (req.NextToken !== undefined) {
    const token = decodeToken<{ stream: string; id: string; after: string; filter?: typeof filter }>(req.NextToken, ctx, 'ListShards')
    const s = ctx.streams.get(token.stream)
    if (!s || s.meta.id !== token.id) throw notFound(token.stream, ctx)
    state = s
    after = token.after
    filter = token.filter
  } else {
    if (req.StreamName === undefined && req.StreamARN === undefined) throw new KinesisError('InvalidArgumentException', 'Either NextToken or StreamName should be provided.')
    state = resolveStream(req, ctx)
  }
  const shards = filterShards(state, filter, ctx).filter((s) => after === undefined || s.meta.shardId > after)
  const max = req.MaxResults ?? 1000
  const page = shards.slice(0, max)
  const more = shards.length > page.length
  return {
    Shards: page.map((s) => shardJson(s, ctx)),
    ...(more ? { NextToken: encodeToken({ stream: state.meta.name, id: state.meta.id, after: page[page.length - 1]!.meta.shardId, filter }, ctx) } : {}),
  }
}

/**
 * ShardFilter, as the API reference defines each type. A shard "starts" when it was created, except
 * that one with no retained parent holds the stream's oldest records, so it starts at the trim horizon.
 */
function filterShards(state: StreamState, filter: { Type: string; ShardId?: string; Timestamp?: number } | undefined, ctx: ApiContext): ShardState[] {
  const retained = ctx.streams.retained(state)
  const ids = new Set(retained.map((s) => s.meta.shardId))
  const rootOf = (s: ShardState) => !(s.meta.parentShardId && ids.has(s.meta.parentShardId)) && !(s.meta.adjacentParentShardId && ids.has(s.meta.adjacentParentShardId))
  const startOf = (s: ShardState) => (rootOf(s) ? -Infinity : s.meta.createdMs)
  const endOf = (s: ShardState) => ctx.streams.closedMs(state, s) ?? Infinity
  const type = filter?.Type ?? 'FROM_TRIM_HORIZON'
  if ((type === 'AT_TIMESTAMP' || type === 'FROM_TIMESTAMP') && filter?.Timestamp === undefined) {
    throw new KinesisError('InvalidArgumentException', `Timestamp must be provided for ShardFilter of type ${type}.`)
  }
  if (type !== 'AT_TIMESTAMP' && type !== 'FROM_TIMESTAMP' && filter?.Timestamp !== undefined) {
    throw new KinesisError('InvalidArgumentException', `Timestamp can only be provided for ShardFilter of type AT_TIMESTAMP or FROM_TIMESTAMP.`)
  }
  if (type === 'AFTER_SHARD_ID' && !filter?.ShardId) throw new KinesisError('InvalidArgumentException', 'ShardId must be provided for ShardFilter of type AFTER_SHARD_ID.')
  if (type !== 'AFTER_SHARD_ID' && filter?.ShardId !== undefined) {
    throw new KinesisError('InvalidArgumentException', `ShardId can only be provided for ShardFilter of type AFTER_SHARD_ID.`)
  }
  switch (type) {
    case 'AFTER_SHARD_ID': return retained.filter((s) => s.meta.shardId > filter!.ShardId!)
    case 'AT_TRIM_HORIZON': return retained.filter(rootOf)
    case 'AT_LATEST': return retained.filter((s) => s.meta.endOffset === null)
    case 'AT_TIMESTAMP': return retained.filter((s) => startOf(s) <= filter!.Timestamp! && endOf(s) >= filter!.Timestamp!)
    case 'FROM_TIMESTAMP': return retained.filter((s) => endOf(s) >= filter!.Timestamp!)
    default: return retained
  }
}

// ---- record actions ----

/** The shard a record goes to now (only needed when throughput limits are on: ingest routes by itself). */
function routeOf(state: StreamState, partitionKey: string, explicitHashKey: bigint | undefined, ctx: ApiContext): ShardState {
  const hash = explicitHashKey ?? BigInt('0x' + createHash('md5').update(partitionKey, 'utf8').digest('hex'))
  return ctx.streams.route(state, hash)
}

function hashKeyOf(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined
  const value = BigInt(text)
  if (value > MAX_HASH_KEY) {
    throw new KinesisError('InvalidArgumentException', `Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${text}`)
  }
  return value
}

async function putRecord(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; Data: Buffer; PartitionKey: string; ExplicitHashKey?: string; SequenceNumberForOrdering?: string }>(body, {
    ...STREAM_REF, Data, PartitionKey, ExplicitHashKey, SequenceNumberForOrdering: SequenceNumber,
  })
  const state = resolveStream(req, ctx)
  const record: IngestRecord = { partitionKey: req.PartitionKey, data: req.Data, explicitHashKey: hashKeyOf(req.ExplicitHashKey), producerTimeMs: 0, clockSynced: false }
  const meter = throughputOf(state)
  if (meter) {
    const shard = routeOf(state, record.partitionKey, record.explicitHashKey, ctx)
    if (!meter.write(shard, req.Data.length + Buffer.byteLength(req.PartitionKey), ctx.now())) throw rateExceeded(state, shard, ctx)
  }
  const [stored] = await ctx.ingest.putRecords(state, [record])
  return { ShardId: stored!.shard.meta.shardId, SequenceNumber: ctx.streams.sequenceOf(stored!.shard, stored!.offset, stored!.arrivalMs), EncryptionType: extrasOf(state, ctx).EncryptionType }
}

async function putRecords(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; Records: { Data: Buffer; PartitionKey: string; ExplicitHashKey?: string }[] }>(body, {
    ...STREAM_REF,
    Records: { type: 'list', required: true, min: 1, max: Limits.maxPutRecordsCount, member: { type: 'structure', fields: { Data, PartitionKey, ExplicitHashKey } } },
  })
  const state = resolveStream(req, ctx)
  let total = 0
  const records: IngestRecord[] = req.Records.map((r) => {
    total += r.Data.length + Buffer.byteLength(r.PartitionKey)
    return { partitionKey: r.PartitionKey, data: r.Data, explicitHashKey: hashKeyOf(r.ExplicitHashKey), producerTimeMs: 0, clockSynced: false }
  })
  if (total > Limits.maxPutRecordsBytes) throw new KinesisError('InvalidArgumentException', `Records size exceeds 5 MB limit`)
  // With throughput limits on, records over their shard's budget fail one by one, as in Kinesis.
  const meter = throughputOf(state)
  const refused = new Map<number, { ErrorCode: string; ErrorMessage: string }>()
  if (meter) {
    const now = ctx.now()
    records.forEach((r, i) => {
      const shard = routeOf(state, r.partitionKey, r.explicitHashKey, ctx)
      if (!meter.write(shard, r.data.length + Buffer.byteLength(r.partitionKey), now)) {
        const err = rateExceeded(state, shard, ctx)
        refused.set(i, { ErrorCode: err.type, ErrorMessage: err.message })
      }
    })
  }
  const stored = await ctx.ingest.putRecords(state, refused.size ? records.filter((_, i) => !refused.has(i)) : records)
  let k = 0
  return {
    FailedRecordCount: refused.size,
    Records: records.map((_, i) => {
      const failed = refused.get(i)
      if (failed) return failed
      const s = stored[k++]!
      return { SequenceNumber: ctx.streams.sequenceOf(s.shard, s.offset, s.arrivalMs), ShardId: s.shard.meta.shardId }
    }),
    EncryptionType: extrasOf(state, ctx).EncryptionType,
  }
}

const ITERATOR_TYPES = ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'] as const

async function getShardIterator(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ShardId: string; ShardIteratorType: (typeof ITERATOR_TYPES)[number]; StartingSequenceNumber?: string; Timestamp?: number }>(body, {
    ...STREAM_REF, ShardId: { ...ShardId, required: true } as Shape,
    ShardIteratorType: { type: 'string', required: true, enum: ITERATOR_TYPES },
    StartingSequenceNumber: SequenceNumber, Timestamp: { type: 'timestamp' },
  })
  const state = resolveStream(req, ctx)
  const shard = findShard(state, req.ShardId, ctx)
  const type = req.ShardIteratorType
  const bySequence = type === 'AT_SEQUENCE_NUMBER' || type === 'AFTER_SEQUENCE_NUMBER'
  const mustEither = (what: string) => new KinesisError('InvalidArgumentException',
    `Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified ${type} and ${what}.`)
  if (bySequence && req.StartingSequenceNumber === undefined) throw mustEither('no StartingSequenceNumber')
  if ((type === 'TRIM_HORIZON' || type === 'LATEST') && req.StartingSequenceNumber !== undefined) throw mustEither('also a StartingSequenceNumber')
  let offset: number
  switch (type) {
    case 'TRIM_HORIZON':
      offset = shard.log.startOffset()
      break
    case 'LATEST':
      offset = shard.log.nextOffset()
      break
    case 'AT_TIMESTAMP': {
      if (req.Timestamp === undefined) throw new KinesisError('InvalidArgumentException', 'Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.')
      const now = ctx.now()
      if (req.Timestamp > now) {
        throw new KinesisError('InvalidArgumentException', `The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: ${req.Timestamp}, currentTimestampInMillis: ${now}`)
      }
      offset = await shard.log.offsetAtTime(req.Timestamp)
      break
    }
    default:
      offset = offsetOfSequence(type, req.StartingSequenceNumber!, 'GetShardIterator', state, shard, ctx)
  }
  return { ShardIterator: ctx.iterators.encode({ streamId: state.meta.id, shardIndex: shard.meta.index, offset, createdMs: ctx.now() }) }
}

/**
 * The first offset to read for AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER, in GetShardIterator's
 * wording. A record time of 0 marks a position before the record at its offset (a shard's
 * StartingSequenceNumber; a fan-out continuation before the first record): no record has that
 * number, so AFTER it still includes that record.
 */
export function offsetOfSequence(type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER', text: string, action: string, state: StreamState, shard: ShardState, ctx: ApiContext): number {
  const seq = decodeSequence(text)
  const invalid = (why = '') => new KinesisError('InvalidArgumentException',
    `StartingSequenceNumber ${text} used in ${action} on shard ${shard.meta.shardId} in stream ${state.meta.name} under account ${ctx.accountId} is invalid${why}.`)
  if (!seq) throw invalid()
  if (seq.shardIndex !== shard.meta.index) {
    throw new KinesisError('InvalidArgumentException', `Invalid StartingSequenceNumber. It encodes shardId-${String(seq.shardIndex).padStart(12, '0')}, while it was used in a call to a shard with ${shard.meta.shardId}`)
  }
  if (seq.shardCreatedSec !== shard.createdSec) throw invalid(' because it did not come from this stream')
  return type === 'AT_SEQUENCE_NUMBER' || seq.recordSec === 0 ? seq.offset : seq.offset + 1
}

/** A record as GetRecords and SubscribeToShard show it. */
export function recordJson(r: LogRecord, shard: ShardState, ctx: ApiContext) {
  return {
    SequenceNumber: ctx.streams.sequenceOf(shard, r.offset, r.arrivalMs),
    ApproximateArrivalTimestamp: seconds(r.arrivalMs),
    Data: r.data.toString('base64'),
    PartitionKey: r.partitionKey,
    ...(r.flags & LogFlag.encrypted ? { EncryptionType: 'KMS' } : {}),
  }
}

async function getRecords(body: unknown, ctx: ApiContext) {
  const req = validate<{ ShardIterator: string; Limit?: number; StreamARN?: string }>(body, {
    ShardIterator, Limit: { type: 'integer', min: 1, max: 10000 }, StreamARN,
  })
  const position = ctx.iterators.decode(req.ShardIterator, ctx.now())
  const state = ctx.streams.getById(position.streamId)
  const shard = state?.shards.find((s) => s.meta.index === position.shardIndex)
  if (!state || !shard || ctx.streams.expired(state, shard)) {
    const name = position.streamId.replace(/\.[0-9a-f]{12}$/, '')
    throw new KinesisError('ResourceNotFoundException', `Shard shardId-${String(position.shardIndex).padStart(12, '0')} in stream ${name} under account ${ctx.accountId} does not exist`)
  }
  const meter = throughputOf(state)
  if (meter && !meter.read(shard, ctx.now())) throw rateExceeded(state, shard, ctx)
  const { records, nextOffset } = await shard.log.read(position.offset, req.Limit ?? Limits.maxGetRecordsCount, Limits.maxGetRecordsBytes)
  const now = ctx.now()
  let bytes = 0
  const out = records.map((r) => {
    bytes += r.data.length
    return recordJson(r, shard, ctx)
  })
  const caughtUp = nextOffset >= shard.log.endOffset()
  const last = records[records.length - 1]
  const millisBehind = caughtUp ? 0 : Math.max(0, now - (last?.arrivalMs ?? now))
  const closedAndDone = shard.meta.endOffset !== null && nextOffset >= shard.meta.endOffset
  meter?.charged(shard, bytes, now)
  ctx.onRead?.(state.meta.name, records.length, bytes)
  return {
    Records: out,
    ...(closedAndDone ? {} : { NextShardIterator: ctx.iterators.encode({ streamId: state.meta.id, shardIndex: shard.meta.index, offset: nextOffset, createdMs: now }) }),
    MillisBehindLatest: millisBehind,
    // At the end of a closed shard: no next iterator, and the shards to continue with.
    ...(closedAndDone ? { ChildShards: ctx.streams.children(state, shard).map((c) => ({
      ShardId: c.meta.shardId,
      ParentShards: [c.meta.parentShardId, c.meta.adjacentParentShardId].filter((p): p is string => p !== null),
      HashKeyRange: { StartingHashKey: c.meta.hashStart, EndingHashKey: c.meta.hashEnd },
    })) } : {}),
  }
}

export const actions: Record<string, Handler> = {
  CreateStream: createStream,
  DeleteStream: deleteStream,
  DescribeStream: describeStream,
  DescribeStreamSummary: describeStreamSummary,
  ListStreams: listStreams,
  ListShards: listShards,
  PutRecord: putRecord,
  PutRecords: putRecords,
  GetShardIterator: getShardIterator,
  GetRecords: getRecords,
  SplitShard: splitShard,
  MergeShards: mergeShards,
  UpdateShardCount: updateShardCount,
  IncreaseStreamRetentionPeriod: increaseStreamRetentionPeriod,
  DecreaseStreamRetentionPeriod: decreaseStreamRetentionPeriod,
  AddTagsToStream: addTagsToStream,
  ListTagsForStream: listTagsForStream,
  RemoveTagsFromStream: removeTagsFromStream,
  TagResource: tagResource,
  UntagResource: untagResource,
  ListTagsForResource: listTagsForResource,
  DescribeLimits: describeLimits,
  UpdateStreamMode: updateStreamMode,
}
