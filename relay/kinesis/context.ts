/**
 * What every Kinesis action works with, below the actions and above the stream domain: the request
 * context (the relay's parts, the clock, AWS's wording) and the helpers every action needs — the
 * stream a request names, a shard by id, where a read starts, and records, shards and streams as the
 * API shows them. Actions import this; it imports no action.
 */
import { LogFlag, type LogRecord } from '../../shared/logframe.js'
import type { Consumers } from '../consumers.js'
import type { LocalKeyCipher } from '../encryption.js'
import type { Fanout } from '../fanout.js'
import type { Ingest } from '../ingest.js'
import type { MetadataStore } from '../meta/types.js'
import { PositionError, type ShardReader, type StartingPosition, type StartType } from '../reader.js'
import type { Router } from '../router.js'
import { sequenceOf } from '../sequence.js'
import { shardIdOf } from '../shardmap.js'
import type { StreamSettingsRegistry } from '../settings.js'
import type { ShardState, StreamState, Streams } from '../streams.js'
import { atTimestampWithoutTimestamp, streamNameArnMismatch, streamNameOrArnMissing, type AwsWording } from './errors.js'
import type { IteratorCodec } from './iterator.js'
import type { Protocol } from './protocol.js'
import { shardIndexOf } from './shardid.js'
import type { PageTokens } from './tokens.js'
import type { AnyResponse } from '../http.js'

export interface ApiContext {
  streams: Streams
  ingest: Ingest
  router: Router
  reader: ShardReader
  fanout: Fanout
  consumers: Consumers
  settings: StreamSettingsRegistry
  cipher: LocalKeyCipher
  meta: MetadataStore
  iterators: IteratorCodec
  tokens: PageTokens
  errors: AwsWording
  accountId: string
  region: string
  now: () => number
  onRead?: (stream: string, records: number, bytes: number) => void
}

/** One action: its validated request in, its answer out (an object, or a StreamingResult). */
export type Handler = (body: unknown, ctx: ApiContext) => Promise<unknown>

/** An answer that is a stream rather than one body (SubscribeToShard): the endpoint hands it the response. */
export class StreamingResult {
  constructor(readonly start: (res: AnyResponse, protocol: Protocol) => void) {}
}

/**
 * An answer a handler renders itself, straight into the bytes of the request's protocol (a hot
 * path's answer, without a JavaScript object per record); `render` must give exactly what
 * `protocol.encode` would give for the same answer.
 */
export class RenderedResult {
  constructor(readonly render: (protocol: Protocol) => Buffer) {}
}

/** AWS's timestamps: epoch seconds with a millisecond fraction. */
export const seconds = (ms: number) => ms / 1000

/** The stream a request names by StreamName or StreamARN (both may be given, and must agree). */
export function resolveStream(req: { StreamName?: string; StreamARN?: string }, ctx: ApiContext): StreamState {
  let name = req.StreamName
  if (req.StreamARN !== undefined) {
    const fromArn = ctx.streams.nameFromArn(req.StreamARN)
    if (fromArn === null || !req.StreamARN.includes(`:${ctx.accountId}:`)) throw ctx.errors.streamArnNotFound(req.StreamARN)
    if (name !== undefined && name !== fromArn) throw streamNameArnMismatch(name, req.StreamARN)
    name = fromArn
  }
  if (name === undefined) throw streamNameOrArnMissing()
  const state = ctx.streams.get(name)
  if (!state || state.meta.status === 'DELETING') throw ctx.errors.streamNotFound(name)
  return state
}

/** The name of the stream a request names, by StreamName or from its StreamARN, for messages that quote it. */
export function namedStream(req: { StreamName?: string; StreamARN?: string }, ctx: ApiContext): string {
  return req.StreamName ?? (req.StreamARN !== undefined ? ctx.streams.nameFromArn(req.StreamARN) ?? '' : '')
}

/** The index a shard id names (shardid.ts), or AWS's "Could not find shard" naming the id as given. */
export function shardIndexIn(shardId: string, stream: string, ctx: ApiContext): number {
  const index = shardIndexOf(shardId)
  if (index === null) throw ctx.errors.couldNotFindShard(shardId, stream)
  return index
}

/**
 * A shard of the stream by id, in any of the forms Kinesis reads (shardid.ts). A closed shard past
 * retention is gone, as in Kinesis (its id lives on as a parent of its children).
 */
