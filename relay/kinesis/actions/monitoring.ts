/**
 * EnableEnhancedMonitoring / DisableEnhancedMonitoring: Tributary records and reports the metric set;
 * its own /metrics already carry per-stream counters.
 */
import { resolveStream, type ApiContext } from '../context.js'
import { StreamARN, StreamId, StreamName, validate, type Shape } from '../validate.js'

export const SHARD_LEVEL_METRICS = [
  'IncomingBytes', 'IncomingRecords', 'OutgoingBytes', 'OutgoingRecords',
  'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded', 'IteratorAgeMilliseconds',
] as const

const METRICS_SHAPE: Shape = {
  type: 'list', required: true, min: 1, max: 7,
  member: { type: 'string', enum: [...SHARD_LEVEL_METRICS, 'ALL'] },
}

const expand = (metrics: string[]) => (metrics.includes('ALL') ? [...SHARD_LEVEL_METRICS] : metrics)
const ordered = (set: Set<string>) => SHARD_LEVEL_METRICS.filter((m) => set.has(m))

async function changeMonitoring(body: unknown, ctx: ApiContext, enable: boolean) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ShardLevelMetrics: string[] }>(body, {
    StreamName, ShardLevelMetrics: METRICS_SHAPE, StreamARN, StreamId,
  }, 'declared')
  const state = resolveStream(req, ctx)
  const current = ctx.settings.get(state.meta.id).shardLevelMetrics
  const desired = new Set(current)
  for (const m of expand(req.ShardLevelMetrics)) {
    if (enable) desired.add(m)
    else desired.delete(m)
  }
  const next = await ctx.settings.update(state.meta.id, { shardLevelMetrics: ordered(desired) })
  return {
    StreamName: state.meta.name,
    StreamARN: state.meta.arn,
    CurrentShardLevelMetrics: [...current],
    DesiredShardLevelMetrics: [...next.shardLevelMetrics],
  }
}

export const enableEnhancedMonitoring = (body: unknown, ctx: ApiContext) => changeMonitoring(body, ctx, true)
export const disableEnhancedMonitoring = (body: unknown, ctx: ApiContext) => changeMonitoring(body, ctx, false)
