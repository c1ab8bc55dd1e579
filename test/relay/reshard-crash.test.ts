/**
 * kill -9 of the relay in the middle of a split or a merge, while a writer keeps writing: after a
 * restart the stream is ACTIVE with either the old shard map or the new one (never a mix), every
 * acknowledged record is readable exactly once, and resharding works again.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { freePort, spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

interface ShardJson { ShardId: string; ParentShardId?: string; AdjacentParentShardId?: string; HashKeyRange: { StartingHashKey: string; EndingHashKey: string }; SequenceNumberRange: { EndingSequenceNumber?: string } }

/** Every record, parents before children. */
async function readAll(kinesis: KinesisClient, StreamName: string): Promise<string[]> {
  const { Shards } = await kinesis.call<{ Shards: ShardJson[] }>('ListShards', { StreamName })
  const done = new Set<string>()
  const out: string[] = []
  while (done.size < Shards.length) {
    const shard = Shards.find((s) => !done.has(s.ShardId) && [s.ParentShardId, s.AdjacentParentShardId].every((p) => !p || done.has(p)))!
    let it: string | undefined = (await kinesis.call<{ ShardIterator: string }>('GetShardIterator', { StreamName, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator
    while (it) {
      const page: { Records: { Data: string }[]; NextShardIterator?: string; MillisBehindLatest: number } = await kinesis.call('GetRecords', { ShardIterator: it })
      for (const r of page.Records) out.push(Buffer.from(r.Data, 'base64').toString())
      it = page.NextShardIterator
      if (!page.Records.length && it) break
    }
    done.add(shard.ShardId)
  }
  return out
}

const cases = [
  { step: 'updating', action: 'split', expect: 'old' },
  { step: 'children-opened', action: 'split', expect: 'old' },
  { step: 'map-committed', action: 'split', expect: 'new' },
  { step: 'children-opened', action: 'merge', expect: 'old' },
  { step: 'map-committed', action: 'merge', expect: 'new' },
] as const

for (const c of cases) {
  t.test(`kill -9 at "${c.step}" of a ${c.action} leaves the ${c.expect} shard map and every acknowledged record`, async (t) => {
    const dataDir = tempDir(t)
    const args = ['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', String(await freePort()), '--http-port', String(await freePort()), '--allow-anonymous', '--group-commit-ms', '1']
    let relay: ChildRelay = await spawnRelay(args, { TRIBUTARY_TEST_CRASH_AT: `reshard:${c.step}` })
    t.teardown(() => { relay.process.kill('SIGKILL') })
    let kinesis = new KinesisClient({ endpoint: relay.endpoint })
    const StreamName = 'crash-reshard'
    await kinesis.call('CreateStream', { StreamName, ShardCount: 2 })

    // A writer that remembers what was acknowledged, and keeps going until the relay dies.
    const acked: string[] = []
    let stop = false
    const writer = (async () => {
      for (let b = 0; !stop; b++) {
        const Records = Array.from({ length: 50 }, (_, i) => ({ PartitionKey: randomBytes(4).toString('hex'), Data: Buffer.from(`r${b}-${i}`).toString('base64') }))
        try {
          await kinesis.call('PutRecords', { StreamName, Records })
          for (let i = 0; i < 50; i++) acked.push(`r${b}-${i}`)
        } catch {
          return
        }
      }
    })()
    while (acked.length < 1000) await new Promise((r) => setTimeout(r, 5))
    const before = (await kinesis.call<{ Shards: ShardJson[] }>('ListShards', { StreamName })).Shards
    const reshard = c.action === 'split'
      ? kinesis.call('SplitShard', { StreamName, ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (BigInt(before[0]!.HashKeyRange.EndingHashKey) / 2n).toString() })
      : kinesis.call('MergeShards', { StreamName, ShardToMerge: 'shardId-000000000000', AdjacentShardToMerge: 'shardId-000000000001' })
    await t.rejects(reshard, 'the relay died during the reshard')
    t.equal(await relay.exited, null, 'killed by a signal')
    stop = true
    await writer
    kinesis.close()

    relay = await spawnRelay(args)
    kinesis = new KinesisClient({ endpoint: relay.endpoint })
    const summary = (await kinesis.call<{ StreamDescriptionSummary: { StreamStatus: string } }>('DescribeStreamSummary', { StreamName })).StreamDescriptionSummary
    t.equal(summary.StreamStatus, 'ACTIVE', 'an interrupted reshard does not leave the stream UPDATING')
    const shards = (await kinesis.call<{ Shards: ShardJson[] }>('ListShards', { StreamName })).Shards
    const open = shards.filter((s) => !s.SequenceNumberRange.EndingSequenceNumber)
    if (c.expect === 'old') {
      t.same(shards.map((s) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001'], 'the old map: no new shards')
      t.equal(open.length, 2, 'both still open')
    } else if (c.action === 'split') {
      t.same(shards.map((s) => s.ShardId), ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003'], 'the new map')
      t.same(open.map((s) => s.ShardId), ['shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003'], 'the parent closed, its children open')
    } else {
      t.same(open.map((s) => s.ShardId), ['shardId-000000000002'], 'the merged child is the only open shard')
      t.match(open[0], { ParentShardId: 'shardId-000000000000', AdjacentParentShardId: 'shardId-000000000001' })
    }
    // The open shards cover the hash space exactly once.
    const ranges = open.map((s) => [BigInt(s.HashKeyRange.StartingHashKey), BigInt(s.HashKeyRange.EndingHashKey)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1))
    t.ok(ranges[0]![0] === 0n && ranges[ranges.length - 1]![1] === (1n << 128n) - 1n && ranges.every((r, i) => i === 0 || r[0] === ranges[i - 1]![1] + 1n), 'open ranges tile the hash space')

    const read = await readAll(kinesis, StreamName)
    const got = new Set(read)
    t.equal(got.size, read.length, 'no record twice')
    t.same(acked.filter((r) => !got.has(r)), [], `all ${acked.length} acknowledged records are readable`)

    // Resharding works again after the restart, and so do writes.
    const after = c.expect === 'old' ? 'shardId-000000000000' : open[0]!.ShardId
    const range = shards.find((s) => s.ShardId === after)!.HashKeyRange
    await kinesis.call('SplitShard', { StreamName, ShardToSplit: after, NewStartingHashKey: ((BigInt(range.StartingHashKey) + BigInt(range.EndingHashKey)) / 2n).toString() })
    await kinesis.call('PutRecord', { StreamName, PartitionKey: 'k', Data: Buffer.from('after').toString('base64') })
    t.ok((await readAll(kinesis, StreamName)).includes('after'))
    kinesis.close()
  })
}

const ROUNDS = process.env.TRIBUTARY_SOAK ? 25 : 3

/** The map is whole: open shards tile the hash space, every closed shard has children, every parent exists and is closed. */
function consistent(shards: ShardJson[]): string | null {
  const byId = new Map(shards.map((s) => [s.ShardId, s]))
  const open = shards.filter((s) => !s.SequenceNumberRange.EndingSequenceNumber)
  const ranges = open.map((s) => [BigInt(s.HashKeyRange.StartingHashKey), BigInt(s.HashKeyRange.EndingHashKey)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1))
  if (ranges[0]?.[0] !== 0n || ranges[ranges.length - 1]?.[1] !== (1n << 128n) - 1n || !ranges.every((r, i) => i === 0 || r[0] === ranges[i - 1]![1] + 1n)) return 'open shards do not tile the hash space'
  for (const s of shards) {
    for (const p of [s.ParentShardId, s.AdjacentParentShardId]) {
      if (p && !byId.get(p)?.SequenceNumberRange.EndingSequenceNumber) return `${s.ShardId} names ${p}, which is not a closed shard`
    }
    if (s.SequenceNumberRange.EndingSequenceNumber && !shards.some((c) => c.ParentShardId === s.ShardId || c.AdjacentParentShardId === s.ShardId)) return `${s.ShardId} is closed without children`
  }
  return null
}

t.test(`kill -9 at random moments of ${ROUNDS} rounds of splits and merges: the map stays whole, nothing acknowledged is lost`, async (t) => {
  const dataDir = tempDir(t)
  const args = ['--data-dir', dataDir, '--mqtt-host', '127.0.0.1', '--mqtt-port', String(await freePort()), '--http-port', String(await freePort()), '--allow-anonymous', '--group-commit-ms', '1']
  let relay: ChildRelay = await spawnRelay(args)
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const StreamName = 'crash-random'
  {
    const k = new KinesisClient({ endpoint: relay.endpoint })
    await k.call('CreateStream', { StreamName, ShardCount: 3 })
    k.close()
  }
  const acked: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const kinesis = new KinesisClient({ endpoint: relay.endpoint })
    let alive = true
    const writer = (async () => {
      for (let b = 0; alive; b++) {
        const Records = Array.from({ length: 20 }, (_, i) => ({ PartitionKey: randomBytes(4).toString('hex'), Data: Buffer.from(`${round}-${b}-${i}`).toString('base64') }))
        try {
          await kinesis.call('PutRecords', { StreamName, Records })
          for (let i = 0; i < 20; i++) acked.push(`${round}-${b}-${i}`)
        } catch {
          return
        }
      }
    })()
    const resharder = (async () => {
      while (alive) {
        try {
          const open = (await kinesis.call<{ Shards: ShardJson[] }>('ListShards', { StreamName, ShardFilter: { Type: 'AT_LATEST' } })).Shards
            .sort((a, b) => (BigInt(a.HashKeyRange.StartingHashKey) < BigInt(b.HashKeyRange.StartingHashKey) ? -1 : 1))
          if (open.length < 5 && (open.length <= 2 || Math.random() < 0.5)) {
            const s = open[Math.floor(Math.random() * open.length)]!
            const mid = (BigInt(s.HashKeyRange.StartingHashKey) + BigInt(s.HashKeyRange.EndingHashKey)) / 2n
            await kinesis.call('SplitShard', { StreamName, ShardToSplit: s.ShardId, NewStartingHashKey: mid.toString() })
          } else {
            const i = Math.floor(Math.random() * (open.length - 1))
            await kinesis.call('MergeShards', { StreamName, ShardToMerge: open[i]!.ShardId, AdjacentShardToMerge: open[i + 1]!.ShardId })
          }
        } catch {
          return
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 400))
    relay.process.kill('SIGKILL')
    await relay.exited
    alive = false
    await Promise.all([writer, resharder])
    kinesis.close()
    relay = await spawnRelay(args)
  }
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  t.equal((await kinesis.call<{ StreamDescriptionSummary: { StreamStatus: string } }>('DescribeStreamSummary', { StreamName })).StreamDescriptionSummary.StreamStatus, 'ACTIVE')
  const shards = (await kinesis.call<{ Shards: ShardJson[] }>('ListShards', { StreamName })).Shards
  t.equal(consistent(shards), null, `the shard map is whole after ${ROUNDS} kills (${shards.length} shards)`)
  t.ok(shards.length > 3, 'resharding happened')
  const read = await readAll(kinesis, StreamName)
  const got = new Set(read)
  t.equal(got.size, read.length, 'no record twice')
  t.same(acked.filter((r) => !got.has(r)), [], `all ${acked.length} acknowledged records are readable`)
})
