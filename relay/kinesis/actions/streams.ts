/**
 * The stream actions: CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary, ListStreams.
 */
import { ErrorCode, TributaryError } from '../../../shared/errors.js'
import { Limits } from '../../../shared/limits.js'
import type { StreamState } from '../../streams.js'
import { namedStream, resolveStream, shardIndexIn, shardJson, streamExtras, type ApiContext } from '../context.js'
import { shardCountWithOnDemand } from '../errors.js'
import { required, ShardId, StreamARN, StreamId, StreamModeDetails, StreamName, TagMap, validate, type Shape } from '../validate.js'

/**
 * The members that name a stream, in AWS's order: StreamName where kinesalite records AWS placing it,
 * then the members AWS added after kinesalite (StreamARN, StreamId) in the service model's order.
 */
export const STREAM_REF: Record<string, Shape> = { StreamName, StreamARN, StreamId }

export async function createStream(body: unknown, ctx: ApiContext) {
  // kinesalite's validations/createStream.js: ShardCount, StreamName; then the service model's order.
  const req = validate<{ StreamName: string; ShardCount?: number; StreamModeDetails?: { StreamMode: string } }>(body, {
    ShardCount: { type: 'integer', min: 1, max: 100000 },
    StreamName: required(StreamName),
    StreamModeDetails,
    Tags: TagMap,
    WarmThroughputMiBps: { type: 'integer', min: 0 },
    MaxRecordSizeInKiB: { type: 'integer', min: 1024, max: 10240 },
  }, 'declared') as { StreamName: string; ShardCount?: number; StreamModeDetails?: { StreamMode: string }; Tags?: Record<string, string> }
  const onDemand = req.StreamModeDetails?.StreamMode === 'ON_DEMAND' || req.ShardCount === undefined
  if (onDemand && req.ShardCount !== undefined && req.StreamModeDetails?.StreamMode === 'ON_DEMAND') {
    throw shardCountWithOnDemand()
  }
  const shardCount = req.ShardCount ?? 4
  if (shardCount > Limits.maxShardsPerStream) {
    throw ctx.errors.shardLimitExceeded(Limits.maxShardsPerStream, 0, shardCount)
  }
  try {
    await ctx.streams.create(req.StreamName, shardCount, undefined, { mode: onDemand ? 'ON_DEMAND' : 'PROVISIONED', tags: req.Tags })
  } catch (err) {
    if (err instanceof TributaryError && err.code === ErrorCode.CONFLICT) {
      throw ctx.errors.streamExists(req.StreamName)
    }
    throw err
  }
  return {}
}

export async function deleteStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; EnforceConsumerDeletion?: boolean }>(body, {
    StreamName, EnforceConsumerDeletion: { type: 'boolean' }, StreamARN, StreamId,
  }, 'declared')
  const state = resolveStream(req, ctx)
  if (!req.EnforceConsumerDeletion && streamExtras(state, ctx).ConsumerCount > 0) throw ctx.errors.streamHasConsumers(state.meta.name)
  await ctx.streams.delete(state.meta.name)
  return {}
}

/** The members DescribeStream and DescribeStreamSummary both start with, in AWS's order. */
const streamJson = (state: StreamState) => ({
  StreamName: state.meta.name,
  StreamARN: state.meta.arn,
  StreamStatus: state.meta.status,
  StreamModeDetails: { StreamMode: state.meta.mode },
})

/** AWS reports a stream's creation in whole seconds (kinesalite's actions/createStream.js). */
const createdJson = (state: StreamState) => Math.floor(state.meta.createdMs / 1000)

const retentionJson = (state: StreamState) => ({
  RetentionPeriodHours: state.meta.retentionHours,
  StreamCreationTimestamp: createdJson(state),
})

/** EnhancedMonitoring, EncryptionType and (on an encrypted stream) KeyId, in the model's order. */
function encryptionJson(state: StreamState, ctx: ApiContext) {
  const { EnhancedMonitoring, EncryptionType, KeyId } = streamExtras(state, ctx)
  return { EnhancedMonitoring, EncryptionType, ...(KeyId !== undefined ? { KeyId } : {}) }
}

export async function describeStream(body: unknown, ctx: ApiContext) {
  // kinesalite's validations/describeStream.js: Limit, ExclusiveStartShardId, StreamName.
  const req = validate<{ StreamName?: string; StreamARN?: string; Limit?: number; ExclusiveStartShardId?: string }>(body, {
    Limit: { type: 'integer', min: 1, max: 10000 }, ExclusiveStartShardId: ShardId, ...STREAM_REF,
  }, 'declared')
  // An ExclusiveStartShardId in any form Kinesis reads (shardid.ts), checked before the stream is looked up.
  const after = req.ExclusiveStartShardId === undefined ? -1 : shardIndexIn(req.ExclusiveStartShardId, namedStream(req, ctx), ctx)
  const state = resolveStream(req, ctx)
  // "If you specify a value greater than 100, at most 100 results are returned" (the model's documentation).
  const limit = Math.min(req.Limit ?? 100, 100)
  const shards = ctx.streams.retained(state).filter((s) => s.meta.index > after)
  const page = shards.slice(0, limit)
  return {
    StreamDescription: {
      ...streamJson(state),
      Shards: page.map(shardJson),
      HasMoreShards: shards.length > page.length,
      ...retentionJson(state),
      ...encryptionJson(state, ctx),
    },
  }
}

export async function describeStreamSummary(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string }>(body, STREAM_REF, 'declared')
  const state = resolveStream(req, ctx)
  return {
    StreamDescriptionSummary: {
      ...streamJson(state),
      ...retentionJson(state),
      ...encryptionJson(state, ctx),
      OpenShardCount: state.open.length,
      ConsumerCount: streamExtras(state, ctx).ConsumerCount,
    },
  }
}

export async function listStreams(body: unknown, ctx: ApiContext) {
  const req = validate<{ Limit?: number; ExclusiveStartStreamName?: string; NextToken?: string }>(body, {
    Limit: { type: 'integer', min: 1, max: 10000 }, ExclusiveStartStreamName: StreamName, NextToken: { type: 'string', min: 1, max: 1048576 },
  }, 'declared')
  let after = req.ExclusiveStartStreamName
  if (req.NextToken !== undefined) after = ctx.tokens.decode<{ after: string }>(req.NextToken, 'ListStreams').after
  const limit = Math.min(req.Limit ?? 100, 100)
  const all = ctx.streams.list().filter((s) => after === undefined || s.meta.name > after)
  const page = all.slice(0, limit)
  const more = all.length > page.length
  return {
    StreamNames: page.map((s) => s.meta.name),
    HasMoreStreams: more,
    ...(more ? { NextToken: ctx.tokens.encode({ after: page[page.length - 1]!.meta.name }) } : {}),
    StreamSummaries: page.map((s) => ({
      StreamName: s.meta.name, StreamARN: s.meta.arn, StreamStatus: s.meta.status,
      StreamModeDetails: { StreamMode: s.meta.mode }, StreamCreationTimestamp: createdJson(s),
    })),
  }
}

