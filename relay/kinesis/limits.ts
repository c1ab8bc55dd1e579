/**
 * Capacity: DescribeLimits, UpdateStreamMode, and per-shard throughput limits. The limits are off by
 * default (Tributary is not a metered service) and switched on per stream with the tag
 * `tributary:throughput-limits=on`, so people can test their retry logic: writes 1 MiB/s or 1,000
 * records/s per shard, reads 2 MiB/s and 5 GetRecords calls/s per shard, as Kinesis's provisioned mode.
 */
import { Limits } from '../../shared/limits.js'
import type { ShardState, StreamState } from '../streams.js'
import { resolveStream, type ApiContext } from './actions.js'
import { KinesisError } from './errors.js'
import { THROUGHPUT_TAG } from './tags.js'
import { StreamARN, validate } from './validate.js'

export const ShardLimits = {
  writeBytesPerSec: 1024 * 1024,
  writeRecordsPerSec: 1000,
  readBytesPerSec: 2 * 1024 * 1024,
  readCallsPerSec: 5,
} as const

/** A token bucket holding at most one second's worth; `level` may go negative (a read larger than the budget). */
class Bucket {
  private level: number
  private last: number
  constructor(private readonly rate: number, now: number) {
    this.level = rate
    this.last = now
  }
  private refill(now: number): void {
    this.level = Math.min(this.rate, this.level + ((now - this.last) / 1000) * this.rate)
    this.last = now
  }
  /** Takes `n` when available; false (nothing taken) when not. */
  take(n: number, now: number): boolean {
    this.refill(now)
    if (this.level < Math.min(n, this.rate)) return false
    this.level -= n
    return true
  }
  positive(now: number): boolean {
    this.refill(now)
    return this.level > 0
  }
  charge(n: number, now: number): void {
    this.refill(now)
    this.level -= n
  }
}

interface ShardBuckets { writeBytes: Bucket; writeRecords: Bucket; readBytes: Bucket; readCalls: Bucket }

/** One stream's buckets, per shard; created when the stream's limits are on. */
export class Throughput {
  private readonly shards = new Map<string, ShardBuckets>()

  private of(shard: ShardState, now: number): ShardBuckets {
    let b = this.shards.get(shard.meta.shardId)
    if (!b) {
      b = {
        writeBytes: new Bucket(ShardLimits.writeBytesPerSec, now), writeRecords: new Bucket(ShardLimits.writeRecordsPerSec, now),
        readBytes: new Bucket(ShardLimits.readBytesPerSec, now), readCalls: new Bucket(ShardLimits.readCallsPerSec, now),
      }
      this.shards.set(shard.meta.shardId, b)
    }
    return b
  }

  /** Admits one record of `bytes` (data plus partition key) to the shard, or refuses it whole. */
  write(shard: ShardState, bytes: number, now: number): boolean {
    const b = this.of(shard, now)
    if (!b.writeRecords.take(1, now)) return false
    if (!b.writeBytes.take(bytes, now)) {
      b.writeRecords.charge(-1, now)
      return false
    }
    return true
  }

  /** Admits one GetRecords call: at most 5 a second, and none while the 2 MiB/s read budget is spent. */
  read(shard: ShardState, now: number): boolean {
    const b = this.of(shard, now)
    if (!b.readBytes.positive(now)) return false
    return b.readCalls.take(1, now)
  }

  charged(shard: ShardState, bytes: number, now: number): void {
    this.of(shard, now).readBytes.charge(bytes, now)
  }
}

/** The stream's throughput meter when its limits are on; null when they are off (the default). */
export function throughputOf(state: StreamState): Throughput | null {
  if (state.tags[THROUGHPUT_TAG] !== 'on') return null
  return (state.meter ??= new Throughput())
}

export function rateExceeded(state: StreamState, shard: ShardState, ctx: ApiContext): KinesisError {
  return new KinesisError('ProvisionedThroughputExceededException', `Rate exceeded for shard ${shard.meta.shardId} in stream ${state.meta.name} under account ${ctx.accountId}.`)
}

export async function describeLimits(body: unknown, ctx: ApiContext) {
  validate(body, {})
  const streams = ctx.streams.list()
  return {
    ShardLimit: Limits.maxShardsPerStream,
    OpenShardCount: ctx.streams.openShardCount(),
    OnDemandStreamCount: streams.filter((s) => s.meta.mode === 'ON_DEMAND').length,
    OnDemandStreamCountLimit: 50,
  }
}

export async function updateStreamMode(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamARN: string; StreamModeDetails: { StreamMode: 'PROVISIONED' | 'ON_DEMAND' } }>(body, {
    StreamARN: { ...StreamARN, required: true } as typeof StreamARN,
    StreamModeDetails: { type: 'structure', required: true, fields: { StreamMode: { type: 'string', required: true, enum: ['PROVISIONED', 'ON_DEMAND'] } } },
  })
  const state = resolveStream(req, ctx)
  if (state.meta.status !== 'ACTIVE') {
    throw new KinesisError('ResourceInUseException', `Stream ${state.meta.name} under account ${ctx.accountId} not ACTIVE, instead in state ${state.meta.status}`)
  }
  if (state.meta.mode === req.StreamModeDetails.StreamMode) {
    throw new KinesisError('InvalidArgumentException', `Stream ${state.meta.name} under account ${ctx.accountId} is already in ${state.meta.mode} mode.`)
  }
  await ctx.streams.setMode(state, req.StreamModeDetails.StreamMode)
  return {}
}
