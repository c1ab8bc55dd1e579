/**
 * ListShards: paging with NextToken and MaxResults, and every ShardFilter type.
 */
import type { ShardState, StreamState } from '../../streams.js'
import { namedStream, resolveStream, shardIndexIn, shardJson, type ApiContext } from '../context.js'
import {
  filterForbidsShardId, filterForbidsTimestamp, filterNeedsShardId, filterNeedsTimestamp, nextTokenOrStreamNameMissing, nextTokenWith,
} from '../errors.js'
import { shardIndexOf } from '../shardid.js'
import { ShardId, StreamARN, StreamId, StreamName, validate } from '../validate.js'

export async function listShards(body: unknown, ctx: ApiContext) {
  const req = validate<{
    StreamName?: string; StreamARN?: string; NextToken?: string; ExclusiveStartShardId?: string; MaxResults?: number
    StreamCreationTimestamp?: number; ShardFilter?: { Type: string; ShardId?: string; Timestamp?: number }
  }>(body, {
    // kinesalite's validations/listShards.js: ExclusiveStartShardId, MaxResults, NextToken,
    // StreamCreationTimestamp, StreamName; then the service model's order.
    ExclusiveStartShardId: ShardId,
    MaxResults: { type: 'integer', min: 1, max: 10000 },
    NextToken: { type: 'string', min: 1, max: 1048576 },
    StreamCreationTimestamp: { type: 'timestamp' },
    StreamName,
    ShardFilter: { type: 'structure', fields: {
      Type: { type: 'string', required: true, enum: ['AFTER_SHARD_ID', 'AT_TRIM_HORIZON', 'FROM_TRIM_HORIZON', 'AT_LATEST', 'AT_TIMESTAMP', 'FROM_TIMESTAMP'] },
      ShardId, Timestamp: { type: 'timestamp' },
    } },
    StreamARN, StreamId,
  }, 'declared')
  if (req.NextToken !== undefined && (req.StreamName !== undefined || req.StreamARN !== undefined)) throw nextTokenWith('StreamName')
  // The token names the stream, the position and the filter (a ShardFilter sent again with it is ignored).
  if (req.NextToken !== undefined && req.ExclusiveStartShardId !== undefined) throw nextTokenWith('ExclusiveStartShardId')
  if (req.NextToken !== undefined && req.StreamCreationTimestamp !== undefined) throw nextTokenWith('StreamCreationTimestamp')
  let state: StreamState
  let after = req.ExclusiveStartShardId
  let filter = req.ShardFilter
  // Shard ids in any form Kinesis reads (shardid.ts), checked before the stream is looked up.
  for (const id of [after, filter?.ShardId]) if (id !== undefined) shardIndexIn(id, namedStream(req, ctx), ctx)
  if (req.NextToken !== undefined) {
    const token = ctx.tokens.decode<{ stream: string; id: string; after: string; filter?: typeof filter }>(req.NextToken, 'ListShards')
    const s = ctx.streams.get(token.stream)
    if (!s || s.meta.id !== token.id) throw ctx.errors.streamNotFound(token.stream)
    state = s
    after = token.after
    filter = token.filter
  } else {
    if (req.StreamName === undefined && req.StreamARN === undefined) throw nextTokenOrStreamNameMissing()
    state = resolveStream(req, ctx)
  }
  const afterIndex = after === undefined ? -1 : shardIndexOf(after) ?? -1
  const shards = filterShards(state, filter, ctx).filter((s) => s.meta.index > afterIndex)
  // "If you specify a value greater than 1000, at most 1000 results are returned" (the model's documentation).
  const max = Math.min(req.MaxResults ?? 1000, 1000)
  const page = shards.slice(0, max)
  const more = shards.length > page.length
  return {
    Shards: page.map(shardJson),
    ...(more ? { NextToken: ctx.tokens.encode({ stream: state.meta.name, id: state.meta.id, after: page[page.length - 1]!.meta.shardId, filter }) } : {}),
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
  if ((type === 'AT_TIMESTAMP' || type === 'FROM_TIMESTAMP') && filter?.Timestamp === undefined) throw filterNeedsTimestamp(type)
  if (type !== 'AT_TIMESTAMP' && type !== 'FROM_TIMESTAMP' && filter?.Timestamp !== undefined) throw filterForbidsTimestamp()
  if (type === 'AFTER_SHARD_ID' && !filter?.ShardId) throw filterNeedsShardId()
  if (type !== 'AFTER_SHARD_ID' && filter?.ShardId !== undefined) throw filterForbidsShardId()
  switch (type) {
    case 'AFTER_SHARD_ID': return retained.filter((s) => s.meta.index > shardIndexOf(filter!.ShardId!)!)
    case 'AT_TRIM_HORIZON': return retained.filter(rootOf)
    case 'AT_LATEST': return retained.filter((s) => s.meta.endOffset === null)
    case 'AT_TIMESTAMP': return retained.filter((s) => startOf(s) <= filter!.Timestamp! && endOf(s) >= filter!.Timestamp!)
    case 'FROM_TIMESTAMP': return retained.filter((s) => endOf(s) >= filter!.Timestamp!)
    default: return retained
  }
}

