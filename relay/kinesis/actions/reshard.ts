/**
 * Resharding actions: SplitShard, MergeShards, UpdateShardCount (UNIFORM_SCALING). Each validates
 * as AWS does, then hands a plan to Streams, which applies it atomically while reads and writes go on.
 */
import { ErrorCode, TributaryError } from '../../../shared/errors.js'
import { Limits } from '../../../shared/limits.js'
import type { ShardState, StreamState } from '../../streams.js'
import { shardIdOf } from '../../shardmap.js'
import { namedStream, resolveStream, shardIndexIn, type ApiContext } from '../context.js'
import { ShardId, StreamARN, StreamId, StreamName, validate, type Shape } from '../validate.js'

const HashKey: Shape = { type: 'string', required: true, pattern: '0|([1-9]\\d{0,38})' }
const RequiredShardId = { ...ShardId, required: true } as Shape

/**
 * The stream a reshard names. SplitShard, MergeShards and UpdateShardCount are for provisioned
 * streams only (Kinesis reshapes on-demand ones itself), and for a stream no other change holds.
 */
function reshardableStream(req: { StreamName?: string; StreamARN?: string }, ctx: ApiContext): StreamState {
  const state = resolveStream(req, ctx)
  if (state.meta.mode === 'ON_DEMAND') throw ctx.errors.onDemandNotReshardable(state.meta.name)
  requireActive(state, ctx)
  return state
}

function requireActive(state: StreamState, ctx: ApiContext): void {
  if (state.meta.status !== 'ACTIVE') throw ctx.errors.notActive(state.meta.name, state.meta.status)
}

/** An open shard of the stream, by id in any form Kinesis reads (shardid.ts); a closed one cannot be split or merged again. */
function openShard(state: StreamState, shardId: string, ctx: ApiContext): ShardState {
  const index = shardIndexIn(shardId, state.meta.name, ctx)
  const shard = state.shards.find((s) => s.meta.index === index)
  if (!shard || ctx.streams.expired(state, shard)) throw ctx.errors.couldNotFindShard(shardIdOf(index), state.meta.name)
  if (shard.meta.endOffset !== null) throw ctx.errors.shardAlreadyMergedOrSplit(shard.meta.shardId, state.meta.name)
  return shard
}

function shardLimit(extra: number, ctx: ApiContext): void {
  const current = ctx.streams.openShardCount()
  if (current + extra > Limits.maxShardsPerStream) {
    throw ctx.errors.shardLimitExceeded(Limits.maxShardsPerStream, current, extra)
  }
}

/** Streams refuses (CONFLICT) a reshard of a stream that another change holds; Kinesis says ResourceInUse. */
async function run(state: StreamState, ctx: ApiContext, change: () => Promise<void>): Promise<void> {
  try {
    await change()
  } catch (err) {
    if (err instanceof TributaryError && err.code === ErrorCode.CONFLICT) {
      requireActive(state, ctx)
      throw ctx.errors.streamBeingChanged(state.meta.name)
    }
    throw err
  }
}

export async function splitShard(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ShardToSplit: string; NewStartingHashKey: string }>(body, {
    // kinesalite's validations/splitShard.js: NewStartingHashKey, StreamName, ShardToSplit.
    NewStartingHashKey: HashKey, StreamName, ShardToSplit: RequiredShardId, StreamARN, StreamId,
  }, 'declared')
  // Shard ids are read before the stream is looked up, as Kinesis reads them.
  shardIndexIn(req.ShardToSplit, namedStream(req, ctx), ctx)
  const state = reshardableStream(req, ctx)
  const shard = openShard(state, req.ShardToSplit, ctx)
  const key = BigInt(req.NewStartingHashKey)
  if (key <= shard.start + 1n || key >= shard.end) {
    throw ctx.errors.splitKeyOutOfRange(req.NewStartingHashKey, shard.meta.shardId, shard.meta.hashStart, shard.meta.hashEnd, state.meta.name)
  }
  shardLimit(1, ctx)
  await run(state, ctx, () => ctx.streams.split(state, shard.meta.shardId, key))
  return {}
}

export async function mergeShards(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ShardToMerge: string; AdjacentShardToMerge: string }>(body, {
    // kinesalite's validations/mergeShards.js: ShardToMerge, AdjacentShardToMerge, StreamName.
    ShardToMerge: RequiredShardId, AdjacentShardToMerge: RequiredShardId, StreamName, StreamARN, StreamId,
  }, 'declared')
  for (const id of [req.ShardToMerge, req.AdjacentShardToMerge]) shardIndexIn(id, namedStream(req, ctx), ctx)
  const state = reshardableStream(req, ctx)
  const a = openShard(state, req.ShardToMerge, ctx)
  const b = openShard(state, req.AdjacentShardToMerge, ctx)
  if (a.end + 1n !== b.start && b.end + 1n !== a.start) throw ctx.errors.notAdjacent(a.meta.shardId, b.meta.shardId, state.meta.name)
  await run(state, ctx, () => ctx.streams.merge(state, a.meta.shardId, b.meta.shardId))
  return {}
}

export async function updateShardCount(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; TargetShardCount: number; ScalingType: string }>(body, {
    // kinesalite's validations/updateShardCount.js: ScalingType, StreamName, TargetShardCount.
    ScalingType: { type: 'string', required: true, enum: ['UNIFORM_SCALING'] },
    StreamName,
    TargetShardCount: { type: 'integer', required: true, min: 1, max: 100000 },
    StreamARN, StreamId,
  }, 'declared')
  const state = reshardableStream(req, ctx)
  const current = state.open.length
  const target = req.TargetShardCount
  const reply = () => ({ StreamName: state.meta.name, CurrentShardCount: current, TargetShardCount: target, StreamARN: state.meta.arn })
  const name = state.meta.name
  if (target > current * 2) throw ctx.errors.scaleUpBeyondDouble(name, current, target)
  if (target * 2 < current) throw ctx.errors.scaleDownBelowHalf(name, current, target)
  if (target > Limits.maxShardsPerStream) throw ctx.errors.scaleBeyondStreamShardLimit(name, current, target, Limits.maxShardsPerStream)
  if (target === current && state.open.every((s, i) => s.meta.hashStart === String(evenStart(i, target)))) return reply()
  if ((await ctx.streams.recentScalings(state)).length >= MAX_SCALINGS_PER_DAY) throw ctx.errors.scalingsPerDayExceeded(name, current, target, MAX_SCALINGS_PER_DAY)
  shardLimit(Math.max(0, target - current), ctx)
  await run(state, ctx, () => ctx.streams.scale(state, target))
  await ctx.streams.noteScaling(state)
  return reply()
}

const MAX_SCALINGS_PER_DAY = 10
const evenStart = (i: number, count: number) => ((1n << 128n) / BigInt(count)) * BigInt(i)
