/**
 * GetShardIterator and GetRecords, through the shard reader: the iterator carries the stream, the
 * shard and the next offset, authenticated and expiring (iterator.ts).
 */
import { Limits } from '../../../shared/limits.js'
import type { StartType } from '../../reader.js'
import { shardIdOf } from '../../shardmap.js'
import { streamNameOf, type StreamState } from '../../streams.js'
import { throughputOf } from '../../throughput.js'
import { childShardsJson, findShard, namedStream, positionOf, RenderedResult, resolveStream, shardIndexIn, startOffset, type ApiContext } from '../context.js'
import { KinesisError, iteratorTypeForbidsSequence, iteratorTypeNeedsSequence } from '../errors.js'
import { renderRecords, type RecordsPage } from '../render.js'
import { required, SequenceNumber, SHARD_ITERATOR_TYPES, ShardId, ShardIterator, StreamARN, StreamId, StreamName, validate } from '../validate.js'

export async function getShardIterator(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ShardId: string; ShardIteratorType: StartType; StartingSequenceNumber?: string; Timestamp?: number }>(body, {
    // kinesalite's validations/getShardIterator.js: AWS's order, members and enum alike.
    ShardId: required(ShardId),
    ShardIteratorType: { type: 'string', required: true, enum: SHARD_ITERATOR_TYPES },
    StartingSequenceNumber: SequenceNumber, StreamName, Timestamp: { type: 'timestamp' }, StreamARN, StreamId,
  }, 'declared')
  // The shard id is read before the stream is looked up; a stream that is not there is reported as its shard.
  const name = namedStream(req, ctx)
  const index = shardIndexIn(req.ShardId, name, ctx)
  let state: StreamState
  try {
    state = resolveStream(req, ctx)
  } catch (err) {
    if (err instanceof KinesisError && err.type === 'ResourceNotFoundException' && req.StreamARN === undefined) throw ctx.errors.shardNotFound(shardIdOf(index), name)
    throw err
  }
  const shard = findShard(state, req.ShardId, ctx)
  const type = req.ShardIteratorType
  if ((type === 'AT_SEQUENCE_NUMBER' || type === 'AFTER_SEQUENCE_NUMBER') && req.StartingSequenceNumber === undefined) throw iteratorTypeNeedsSequence(type)
  if ((type === 'TRIM_HORIZON' || type === 'LATEST') && req.StartingSequenceNumber !== undefined) throw iteratorTypeForbidsSequence(type)
  const offset = await startOffset(positionOf(type, req.StartingSequenceNumber, req.Timestamp), state, shard, 'GetShardIterator', ctx)
  return { ShardIterator: ctx.iterators.encode({ streamId: state.meta.id, shardIndex: shard.meta.index, offset, createdMs: ctx.now() }) }
}

export async function getRecords(body: unknown, ctx: ApiContext) {
  const req = validate<{ ShardIterator: string; Limit?: number; StreamARN?: string }>(body, {
    // kinesalite's validations/getRecords.js: Limit, ShardIterator.
    Limit: { type: 'integer', min: 1, max: 10000 }, ShardIterator, StreamARN, StreamId,
  }, 'declared')
  const position = ctx.iterators.decode(req.ShardIterator, ctx.now())
  const state = ctx.streams.getById(position.streamId)
  const shard = state?.shards.find((s) => s.meta.index === position.shardIndex)
  if (!state || !shard || ctx.streams.expired(state, shard)) {
    throw ctx.errors.shardNotFound(shardIdOf(position.shardIndex), streamNameOf(position.streamId))
  }
  const budget = throughputOf(state)
  if (budget && !budget.read(shard, ctx.now())) throw ctx.errors.rateExceeded(shard.meta.shardId, state.meta.name)
  // Views, not copies: the page is rendered and dropped at once.
  const page = await ctx.reader.page(state, shard, position.offset, req.Limit ?? Limits.maxGetRecordsCount, Limits.maxGetRecordsBytes, ctx.now, { views: true })
  const now = page.readAtMs
  let bytes = 0
  for (const r of page.records) bytes += r.data.length
  budget?.charged(shard, bytes, now)
  ctx.onRead?.(state.meta.name, page.records.length, bytes)
  // Rendered straight into the answer's bytes (render.ts): no object per record on the hot path.
  const answer: RecordsPage = {
    records: page.records,
    shard,
    nextShardIterator: page.shardEnded ? undefined : ctx.iterators.encode({ streamId: state.meta.id, shardIndex: shard.meta.index, offset: page.nextOffset, createdMs: now }),
    millisBehindLatest: page.millisBehindLatest,
    // At the end of a closed shard: no next iterator, and the shards to continue with.
    childShards: page.shardEnded ? childShardsJson(page.children) : undefined,
  }
  return new RenderedResult((protocol) => renderRecords(answer, protocol))
}
