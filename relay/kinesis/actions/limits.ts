/**
 * Capacity: DescribeLimits and UpdateStreamMode. (The per-shard throughput budgets are the domain's,
 * relay/throughput.ts; PutRecord(s) and GetRecords meter against them.)
 */
import { resolveStream, type ApiContext } from '../context.js'
import { required, StreamARN, StreamId, StreamModeDetails, validate } from '../validate.js'

export async function describeLimits(body: unknown, ctx: ApiContext) {
  validate(body, {}, 'declared')
  const streams = ctx.streams.list()
  return {
    ShardLimit: ctx.streams.shardLimit,
    OpenShardCount: ctx.streams.openShardCount(),
    OnDemandStreamCount: streams.filter((s) => s.meta.mode === 'ON_DEMAND').length,
    OnDemandStreamCountLimit: 50,
  }
}

export async function updateStreamMode(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamARN: string; StreamModeDetails: { StreamMode: 'PROVISIONED' | 'ON_DEMAND' } }>(body, {
    StreamARN: required(StreamARN), StreamId, StreamModeDetails: required(StreamModeDetails), WarmThroughputMiBps: { type: 'integer', min: 0 },
  }, 'declared')
  const state = resolveStream(req, ctx)
  if (state.meta.status !== 'ACTIVE') throw ctx.errors.notActive(state.meta.name, state.meta.status)
  if (state.meta.mode === req.StreamModeDetails.StreamMode) throw ctx.errors.alreadyInMode(state.meta.name, state.meta.mode)
  await ctx.streams.setMode(state, req.StreamModeDetails.StreamMode)
  return {}
}
