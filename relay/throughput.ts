/**
 * Per-shard throughput budgets, as Kinesis's provisioned mode meters them: writes 1 MiB/s or 1,000
 * records/s per shard, reads 2 MiB/s and 5 GetRecords calls/s per shard. Off by default (Tributary is
 * not a metered service) and switched on per stream with the tag `tributary:throughput-limits=on`, so
 * people can test their retry logic. The clock is the caller's: every call takes `now`.
 */

/** What the meter needs of a shard and a stream (streams.ts's ShardState and StreamState have it). */
type MeteredShard = { meta: { shardId: string } }
type MeteredStream = { tags: Record<string, string>; meter?: Throughput }

/** The tag that switches a stream's throughput limits on. */
export const THROUGHPUT_TAG = 'tributary:throughput-limits'

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

  private of(shard: MeteredShard, now: number): ShardBuckets {
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
  write(shard: MeteredShard, bytes: number, now: number): boolean {
    const b = this.of(shard, now)
    if (!b.writeRecords.take(1, now)) return false
    if (!b.writeBytes.take(bytes, now)) {
      b.writeRecords.charge(-1, now)
      return false
    }
    return true
  }

  /** Admits one GetRecords call: at most 5 a second, and none while the 2 MiB/s read budget is spent. */
  read(shard: MeteredShard, now: number): boolean {
    const b = this.of(shard, now)
    if (!b.readBytes.positive(now)) return false
    return b.readCalls.take(1, now)
  }

  charged(shard: MeteredShard, bytes: number, now: number): void {
    this.of(shard, now).readBytes.charge(bytes, now)
  }
}

/** The stream's throughput meter when its limits are on; null when they are off (the default). */
export function throughputOf(state: MeteredStream): Throughput | null {
  if (state.tags[THROUGHPUT_TAG] !== 'on') return null
  return (state.meter ??= new Throughput())
}