export function findShard(state: StreamState, shardId: string, ctx: ApiContext): ShardState {
  const index = shardIndexIn(shardId, state.meta.name, ctx)
  const shard = state.shards.find((s) => s.meta.index === index)
  if (!shard || ctx.streams.expired(state, shard)) throw ctx.errors.shardNotFound(shardIdOf(index), state.meta.name)
  return shard
}

/**
 * Where a read of `shard` starts, for GetShardIterator and SubscribeToShard alike: the timestamp
 * checks and the sequence-number refusals in AWS's wording for `action`.
 */
export async function startOffset(position: StartingPosition, state: StreamState, shard: ShardState, action: string, ctx: ApiContext): Promise<number> {
  if (position.type === 'AT_TIMESTAMP') {
    const now = ctx.now()
    if (position.timestampMs > now) throw ctx.errors.timestampInFuture(position.timestampMs, now)
  }
  try {
    return await ctx.reader.startOffset(shard, position)
  } catch (err) {
    if (!(err instanceof PositionError) || !('sequenceNumber' in position)) throw err
    throw ctx.errors.badStartingSequence(position.sequenceNumber, action, shard.meta.shardId, state.meta.name, err.problem)
  }
}

/** A starting position from the request's fields, once the caller has checked that a sequence number comes exactly with the sequence types. */
export function positionOf(type: StartType, sequenceNumber: string | undefined, timestampMs: number | undefined): StartingPosition {
  switch (type) {
    case 'AT_SEQUENCE_NUMBER':
    case 'AFTER_SEQUENCE_NUMBER':
      return { type, sequenceNumber: sequenceNumber! }
    case 'AT_TIMESTAMP':
      if (timestampMs === undefined) throw atTimestampWithoutTimestamp()
      return { type, timestampMs }
    default:
      return { type }
  }
}

/** A record as GetRecords and SubscribeToShard show it. */
export function recordJson(r: LogRecord, shard: ShardState) {
  return {
    SequenceNumber: sequenceOf(shard, r.offset, r.arrivalMs),
    ApproximateArrivalTimestamp: seconds(r.arrivalMs),
    Data: r.data.toString('base64'),
    PartitionKey: r.partitionKey,
    ...(r.flags & LogFlag.encrypted ? { EncryptionType: 'KMS' } : {}),
  }
}

/** A shard as DescribeStream and ListShards show it. */
export function shardJson(shard: ShardState) {
  // Before every record of the shard (record time 0): AFTER_SEQUENCE_NUMBER with it starts at the first record.
  const range: Record<string, string> = { StartingSequenceNumber: sequenceOf(shard, 0, 0) }
  // The last offset with the largest record time: not below any sequence number the shard handed out.
  if (shard.meta.endOffset !== null) range.EndingSequenceNumber = sequenceOf(shard, Math.max(shard.meta.endOffset - 1, 0), 0xfffffffff * 1000)
  return {
    ShardId: shard.meta.shardId,
    ...(shard.meta.parentShardId ? { ParentShardId: shard.meta.parentShardId } : {}),
    ...(shard.meta.adjacentParentShardId ? { AdjacentParentShardId: shard.meta.adjacentParentShardId } : {}),
    HashKeyRange: { StartingHashKey: shard.meta.hashStart, EndingHashKey: shard.meta.hashEnd },
    SequenceNumberRange: range,
  }
}

/** The shards a reader goes on with after a closed shard (ChildShards). */
export function childShardsJson(children: ShardState[]) {
  return children.map((c) => ({
    ShardId: c.meta.shardId,
    ParentShards: [c.meta.parentShardId, c.meta.adjacentParentShardId].filter((p): p is string => p !== null),
    HashKeyRange: { StartingHashKey: c.meta.hashStart, EndingHashKey: c.meta.hashEnd },
  }))
}

export interface StreamExtras {
  EncryptionType: 'NONE' | 'KMS'
  KeyId?: string
  EnhancedMonitoring: { ShardLevelMetrics: string[] }[]
  ConsumerCount: number
}

/** DescribeStream(Summary)'s encryption, monitoring and consumer count for a stream. */
export function streamExtras(state: StreamState, ctx: ApiContext): StreamExtras {
  const s = ctx.settings.get(state.meta.id)
  return {
    EncryptionType: s.encryptionType,
    ...(s.keyId !== null && s.encryptionType === 'KMS' ? { KeyId: s.keyId } : {}),
    EnhancedMonitoring: [{ ShardLevelMetrics: [...s.shardLevelMetrics] }],
    ConsumerCount: ctx.consumers.count(state.meta.id),
  }
}
