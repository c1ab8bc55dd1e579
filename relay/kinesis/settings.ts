/**
 * Per-stream settings the API reports back (encryption, enhanced monitoring), held in memory for
 * the hot path (the log asks whether a stream is encrypted on every append) and saved in the
 * metadata store. Also the EnableEnhancedMonitoring / DisableEnhancedMonitoring actions: Tributary
 * records and reports the metric set; its own /metrics already carry per-stream counters.
 */
import type { MetadataStore, StreamSettings } from '../meta/types.js'
import type { Streams } from '../streams.js'
import { resolveStream } from './actions.js'
import type { ExtendedContext } from './extensions.js'
import { StreamARN, StreamName, validate, type Shape } from './validate.js'

export const SHARD_LEVEL_METRICS = [
  'IncomingBytes', 'IncomingRecords', 'OutgoingBytes', 'OutgoingRecords',
  'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded', 'IteratorAgeMilliseconds',
] as const

const DEFAULTS: StreamSettings = { encryptionType: 'NONE', keyId: null, shardLevelMetrics: [] }

export class StreamSettingsRegistry {
  private readonly meta: MetadataStore
  private readonly byStream = new Map<string, StreamSettings>()

  constructor(meta: MetadataStore) {
    this.meta = meta
  }

  /** Loads the settings of every stream the relay has; call before ingest starts. */
  async load(streams: Streams): Promise<void> {
    for (const state of streams.list()) {
      const saved = await this.meta.getStreamSettings(state.meta.id)
      if (saved) this.byStream.set(state.meta.id, saved)
    }
  }

  get(streamId: string): StreamSettings {
    return this.byStream.get(streamId) ?? DEFAULTS
  }

  isEncrypted(streamId: string): boolean {
    return this.byStream.get(streamId)?.encryptionType === 'KMS'
  }

  /** Saved first, then applied: an append sees the new setting only once it would survive a restart. */
  async update(streamId: string, change: Partial<StreamSettings>): Promise<StreamSettings> {
    const next = { ...this.get(streamId), ...change }
    await this.meta.putStreamSettings(streamId, next)
    this.byStream.set(streamId, next)
    return next
  }
}

const METRICS_SHAPE: Shape = {
  type: 'list', required: true, min: 1, max: 7,
  member: { type: 'string', enum: [...SHARD_LEVEL_METRICS, 'ALL'] },
}

const expand = (metrics: string[]) => (metrics.includes('ALL') ? [...SHARD_LEVEL_METRICS] : metrics)
const ordered = (set: Set<string>) => SHARD_LEVEL_METRICS.filter((m) => set.has(m))

async function changeMonitoring(body: unknown, ctx: ExtendedContext, enable: boolean) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ShardLevelMetrics: string[] }>(body, {
    StreamName, StreamARN, ShardLevelMetrics: METRICS_SHAPE,
  })
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

export const monitoringActions = {
  EnableEnhancedMonitoring: (body: unknown, ctx: ExtendedContext) => changeMonitoring(body, ctx, true),
  DisableEnhancedMonitoring: (body: unknown, ctx: ExtendedContext) => changeMonitoring(body, ctx, false),
}
