/**
 * Resharding plans (relay/shardmap.ts) on random shard maps: UpdateShardCount always ends with an
 * even map of the target count, built only from valid splits and merges (at most a parent and an
 * adjacent parent per shard), and every shard it closes has children.
 */
import t from 'tap'
import { HASH_SPACE, hashRanges, planMerge, planSplit, planUniformScaling, type OpenShard, type ReshardPlan } from '../../relay/shardmap.js'

/** Applies a plan to a map of open shards, checking that it only closes open shards and makes valid lineage. */
function apply(open: OpenShard[], plan: ReshardPlan, closed: Set<string>): OpenShard[] {
  const ids = new Set(open.map((s) => s.shardId))
  for (const id of plan.close) {
    if (!ids.has(id)) throw new Error(`closes ${id}, which is not open`)
    closed.add(id)
  }
  const created = new Set(plan.create.map((c) => c.shardId))
  for (const c of plan.create) {
    for (const p of [c.parentShardId, c.adjacentParentShardId]) {
      if (p && !ids.has(p) && !created.has(p)) throw new Error(`${c.shardId} names an unknown parent ${p}`)
    }
    if (c.transient) closed.add(c.shardId)
  }
  for (const id of [...plan.close, ...plan.create.filter((c) => c.transient).map((c) => c.shardId)]) {
    if (!plan.create.some((c) => c.parentShardId === id || c.adjacentParentShardId === id)) throw new Error(`${id} is closed without children`)
  }
  return [...open.filter((s) => !closed.has(s.shardId)), ...plan.create.filter((c) => !c.transient)].sort((a, b) => (a.start < b.start ? -1 : 1))
}

const tiles = (open: OpenShard[]) => open[0]!.start === 0n && open[open.length - 1]!.end === HASH_SPACE - 1n && open.every((s, i) => i === 0 || s.start === open[i - 1]!.end + 1n)

t.test('UpdateShardCount plans reach an even map from any map, through valid splits and merges', async (t) => {
  let seed = 7
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  let failures = 0
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(random() * 8)
    let next = n
    let open: OpenShard[] = hashRanges(n).map(([start, end], i) => ({ shardId: `s${i}`, start, end }))
    const closed = new Set<string>()
    // Make the map uneven with a few random splits and merges.
    for (let k = 0; k < 3; k++) {
      if (random() < 0.5 || open.length < 2) {
        const s = open[Math.floor(random() * open.length)]!
        if (s.end - s.start < 4n) continue
        const plan = planSplit(open, next, s.shardId, s.start + 2n + BigInt(Math.floor(random() * 1e9)) % (s.end - s.start - 3n))
        next += plan.create.length
        open = apply(open, plan, closed)
      } else {
        const i = Math.floor(random() * (open.length - 1))
        const plan = planMerge(open, next, open[i + 1]!.shardId, open[i]!.shardId)
        next += plan.create.length
        open = apply(open, plan, closed)
      }
    }
    const current = open.length
    const target = Math.max(1, Math.ceil(current / 2) + Math.floor(random() * (2 * current - Math.ceil(current / 2) + 1)))
    const plan = planUniformScaling(open, next, target)
    try {
      const after = apply(open, plan, closed)
      const even = hashRanges(target)
      if (after.length !== target || !tiles(after) || !after.every((s, i) => s.start === even[i]![0] && s.end === even[i]![1])) throw new Error(`not an even map of ${target}`)
      if (new Set(plan.create.map((c) => c.index)).size !== plan.create.length || plan.create.some((c) => c.index < next)) throw new Error('shard indexes reused')
    } catch (err) {
      failures++
      t.fail(`round ${round}: ${current} → ${target}: ${(err as Error).message}`)
    }
  }
  t.equal(failures, 0, '300 random maps scaled correctly')
})

t.test('splits and merges name their parents as Kinesis does', async (t) => {
  const open = hashRanges(2).map(([start, end], i) => ({ shardId: `s${i}`, start, end }))
  const split = planSplit(open, 2, 's0', 100n)
  t.same(split.close, ['s0'])
  t.match(split.create, [{ shardId: 'shardId-000000000002', start: 0n, end: 99n, parentShardId: 's0', adjacentParentShardId: null }, { shardId: 'shardId-000000000003', start: 100n, end: open[0]!.end, parentShardId: 's0' }])
  const merge = planMerge(open, 2, 's1', 's0')
  t.same(merge.close, ['s1', 's0'])
  t.match(merge.create, [{ start: 0n, end: HASH_SPACE - 1n, parentShardId: 's1', adjacentParentShardId: 's0' }], 'the shard named first is the parent')
  const same = planUniformScaling(hashRanges(4).map(([start, end], i) => ({ shardId: `s${i}`, start, end })), 4, 2)
  t.same(same.create.map((c) => [c.parentShardId, c.adjacentParentShardId, c.transient]), [['s0', 's1', false], ['s2', 's3', false]], 'halving merges neighbours, with no short-lived shards')
  const doubling = planUniformScaling(open, 2, 4)
  t.equal(doubling.create.filter((c) => c.transient).length, 0, 'doubling splits each shard once')
  t.equal(doubling.create.length, 4)
})
