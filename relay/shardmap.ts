/**
 * Resharding plans, pure: given a stream's open shards, which shards SplitShard, MergeShards or
 * UpdateShardCount closes and which it creates. Applying a plan (atomically) is Streams' job.
 *
 * UpdateShardCount (UNIFORM_SCALING) is expressed as splits and merges, as Kinesis does it: first
 * every boundary of the even target map that falls inside an open shard splits that shard, then the
 * shards within each target range merge pairwise from the left. Lineage therefore always has at most a
 * parent and an adjacent parent, and a reader that finishes parents before children (KCL) still works;
 * the short-lived shards in between are created already closed and empty.
 */

export const HASH_SPACE = 1n << 128n

export const shardIdOf = (index: number) => `shardId-${String(index).padStart(12, '0')}`

/** Even split of the hash key space into `count` ranges, as Kinesis does at creation. */
export function hashRanges(count: number): [bigint, bigint][] {
  const step = HASH_SPACE / BigInt(count)
  return Array.from({ length: count }, (_, i) => [step * BigInt(i), i === count - 1 ? HASH_SPACE - 1n : step * BigInt(i + 1) - 1n])
}

export interface OpenShard {
  shardId: string
  start: bigint
  end: bigint
}

export interface PlannedShard {
  shardId: string
  index: number
  start: bigint
  end: bigint
  parentShardId: string
  adjacentParentShardId: string | null
  /** True for a short-lived shard of UpdateShardCount, closed in the same change that creates it. */
  transient: boolean
}

export interface ReshardPlan {
  /** Shards open now that the change closes. */
  close: string[]
  create: PlannedShard[]
}

/** Works on a copy of the open map, ordered by hash range, numbering new shards from `nextIndex`. */
class Planner {
  private readonly open: OpenShard[]
  private readonly created = new Map<string, PlannedShard>()
  private readonly closed: string[] = []
  private next: number

  constructor(open: readonly OpenShard[], nextIndex: number) {
    this.open = [...open].sort((a, b) => (a.start < b.start ? -1 : 1))
    this.next = nextIndex
  }

  private retire(shardId: string): void {
    const mine = this.created.get(shardId)
    if (mine) mine.transient = true
    else this.closed.push(shardId)
  }

  private make(start: bigint, end: bigint, parent: string, adjacent: string | null): PlannedShard {
    const index = this.next++
    const shard = { shardId: shardIdOf(index), index, start, end, parentShardId: parent, adjacentParentShardId: adjacent, transient: false }
    this.created.set(shard.shardId, shard)
    return shard
  }

  split(shardId: string, newStart: bigint): void {
    const i = this.open.findIndex((s) => s.shardId === shardId)
    const parent = this.open[i]!
    const left = this.make(parent.start, newStart - 1n, parent.shardId, null)
    const right = this.make(newStart, parent.end, parent.shardId, null)
    this.retire(parent.shardId)
    this.open.splice(i, 1, left, right)
  }

  merge(shardId: string, adjacentId: string): void {
    const i = this.open.findIndex((s) => s.shardId === shardId)
    const j = this.open.findIndex((s) => s.shardId === adjacentId)
    const [lo, hi] = i < j ? [i, j] : [j, i]
    const a = this.open[lo]!
    const b = this.open[hi]!
    // Kinesis names the shard given first as ParentShardId, whichever side of the range it is on.
    const child = this.make(a.start, b.end, shardId, adjacentId)
    this.retire(shardId)
    this.retire(adjacentId)
    this.open.splice(lo, 2, child)
  }

  uniform(target: number): void {
    const ranges = hashRanges(target)
    for (const [boundary] of ranges.slice(1)) {
      const holder = this.open.find((s) => s.start < boundary && boundary <= s.end)
      if (holder) this.split(holder.shardId, boundary)
    }
    for (const [start, end] of ranges) {
      for (;;) {
        const inside = this.open.filter((s) => s.start >= start && s.end <= end)
        if (inside.length < 2) break
        this.merge(inside[0]!.shardId, inside[1]!.shardId)
      }
    }
  }

  plan(): ReshardPlan {
    return { close: this.closed, create: [...this.created.values()] }
  }
}

export function planSplit(open: readonly OpenShard[], nextIndex: number, shardId: string, newStart: bigint): ReshardPlan {
  const p = new Planner(open, nextIndex)
  p.split(shardId, newStart)
  return p.plan()
}

export function planMerge(open: readonly OpenShard[], nextIndex: number, shardId: string, adjacentId: string): ReshardPlan {
  const p = new Planner(open, nextIndex)
  p.merge(shardId, adjacentId)
  return p.plan()
}

export function planUniformScaling(open: readonly OpenShard[], nextIndex: number, target: number): ReshardPlan {
  const p = new Planner(open, nextIndex)
  p.uniform(target)
  return p.plan()
}
